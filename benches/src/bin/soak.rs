//! Soak: a release `flowlens node` fed a simulated network's IPFIX flows at one steady rate for a
//! long time, its RSS sampled along the way, then checked: flows lost (offered vs decoded and
//! queued), and the projection against a replay of its own log (`POST /api/v1/admin/rebuild`).
//! Results go to `<results>/soak.md` and `soak.json`.
//!
//! `soak --flowlens <binary> [--seconds 1800] [--rate 100000] [--sample 10] [--hosts N]
//! [--dependencies N] [--results DIR]`

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use flowlens_benches::ingest::{metric, offer, proc_stats, Pool};
use node::simulate::SimProto;

struct Args {
    flowlens: PathBuf,
    seconds: f64,
    rate: u64,
    sample: f64,
    hosts: u32,
    dependencies: u32,
    results: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        flowlens: PathBuf::new(),
        seconds: 1800.0,
        rate: 100_000,
        sample: 10.0,
        hosts: 50_000,
        dependencies: 200_000,
        results: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = |what: &str| -> Result<f64, String> {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| *v > 0.0)
                .ok_or(format!("{what}: a positive number"))
        };
        match flag.as_str() {
            "--flowlens" => args.flowlens = PathBuf::from(&value),
            "--seconds" => args.seconds = number("--seconds")?,
            "--rate" => args.rate = number("--rate")? as u64,
            "--sample" => args.sample = number("--sample")?,
            "--hosts" => args.hosts = number("--hosts")? as u32,
            "--dependencies" => args.dependencies = number("--dependencies")? as u32,
            "--results" => args.results = PathBuf::from(&value),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.flowlens.as_os_str().is_empty() {
        return Err("--flowlens <path to the node binary> is required".into());
    }
    Ok(args)
}

/// `POST /api/v1/admin/rebuild` as the test admin, waiting up to 30 min for the answer.
fn rebuild(api: std::net::SocketAddr) -> Result<serde_json::Value, String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(api).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(1800)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "POST /api/v1/admin/rebuild HTTP/1.1\r\nHost: {api}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
        flowlens_tests::test_token()
    )
    .map_err(|e| e.to_string())?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .map_err(|e| format!("rebuild: {e}"))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("rebuild: no HTTP answer")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "rebuild: {}",
            head.lines().next().unwrap_or_default()
        ));
    }
    serde_json::from_str(body).map_err(|e| format!("rebuild: {e}"))
}

fn main() -> Result<(), String> {
    let args = parse_args()?;
    let dir = std::env::temp_dir().join(format!("flowlens-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let node = flowlens_benches::start_node(&args.flowlens, &dir)?;
    let (api, pid) = (node.api, node.child.id());
    let busiest = (args.rate as f64 * args.sample).min(400_000.0) as u64;
    let pool = Pool::new(
        SimProto::Ipfix,
        args.hosts,
        args.dependencies,
        (8 * u64::from(args.dependencies)).max(busiest),
    );
    let started = Instant::now();
    let (mut offered, mut next) = (0u64, 0usize);
    let mut curve: Vec<(f64, u64)> = vec![(0.0, proc_stats(pid).0)];
    while started.elapsed().as_secs_f64() < args.seconds {
        let left = args.seconds - started.elapsed().as_secs_f64();
        offered += offer(&pool, &mut next, node.udp, args.rate, args.sample.min(left))?;
        curve.push((started.elapsed().as_secs_f64(), proc_stats(pid).0));
    }
    let elapsed = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(3));
    let decoded = metric(api, "flowlens_exporter_records_total");
    let dropped = metric(api, "flowlens_queue_dropped_flows_total");
    let received = decoded.saturating_sub(dropped);
    let lost = offered.saturating_sub(received);
    let (_, peak, _) = proc_stats(pid);
    // Replaying a long soak's log takes a while: up to 30 min.
    let report = match rebuild(api) {
        Ok(r) => r,
        Err(e) => serde_json::json!({ "error": e }),
    };
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);

    let first = curve.get(1).map_or(0, |c| c.1);
    let last = curve.last().map_or(0, |c| c.1);
    let mut md = format!(
        "# Soak: IPFIX at {} flows/s for {:.0} s\n\n{} hosts, {} simulated dependencies. \
         Offered {offered} flows, received {received}, lost {lost} ({:.4} %). Peak RSS {:.1} MB; \
         RSS after the first sample {:.1} MB, at the end {:.1} MB. Projection equal to a replay \
         of its log: {} ({} entries).\n\n| seconds | RSS MB |\n|---:|---:|\n",
        args.rate,
        elapsed,
        args.hosts,
        args.dependencies,
        100.0 * lost as f64 / offered.max(1) as f64,
        peak as f64 / 1e6,
        first as f64 / 1e6,
        last as f64 / 1e6,
        report["equal"],
        report["entries"],
    );
    for (t, rss) in &curve {
        let _ = writeln!(md, "| {t:.0} | {:.1} |", *rss as f64 / 1e6);
    }
    let json = serde_json::json!({
        "rate": args.rate, "seconds": elapsed, "hosts": args.hosts,
        "dependencies": args.dependencies, "offered": offered, "received": received,
        "lost": lost, "peak_rss_bytes": peak, "rebuild": report,
        "rss_curve": curve.iter().map(|(t, r)| serde_json::json!([t, r])).collect::<Vec<_>>(),
    });
    print!("{md}");
    std::fs::create_dir_all(&args.results).map_err(|e| e.to_string())?;
    std::fs::write(args.results.join("soak.md"), md).map_err(|e| e.to_string())?;
    std::fs::write(args.results.join("soak.json"), format!("{json:#}\n"))
        .map_err(|e| e.to_string())?;
    Ok(())
}
