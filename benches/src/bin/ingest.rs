//! End-to-end ingest bench: starts a release `flowlens node`, offers a simulated network's flows
//! over loopback UDP at stepped rates, and reports per step offered vs accepted flows/s, loss,
//! CPU µs per flow and the node's RSS (plus idle RSS before traffic and the peak). Results go to
//! `benches/results/ingest.md` and `ingest.json`.
//!
//! `ingest --flowlens <binary> [--proto ipfix|v9|v5|sflow] [--hosts N] [--dependencies N]
//! [--seconds S] [--rates 100000,300000,1000000]`

use std::io::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use flowlens_tests::http_get_auth;
use node::simulate::{Exporter, Network, SimProto};

struct Args {
    flowlens: PathBuf,
    proto: SimProto,
    hosts: u32,
    dependencies: u32,
    seconds: f64,
    rates: Vec<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        flowlens: PathBuf::new(),
        proto: SimProto::Ipfix,
        hosts: 50_000,
        dependencies: 200_000,
        seconds: 10.0,
        rates: vec![100_000, 300_000, 1_000_000],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--flowlens" => args.flowlens = PathBuf::from(value),
            "--proto" => {
                args.proto = match value.as_str() {
                    "v5" => SimProto::V5,
                    "v9" => SimProto::V9,
                    "ipfix" => SimProto::Ipfix,
                    "sflow" => SimProto::Sflow,
                    other => return Err(format!("--proto {other}: use v5, v9, ipfix or sflow")),
                }
            }
            "--hosts" => args.hosts = value.parse().map_err(|_| "--hosts: a number")?,
            "--dependencies" => {
                args.dependencies = value.parse().map_err(|_| "--dependencies: a number")?
            }
            "--seconds" => args.seconds = value.parse().map_err(|_| "--seconds: a number")?,
            "--rates" => {
                args.rates = value
                    .split(',')
                    .map(|r| r.trim().parse::<u64>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| "--rates: comma-separated numbers")?
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.flowlens.as_os_str().is_empty() {
        return Err("--flowlens <path to the release binary> is required".into());
    }
    Ok(args)
}

/// Reads a process's RSS, peak RSS (bytes) and CPU time (µs) from /proc.
fn proc_stats(pid: u32) -> (u64, u64, u64) {
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

fn metric(api: SocketAddr, name: &str) -> u64 {
    let body = http_get_auth(api, "/metrics")
        .map(|r| r.1)
        .unwrap_or_default();
    body.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<u64>().ok()))
        .sum()
}

struct Step {
    offered_rate: u64,
    offered: u64,
    accepted: u64,
    /// Accepted flows the raw tier had no room for (not on disk; mapped all the same).
    raw_dropped: u64,
    seconds: f64,
    cpu_us: u64,
    rss: u64,
}

fn main() -> Result<(), String> {
    let args = parse_args()?;
    let dir = std::env::temp_dir().join(format!("flowlens-ingest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut node = flowlens_benches::start_node(&args.flowlens, &dir)?;
    let (api, udp, pid) = (node.api, node.udp, node.child.id());
    std::thread::sleep(Duration::from_secs(1));
    let (idle_rss, _, _) = proc_stats(pid);

    // Pre-encode a pool of datagrams so the sender is not the bottleneck.
    let mut network = Network::new(args.hosts, false, 7);
    network.widen(args.dependencies as usize);
    let mut exporter = Exporter::new(args.proto, 1);
    let mut flows = Vec::new();
    let mut pool: Vec<(Vec<u8>, u64)> = Vec::new();
    let now = actors::now_ms();
    let mut pool_flows = 0u64;
    // Enough flows that nearly every dependency of the network is in the pool.
    let pool_target = 400_000.max(8 * u64::from(args.dependencies));
    while pool_flows < pool_target {
        flows.clear();
        network.next_flows(1000, now, &mut flows);
        let mut out = Vec::new();
        exporter.encode(&flows, now, &mut out);
        let per = flows.len() as u64 / out.len().max(1) as u64;
        for d in out {
            pool.push((d, per));
        }
        pool_flows += flows.len() as u64;
    }
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let mut steps = Vec::new();
    let mut next = 0usize;
    for &rate in &args.rates {
        let before = metric(api, "flowlens_exporter_records_total");
        let queue_before = metric(api, "flowlens_queue_dropped_flows_total");
        let raw_before = metric(api, "flowlens_raw_dropped_flows_total");
        let (_, _, cpu0) = proc_stats(pid);
        let start = Instant::now();
        let mut offered = 0u64;
        while start.elapsed().as_secs_f64() < args.seconds {
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            while offered < due {
                let (d, n) = &pool[next % pool.len()];
                next += 1;
                let _ = socket.send_to(d, udp);
                offered += n;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        let seconds = start.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_secs(2));
        let accepted = metric(api, "flowlens_exporter_records_total").saturating_sub(before);
        let dropped_in_queue =
            metric(api, "flowlens_queue_dropped_flows_total").saturating_sub(queue_before);
        let raw_dropped =
            metric(api, "flowlens_raw_dropped_flows_total").saturating_sub(raw_before);
        let (rss, _, cpu1) = proc_stats(pid);
        let accepted = accepted.saturating_sub(dropped_in_queue.min(accepted));
        steps.push(Step {
            offered_rate: rate,
            offered,
            accepted,
            raw_dropped,
            seconds,
            cpu_us: cpu1 - cpu0,
            rss,
        });
    }
    let (_, peak, _) = proc_stats(pid);
    let assets = metric(api, "flowlens_assets");
    let deps = metric(api, "flowlens_dependencies");
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = node.child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    let mut md = format!(
        "# Ingest bench ({:?}, {} hosts, {} simulated dependencies, {} s per step)\n\nIdle RSS {:.1} MB · peak RSS {:.1} MB · map at the end: {assets} assets, {deps} dependencies\n\n| offered flows/s | accepted flows/s | loss % | CPU µs/flow | RSS MB | not kept raw |\n|---:|---:|---:|---:|---:|---:|\n",
        args.proto, args.hosts, args.dependencies, args.seconds, idle_rss as f64 / 1e6, peak as f64 / 1e6
    );
    let mut json = Vec::new();
    for s in &steps {
        let loss = if s.offered > 0 {
            100.0 * (s.offered.saturating_sub(s.accepted)) as f64 / s.offered as f64
        } else {
            0.0
        };
        let cpu = s.cpu_us as f64 / s.accepted.max(1) as f64;
        md.push_str(&format!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.1} | {} |\n",
            s.offered_rate,
            s.accepted as f64 / s.seconds,
            loss,
            cpu,
            s.rss as f64 / 1e6,
            s.raw_dropped
        ));
        json.push(format!(
            "{{\"offered_rate\":{},\"offered\":{},\"accepted\":{},\"raw_dropped\":{},\"seconds\":{:.3},\"loss_pct\":{:.3},\"cpu_us_per_flow\":{:.3},\"rss_bytes\":{}}}",
            s.offered_rate, s.offered, s.accepted, s.raw_dropped, s.seconds, loss, cpu, s.rss
        ));
    }
    print!("{md}");
    let results = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results");
    let _ = std::fs::create_dir_all(&results);
    let json = format!(
        "{{\"proto\":\"{:?}\",\"hosts\":{},\"idle_rss_bytes\":{idle_rss},\"peak_rss_bytes\":{peak},\"assets\":{assets},\"dependencies\":{deps},\"steps\":[{}]}}\n",
        args.proto,
        args.hosts,
        json.join(",")
    );
    std::fs::File::create(results.join("ingest.json"))
        .and_then(|mut f| f.write_all(json.as_bytes()))
        .map_err(|e| e.to_string())?;
    std::fs::write(results.join("ingest.md"), md).map_err(|e| e.to_string())?;
    Ok(())
}
