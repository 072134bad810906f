//! Side-by-side ingest bench: for each protocol, offers a simulated network's flows over
//! loopback UDP at stepped rates to a release `flowlens node` (which decodes, aggregates, maps
//! and stores them) and to nfdump's `nfcapd`/`sfcapd` (which writes flow files), and reports
//! per step offered vs received flows/s, loss, CPU µs per flow and RSS, then each collector's
//! highest lossless rate and peak RSS. Results go to `<results>/ingest.md` and `ingest.json`.
//!
//! `ingest --flowlens <binary> [--protos v5,v9,ipfix,sflow] [--collectors flowlens,nfdump]
//! [--hosts N] [--dependencies N] [--seconds S] [--rates 100000,300000,1000000]
//! [--results DIR] [--settle SECONDS]`

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use flowlens_benches::ingest::{metric, nfdump_daemon, offer, proc_stats, Nfdump, Pool};
use node::simulate::SimProto;

/// Loss at or below this share still counts as lossless (a datagram in a million).
const LOSSLESS_PCT: f64 = 0.0001;

struct Args {
    flowlens: PathBuf,
    protos: Vec<SimProto>,
    collectors: Vec<String>,
    hosts: u32,
    dependencies: u32,
    seconds: f64,
    rates: Vec<u64>,
    results: PathBuf,
    /// Quiet time before idle readings and after each step before counting.
    settle: Duration,
}

fn proto(name: &str) -> Result<SimProto, String> {
    match name {
        "v5" => Ok(SimProto::V5),
        "v9" => Ok(SimProto::V9),
        "ipfix" => Ok(SimProto::Ipfix),
        "sflow" => Ok(SimProto::Sflow),
        other => Err(format!("--protos {other}: use v5, v9, ipfix or sflow")),
    }
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        flowlens: PathBuf::new(),
        protos: vec![SimProto::V5, SimProto::V9, SimProto::Ipfix, SimProto::Sflow],
        collectors: vec!["flowlens".into(), "nfdump".into()],
        hosts: 50_000,
        dependencies: 200_000,
        seconds: 10.0,
        rates: vec![100_000, 300_000, 1_000_000],
        results: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results"),
        settle: Duration::from_secs(2),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let list = || value.split(',').map(str::trim).filter(|v| !v.is_empty());
        match flag.as_str() {
            "--flowlens" => args.flowlens = PathBuf::from(&value),
            "--protos" | "--proto" => args.protos = list().map(proto).collect::<Result<_, _>>()?,
            "--collectors" => {
                args.collectors = list().map(str::to_owned).collect();
                if let Some(c) = args
                    .collectors
                    .iter()
                    .find(|c| *c != "flowlens" && *c != "nfdump")
                {
                    return Err(format!("--collectors {c}: use flowlens and/or nfdump"));
                }
            }
            "--hosts" => args.hosts = value.parse().map_err(|_| "--hosts: a number")?,
            "--dependencies" => {
                args.dependencies = value.parse().map_err(|_| "--dependencies: a number")?
            }
            "--seconds" => args.seconds = value.parse().map_err(|_| "--seconds: a number")?,
            "--rates" => {
                args.rates = list()
                    .map(str::parse::<u64>)
                    .collect::<Result<_, _>>()
                    .map_err(|_| "--rates: comma-separated numbers")?
            }
            "--results" => args.results = PathBuf::from(&value),
            "--settle" => {
                let s: f64 = value.parse().map_err(|_| "--settle: seconds")?;
                args.settle = Duration::from_secs_f64(s.clamp(0.0, 60.0));
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.collectors.iter().any(|c| c == "flowlens") && args.flowlens.as_os_str().is_empty() {
        return Err("--flowlens <path to the release binary> is required".into());
    }
    Ok(args)
}

/// One step's outcome for one collector.
struct Step {
    rate: u64,
    offered: u64,
    received: u64,
    seconds: f64,
    cpu_us: u64,
    rss: u64,
}

impl Step {
    fn loss_pct(&self) -> f64 {
        if self.offered == 0 {
            return 0.0;
        }
        100.0 * self.offered.saturating_sub(self.received) as f64 / self.offered as f64
    }
}

/// One collector's run over the rates for one protocol.
struct Run {
    proto: SimProto,
    collector: &'static str,
    idle_rss: u64,
    peak_rss: u64,
    steps: Vec<Step>,
    /// What the collector kept at the end (FlowLens: its map).
    note: String,
}

impl Run {
    fn highest_lossless(&self) -> Option<u64> {
        self.steps
            .iter()
            .filter(|s| s.loss_pct() <= LOSSLESS_PCT)
            .map(|s| s.rate)
            .max()
    }
}

fn flowlens_run(args: &Args, proto: SimProto, pool: &Pool) -> Result<Run, String> {
    let dir = std::env::temp_dir().join(format!("flowlens-ingest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let node = flowlens_benches::start_node(&args.flowlens, &dir)?;
    let (api, pid) = (node.api, node.child.id());
    std::thread::sleep(args.settle);
    let (idle_rss, _, _) = proc_stats(pid);
    let raw_before = metric(api, "flowlens_raw_dropped_flows_total");
    let mut steps = Vec::new();
    let mut next = 0;
    for &rate in &args.rates {
        let before = metric(api, "flowlens_exporter_records_total");
        let queue_before = metric(api, "flowlens_queue_dropped_flows_total");
        let (_, _, cpu0) = proc_stats(pid);
        let start = std::time::Instant::now();
        let offered = offer(pool, &mut next, node.udp, rate, args.seconds)?;
        let seconds = start.elapsed().as_secs_f64();
        std::thread::sleep(args.settle);
        let decoded = metric(api, "flowlens_exporter_records_total").saturating_sub(before);
        let dropped =
            metric(api, "flowlens_queue_dropped_flows_total").saturating_sub(queue_before);
        let (rss, _, cpu1) = proc_stats(pid);
        steps.push(Step {
            rate,
            offered,
            received: decoded.saturating_sub(dropped.min(decoded)),
            seconds,
            cpu_us: cpu1.saturating_sub(cpu0),
            rss,
        });
    }
    let (_, peak_rss, _) = proc_stats(pid);
    let note = format!(
        "map at the end: {} assets, {} dependencies; {} flows mapped but not kept raw",
        metric(api, "flowlens_assets"),
        metric(api, "flowlens_dependencies"),
        metric(api, "flowlens_raw_dropped_flows_total").saturating_sub(raw_before)
    );
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Run {
        proto,
        collector: "flowlens",
        idle_rss,
        peak_rss,
        steps,
        note,
    })
}

fn nfdump_run(args: &Args, proto: SimProto, pool: &Pool) -> Result<Run, String> {
    let daemon = nfdump_daemon(proto);
    let (mut steps, mut idle_rss, mut peak_rss) = (Vec::new(), 0, 0);
    let mut next = 0;
    for &rate in &args.rates {
        // A fresh daemon and directory per step: its file holds exactly this step's flows.
        let dir = std::env::temp_dir().join(format!("nfdump-ingest-{}-{rate}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let collector = Nfdump::start(daemon, &dir)?;
        let pid = collector.pid();
        let (rss0, _, cpu0) = proc_stats(pid);
        idle_rss = idle_rss.max(rss0);
        let start = std::time::Instant::now();
        let offered = offer(pool, &mut next, collector.udp, rate, args.seconds)?;
        let seconds = start.elapsed().as_secs_f64();
        std::thread::sleep(args.settle);
        let (rss, peak, cpu1) = proc_stats(pid);
        peak_rss = peak_rss.max(peak);
        let received = collector.stop_and_count()?;
        let _ = std::fs::remove_dir_all(&dir);
        steps.push(Step {
            rate,
            offered,
            received,
            seconds,
            cpu_us: cpu1.saturating_sub(cpu0),
            rss,
        });
    }
    Ok(Run {
        proto,
        collector: daemon,
        idle_rss,
        peak_rss,
        steps,
        note: "flow files only".into(),
    })
}

fn report(args: &Args, runs: &[Run]) -> (String, String) {
    let mut md = format!(
        "# Ingest bench: FlowLens beside nfdump\n\n{} hosts, {} simulated dependencies, {} s per \
         step, loopback UDP, one sender. Lossless: at most {LOSSLESS_PCT} % lost.\n\n\
         | protocol | collector | highest lossless flows/s | idle RSS MB | peak RSS MB | notes |\n\
         |---|---|---:|---:|---:|---|\n",
        args.hosts, args.dependencies, args.seconds
    );
    for r in runs {
        let _ = writeln!(
            md,
            "| {:?} | {} | {} | {:.1} | {:.1} | {} |",
            r.proto,
            r.collector,
            r.highest_lossless()
                .map_or("none".into(), |v| v.to_string()),
            r.idle_rss as f64 / 1e6,
            r.peak_rss as f64 / 1e6,
            r.note
        );
    }
    md.push_str(
        "\n| protocol | collector | offered flows/s | received flows/s | loss % | CPU µs/flow | RSS MB |\n\
         |---|---|---:|---:|---:|---:|---:|\n",
    );
    let mut json = Vec::new();
    for r in runs {
        let mut steps = Vec::new();
        for s in &r.steps {
            let cpu = s.cpu_us as f64 / s.received.max(1) as f64;
            let _ = writeln!(
                md,
                "| {:?} | {} | {} | {:.0} | {:.3} | {:.2} | {:.1} |",
                r.proto,
                r.collector,
                s.rate,
                s.received as f64 / s.seconds,
                s.loss_pct(),
                cpu,
                s.rss as f64 / 1e6
            );
            steps.push(serde_json::json!({
                "offered_rate": s.rate, "offered": s.offered, "received": s.received,
                "seconds": s.seconds, "loss_pct": s.loss_pct(), "cpu_us_per_flow": cpu,
                "rss_bytes": s.rss,
            }));
        }
        json.push(serde_json::json!({
            "proto": format!("{:?}", r.proto), "collector": r.collector,
            "idle_rss_bytes": r.idle_rss, "peak_rss_bytes": r.peak_rss,
            "highest_lossless_rate": r.highest_lossless(), "note": r.note, "steps": steps,
        }));
    }
    let json = serde_json::json!({
        "hosts": args.hosts, "dependencies": args.dependencies, "seconds_per_step": args.seconds,
        "lossless_pct": LOSSLESS_PCT, "runs": json,
    });
    (md, format!("{json:#}\n"))
}

fn main() -> Result<(), String> {
    let args = parse_args()?;
    let mut runs = Vec::new();
    for &proto in &args.protos {
        // Enough flows that nearly every dependency of the network is in the pool, and (up to
        // 400 000) that a step replays little of it twice.
        let busiest = args.rates.iter().max().copied().unwrap_or(0) as f64 * args.seconds;
        let pool_flows = (8 * u64::from(args.dependencies)).max(busiest.min(400_000.0) as u64);
        let pool = Pool::new(proto, args.hosts, args.dependencies, pool_flows);
        for collector in &args.collectors {
            eprintln!("ingest bench: {proto:?} into {collector}");
            runs.push(match collector.as_str() {
                "flowlens" => flowlens_run(&args, proto, &pool)?,
                _ => nfdump_run(&args, proto, &pool)?,
            });
        }
    }
    let (md, json) = report(&args, &runs);
    print!("{md}");
    std::fs::create_dir_all(&args.results).map_err(|e| e.to_string())?;
    std::fs::write(args.results.join("ingest.json"), json).map_err(|e| e.to_string())?;
    std::fs::write(args.results.join("ingest.md"), md).map_err(|e| e.to_string())?;
    Ok(())
}
