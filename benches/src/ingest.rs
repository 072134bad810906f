//! The side-by-side ingest bench's parts: a pool of pre-encoded datagrams with their exact flow
//! counts, a paced loopback sender, `/proc` readings, and the collectors under test: a
//! `flowlens node`, and nfdump's `nfcapd` (NetFlow/IPFIX) or `sfcapd` (sFlow), which only write
//! flow files; their flows are counted afterwards with `nfdump -I`.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use node::simulate::{Exporter, Network, SimProto};
use proto::decode::{decode_datagram, TemplateCache};

/// Datagrams to replay, each with the flow records it holds, and their total.
pub struct Pool {
    /// (datagram, flows in it).
    pub datagrams: Vec<(Vec<u8>, u64)>,
}

impl Pool {
    /// Encodes at least `flows` flows of a network of `hosts` hosts and `dependencies`
    /// dependencies as `proto` datagrams, counting each datagram's records by decoding it.
    pub fn new(proto: SimProto, hosts: u32, dependencies: u32, flows: u64) -> Pool {
        let mut network = Network::new(hosts, false, 7);
        network.widen(dependencies as usize);
        let mut exporter = Exporter::new(proto, 1);
        let mut cache = TemplateCache::default();
        let ctx = crate::context();
        let now = actors::now_ms();
        let (mut batch, mut records) = (Vec::new(), Vec::new());
        let mut datagrams = Vec::new();
        let mut total = 0u64;
        while total < flows {
            batch.clear();
            network.next_flows(1000, now, &mut batch);
            let mut out = Vec::new();
            exporter.encode(&batch, now, &mut out);
            for d in out {
                records.clear();
                let _ = decode_datagram(&d, &ctx, &mut cache, &mut records);
                total += records.len() as u64;
                datagrams.push((d, records.len() as u64));
            }
        }
        Pool { datagrams }
    }
}

/// Sends datagrams from `pool` (cycling, starting at `*next`) to `to` at `rate` flows per
/// second for `seconds`: the flows offered.
///
/// # Errors
/// When no UDP socket can be bound.
pub fn offer(
    pool: &Pool,
    next: &mut usize,
    to: SocketAddr,
    rate: u64,
    seconds: f64,
) -> Result<u64, String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut offered = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        while offered < due {
            let (d, n) = &pool.datagrams[*next % pool.datagrams.len()];
            *next += 1;
            let _ = socket.send_to(d, to);
            offered += n;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    Ok(offered)
}

/// A process's (RSS, peak RSS) in bytes and CPU time in µs, from `/proc`.
pub fn proc_stats(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |v| v * 1024)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after the ')'.
    let cpu_us = (ticks(11) + ticks(12)) * 10_000;
    (kb("VmRSS:"), kb("VmHWM:"), cpu_us)
}

/// The sum of a node's `/metrics` lines for `name` (every label set), read as the test admin;
/// 0 when the node does not answer.
pub fn metric(api: SocketAddr, name: &str) -> u64 {
    flowlens_tests::http_get_auth(api, "/metrics")
        .map(|r| r.1)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<u64>().ok()))
        .sum()
}

/// The nfdump daemon for `proto`: `sfcapd` for sFlow, `nfcapd` for the rest.
pub fn nfdump_daemon(proto: SimProto) -> &'static str {
    match proto {
        SimProto::Sflow => "sfcapd",
        _ => "nfcapd",
    }
}

/// An nfdump collector writing flow files to its own directory (killed on drop).
pub struct Nfdump {
    child: Child,
    /// Where it listens.
    pub udp: SocketAddr,
    dir: PathBuf,
}

impl Nfdump {
    /// Starts `daemon` (`nfcapd` or `sfcapd`) on a free loopback port, writing to `dir`, with
    /// the same 32 MiB socket buffer a FlowLens node asks for.
    ///
    /// # Errors
    /// When it cannot start (not installed: Debian's `nfdump` and `nfdump-sflow`).
    pub fn start(daemon: &str, dir: &Path) -> Result<Nfdump, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let port = flowlens_tests::free_udp_port();
        let child = Command::new(daemon)
            .args([
                "-b",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-B",
                "33554432",
                "-w",
            ])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("cannot start {daemon} (Debian packages nfdump, nfdump-sflow): {e}")
            })?;
        // It binds its socket before anything else; give it that moment.
        std::thread::sleep(Duration::from_millis(300));
        Ok(Nfdump {
            child,
            udp: SocketAddr::from(([127, 0, 0, 1], port)),
            dir: dir.to_path_buf(),
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it (SIGTERM: it closes its current file) and counts the flows it wrote.
    ///
    /// # Errors
    /// When it does not stop or `nfdump` cannot read what it wrote.
    pub fn stop_and_count(mut self) -> Result<u64, String> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let out = Command::new("nfdump")
            .arg("-R")
            .arg(&self.dir)
            .arg("-I")
            .output()
            .map_err(|e| format!("cannot run nfdump: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("Flows: "))
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| format!("nfdump -I printed no flow count: {text}"))
    }
}

impl Drop for Nfdump {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
