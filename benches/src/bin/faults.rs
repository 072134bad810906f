//! The fault bench: every fault scenario ([`flowlens_benches::faults::SCENARIOS`]) against real
//! `flowlens node` processes (and a real nats-server), `--repeat` times each, tabulating flows
//! sent, flows lost (must be 0) and recovery time. Results go to `<results>/faults.md` and
//! `faults.json`; the exit status is non-zero when any run lost a flow or failed.
//!
//! `faults --flowlens <binary> [--rounds 250] [--repeat 3] [--only NAME[,NAME…]] [--results DIR]`

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use flowlens_benches::faults::{Scale, SCENARIOS};

struct Args {
    flowlens: PathBuf,
    rounds: u8,
    repeat: u32,
    only: Vec<String>,
    results: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        flowlens: PathBuf::new(),
        rounds: 250,
        repeat: 3,
        only: Vec::new(),
        results: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--flowlens" => args.flowlens = PathBuf::from(&value),
            "--rounds" => {
                args.rounds = value
                    .parse()
                    .ok()
                    .filter(|r| *r >= 10)
                    .ok_or("--rounds: 10 to 255")?;
            }
            "--repeat" => {
                args.repeat = value
                    .parse()
                    .ok()
                    .filter(|r| *r >= 1)
                    .ok_or("--repeat: 1 or more")?;
            }
            "--only" => {
                for name in value.split(',') {
                    if !SCENARIOS.iter().any(|s| s.0 == name) {
                        let known: Vec<&str> = SCENARIOS.iter().map(|s| s.0).collect();
                        return Err(format!("--only: no scenario {name} (known: {known:?})"));
                    }
                    args.only.push(name.to_owned());
                }
            }
            "--results" => args.results = PathBuf::from(&value),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.flowlens.as_os_str().is_empty() {
        return Err("--flowlens <path to the node binary> is required".into());
    }
    Ok(args)
}

fn main() -> Result<(), String> {
    let args = parse_args()?;
    let scale = Scale {
        rounds: args.rounds,
        settle: Duration::from_secs(60),
    };
    let mut md = format!(
        "# Fault scenarios\n\nEach run: a stream of {} rounds of 5 flows (one every 40 ms, each \
         flow a dependency of its own), the fault a third of the way in. Lost: flows missing, \
         doubled or short on the worst node once settled (must be 0). Recovery: from the fault \
         (or its end) until a flow sent then is on every running node's map.\n\n\
         | scenario | fault | run | flows | lost | recovery ms | what else |\n\
         |---|---|---:|---:|---:|---:|---|\n",
        args.rounds
    );
    let mut runs = Vec::new();
    let mut failed = 0;
    for (name, fault, run) in SCENARIOS {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == name) {
            continue;
        }
        for i in 1..=args.repeat {
            eprintln!("fault bench: {name}, run {i}");
            match run(&args.flowlens, scale) {
                Ok(o) => {
                    failed += usize::from(o.lost > 0);
                    let ms = o.recovery.as_secs_f64() * 1e3;
                    let _ = writeln!(
                        md,
                        "| {name} | {fault} | {i} | {} | {} | {ms:.0} | {} |",
                        o.flows, o.lost, o.detail
                    );
                    runs.push(serde_json::json!({
                        "scenario": name, "run": i, "flows": o.flows, "lost": o.lost,
                        "recovery_ms": ms, "detail": o.detail,
                    }));
                }
                Err(e) => {
                    failed += 1;
                    let _ = writeln!(md, "| {name} | {fault} | {i} | | | | FAILED: {e} |");
                    runs.push(serde_json::json!({ "scenario": name, "run": i, "error": e }));
                }
            }
        }
    }
    print!("{md}");
    std::fs::create_dir_all(&args.results).map_err(|e| e.to_string())?;
    std::fs::write(args.results.join("faults.md"), &md).map_err(|e| e.to_string())?;
    let json = serde_json::json!({ "rounds": args.rounds, "runs": runs });
    std::fs::write(args.results.join("faults.json"), format!("{json:#}\n"))
        .map_err(|e| e.to_string())?;
    if failed > 0 {
        return Err(format!("{failed} runs lost flows or failed"));
    }
    Ok(())
}
