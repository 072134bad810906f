//! Helpers shared by the end-to-end tests: reading pcap captures of real exporters and the
//! truth tshark decoded from them (`tests/data/*.truth.json`, made by `tests/data/generate.sh`).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

pub mod browser;
pub mod cluster;
mod node;
pub use node::NodeProcess;
use serde::Deserialize;

/// The directory holding committed captures and their truth (`<workspace>/tests/data`).
///
/// Found at run time from the running package's directory (cargo sets `CARGO_MANIFEST_DIR` for
/// tests and `cargo run`) or the working directory, never from a path baked in at compile time:
/// every checkout shares one target directory, so a cached test binary may have been built from
/// another clone.
pub fn data_dir() -> PathBuf {
    let starts = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::env::current_dir().ok());
    for start in starts {
        for dir in start.ancestors() {
            if dir.join("Cargo.lock").is_file() && dir.join("tests").join("data").is_dir() {
                return dir.join("tests").join("data");
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// One UDP datagram from a capture.
#[derive(Clone, Debug)]
pub struct Datagram {
    /// Capture timestamp, Unix ms.
    pub ts_ms: u64,
    /// UDP source.
    pub src: SocketAddr,
    /// UDP destination.
    pub dst: SocketAddr,
    /// UDP payload.
    pub payload: Vec<u8>,
}

/// Why a capture could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The capture's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a classic pcap capture this reader understands.
    #[error("{path}: {what}")]
    Format {
        /// The capture's path.
        path: PathBuf,
        /// What was wrong.
        what: String,
    },
}

/// Reads every UDP datagram (IPv4 or IPv6) from a classic pcap file, in capture order.
/// Understands both byte orders, µs and ns timestamps, and link types Ethernet (1), raw IP
/// (101), Linux cooked (113) and BSD loopback (0).
pub fn read_pcap(path: &Path) -> Result<Vec<Datagram>, PcapError> {
    let bad = |what: &str| PcapError::Format {
        path: path.to_owned(),
        what: what.to_owned(),
    };
    let data = std::fs::read(path).map_err(|source| PcapError::Io {
        path: path.to_owned(),
        source,
    })?;
    let header = data
        .get(..24)
        .ok_or_else(|| bad("shorter than a pcap header"))?;
    let magic = [header[0], header[1], header[2], header[3]];
    let (big_endian, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
        _ => return Err(bad("not a classic pcap file (pcapng is not supported)")),
    };
    let u32_at = |b: &[u8], at: usize| -> Option<u32> {
        let v: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        })
    };
    let linktype = u32_at(header, 20).ok_or_else(|| bad("no link type"))?;
    let mut out = Vec::new();
    let mut at = 24;
    while at < data.len() {
        let rec = data
            .get(at..at + 16)
            .ok_or_else(|| bad("truncated record header"))?;
        let secs = u64::from(u32_at(rec, 0).unwrap_or(0));
        let frac = u64::from(u32_at(rec, 4).unwrap_or(0));
        let caplen = u32_at(rec, 8).unwrap_or(0) as usize;
        let frame = data
            .get(at + 16..at + 16 + caplen)
            .ok_or_else(|| bad("truncated record"))?;
        at += 16 + caplen;
        let ts_ms = secs * 1000 + if nanos { frac / 1_000_000 } else { frac / 1000 };
        let sliced = match linktype {
            1 => SlicedPacket::from_ethernet(frame).ok(),
            101 => SlicedPacket::from_ip(frame).ok(),
            113 => frame
                .get(16..)
                .and_then(|ip| SlicedPacket::from_ip(ip).ok()),
            0 => frame.get(4..).and_then(|ip| SlicedPacket::from_ip(ip).ok()),
            other => return Err(bad(&format!("unsupported link type {other}"))),
        };
        let Some(p) = sliced else { continue };
        let (src_ip, dst_ip): (IpAddr, IpAddr) = match &p.net {
            Some(NetSlice::Ipv4(ip)) => (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
            ),
            Some(NetSlice::Ipv6(ip)) => (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
            ),
            _ => continue,
        };
        if let Some(TransportSlice::Udp(udp)) = &p.transport {
            out.push(Datagram {
                ts_ms,
                src: SocketAddr::new(src_ip, udp.source_port()),
                dst: SocketAddr::new(dst_ip, udp.destination_port()),
                payload: udp.payload().to_vec(),
            });
        }
    }
    Ok(out)
}

/// What tshark decoded from one capture (`<capture>.truth.json`).
#[derive(Clone, Debug, Deserialize)]
pub struct Truth {
    /// The capture file name.
    pub capture: String,
    /// The exporter and its command line.
    pub exporter: String,
    /// `netflow_v5`, `netflow_v9`, `ipfix` or `sflow`.
    pub protocol: String,
    /// UDP datagrams in the capture.
    pub packets: usize,
    /// Flow records, in packet order then record order.
    pub records: Vec<TruthRecord>,
    /// sFlow interface counters, if any.
    #[serde(default)]
    pub counters: Vec<TruthCounters>,
}

/// One flow record as tshark showed it, times made absolute.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct TruthRecord {
    /// Index of the UDP datagram that carried it.
    pub packet: usize,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// IP protocol.
    pub proto: u8,
    /// Octets (scaled by the sampling rate for sFlow).
    pub bytes: u64,
    /// Packets (scaled by the sampling rate for sFlow).
    pub packets: u64,
    /// First packet, Unix ms.
    pub first_ms: u64,
    /// Last packet, Unix ms.
    pub last_ms: u64,
    /// `forward`, `reverse` or `none`.
    pub direction: String,
    /// Sampling rate.
    pub sampling_rate: u32,
}

/// sFlow generic interface counters as tshark showed them.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct TruthCounters {
    /// Index of the UDP datagram that carried them.
    pub packet: usize,
    /// Interface index.
    pub if_index: u32,
    /// Octets in.
    pub in_octets: u64,
    /// Octets out.
    pub out_octets: u64,
    /// Unicast packets in.
    pub in_ucast: u32,
    /// Unicast packets out.
    pub out_ucast: u32,
}

/// Loads `<name>.truth.json` from the data directory.
pub fn load_truth(name: &str) -> Result<Truth, String> {
    let path = data_dir().join(format!("{name}.truth.json"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// A plain HTTP/1.1 GET: (status, body). Enough for tests of a local API; no TLS, no redirects.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http_request(addr, "GET", path)
}

/// A plain HTTP/1.1 POST without a body: (status, body).
pub fn http_post(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http_request(addr, "POST", path)
}

fn http_request(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    http_send(addr, method, path, None)
}

/// The admin API token every test node is started with (`auth.bootstrap_token`), random per
/// test process.
pub fn test_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut parts = String::from("fl_test_");
        for _ in 0..3 {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            parts.push_str(&format!("{:016x}", h.finish()));
        }
        parts
    })
}

/// [`http_get`] with the test admin token.
pub fn http_get_auth(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http_send_auth(addr, "GET", path, None)
}

/// [`http_send`] with the test admin token.
pub fn http_send_auth(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let auth = format!("Authorization: Bearer {}\r\n", test_token());
    http_exchange(addr, method, path, json, &auth)
}

/// A plain HTTP/1.1 request with `method` and, if given, a JSON body: (status, body).
pub fn http_send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> std::io::Result<(u16, String)> {
    http_exchange(addr, method, path, json, "")
}

/// One request with `extra` header lines (each ending in CRLF): (status, body).
pub fn http_exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&str>,
    extra: &str,
) -> std::io::Result<(u16, String)> {
    http_exchange_head(addr, method, path, json, extra).map(|(status, _, body)| (status, body))
}

/// [`http_exchange`], with the answer's head (status line and headers) too.
pub fn http_exchange_head(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&str>,
    extra: &str,
) -> std::io::Result<(u16, String, String)> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let body = json.unwrap_or_default();
    let kind = if json.is_some() {
        "Content-Type: application/json\r\n"
    } else {
        ""
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{kind}{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    // Read until the answer is complete (by Content-Length or the last chunk): a server may keep
    // the connection open despite `Connection: close` (chromedriver does).
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if answer_complete(&raw) {
            break;
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, head.to_string(), body))
}

/// Whether `raw` holds a whole HTTP answer: head, then Content-Length bytes or a last chunk.
fn answer_complete(raw: &[u8]) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let body = &raw[end + 4..];
    if let Some(length) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return body.len() >= length;
    }
    head.contains("transfer-encoding: chunked") && body.ends_with(b"0\r\n\r\n")
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A real nats-server process (Debian's `nats-server`) with JetStream, on a free loopback port,
/// its store in a temporary directory; killed on drop. [`NatsServer::restart`] brings it back on
/// the same port and store.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<std::process::Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts a server and waits until it accepts connections.
    ///
    /// Its port is drawn from 20000–31999, below Linux's ephemeral range, so that no other
    /// test's [`free_tcp_port`] takes it while [`NatsServer::kill`] has it closed.
    ///
    /// # Panics
    /// When nats-server is not installed or does not listen within 10 s.
    pub fn start() -> NatsServer {
        let mut dir = tempfile::tempdir().expect("tempdir");
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
            ^ std::process::id().rotate_left(16);
        for attempt in 0..20u32 {
            let port = 20_000 + (seed.wrapping_add(attempt.wrapping_mul(7_919)) % 12_000) as u16;
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            let mut server = NatsServer {
                child: None,
                port,
                dir,
            };
            if server.spawn() {
                return server;
            }
            dir = server.take_dir();
        }
        panic!("nats-server did not start on any of 20 ports");
    }

    fn take_dir(mut self) -> tempfile::TempDir {
        self.kill();
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"))
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again (after [`NatsServer::kill`]) on the same port and store.
    ///
    /// # Panics
    /// When it does not come up within 10 s.
    pub fn restart(&mut self) {
        assert!(
            self.spawn(),
            "nats-server did not restart on port {}",
            self.port
        );
    }

    /// Spawns the server on this port; whether it is up (and is ours: the process still runs).
    fn spawn(&mut self) -> bool {
        self.kill();
        // Debian installs it in /usr/sbin, which is not on every PATH.
        let bin = ["/usr/sbin/nats-server", "nats-server"]
            .into_iter()
            .find(|b| !b.starts_with('/') || Path::new(b).exists())
            .unwrap_or("nats-server");
        let child = std::process::Command::new(bin)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server (Debian package nats-server) must be installed");
        let child = self.child.insert(child);
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(10) {
            if !matches!(child.try_wait(), Ok(None)) {
                return false;
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                // Answered: by ours only if it is still running a moment later (a server that
                // cannot bind exits at once).
                std::thread::sleep(std::time::Duration::from_millis(100));
                return matches!(child.try_wait(), Ok(None));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `flowlens admin` (binary `bin`) against cluster `cluster` on the NATS server at `url`
/// with `args`: its stdout.
///
/// # Panics
/// When it cannot run or fails (with its stderr).
pub fn flowlens_admin(bin: &std::path::Path, url: &str, cluster: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(bin)
        .args(["admin", "--nats", url, "--cluster", cluster])
        .args(args)
        .output()
        .expect("flowlens admin runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "flowlens admin {args:?} failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An IPFIX template message (`proto::encode::standard_ipv4_template`), then one data message
/// holding `flows`: what a test sends a collector.
pub fn ipfix_packets(flows: &[proto::FlowRecord]) -> [Vec<u8>; 2] {
    use proto::encode::{self, IpfixMessage};
    let secs = (now_ms() / 1000) as u32;
    let mut template = IpfixMessage::new(secs, 0, 1);
    template
        .set(2)
        .template(256, 0, &encode::standard_ipv4_template());
    let mut data = IpfixMessage::new(secs, 0, 1);
    data.set(256);
    for r in flows {
        encode::standard_ipv4_record(data.writer(), r);
    }
    [template.finish(), data.finish()]
}

/// A TCP flow opened (SYN) by `client` from port 45000 to `server`:`port`, `bytes` in two
/// packets, ending now: what the analysis, classification, advisory and alert tests send.
///
/// # Panics
/// When an address does not parse (a test's own literal).
pub fn tcp_flow(client: &str, server: &str, port: u16, bytes: u64) -> proto::FlowRecord {
    let now = now_ms();
    proto::FlowRecord {
        src_addr: client.parse().expect("client address"),
        dst_addr: server.parse().expect("server address"),
        src_port: 45_000,
        dst_port: port,
        protocol: 6,
        tcp_flags: 0x02,
        bytes,
        packets: 2,
        first_ms: now - 50,
        last_ms: now,
        ..proto::FlowRecord::default()
    }
}

/// An IPv4 TCP flow from `client` (port 40000) to `server` port 443 carrying `bytes` in one
/// packet, ending now: the flow the end-to-end tests send, one dependency each.
pub fn https_flow(client: [u8; 4], server: [u8; 4], bytes: u64) -> proto::FlowRecord {
    let now = now_ms();
    proto::FlowRecord {
        src_addr: IpAddr::from(client),
        dst_addr: IpAddr::from(server),
        src_port: 40_000,
        dst_port: 443,
        protocol: 6,
        bytes,
        packets: 1,
        first_ms: now - 100,
        last_ms: now,
        ..proto::FlowRecord::default()
    }
}
