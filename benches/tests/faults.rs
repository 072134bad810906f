//! The fault bench in its reduced form: every scenario once, with a short stream, against debug
//! `flowlens node` processes. Correctness only: each must lose no flow and recover (recovery
//! times are printed, never asserted: they are the full bench's business,
//! `cargo xtask bench faults`). One more run goes through the bench binary itself, checking
//! its table.

use std::process::Command;
use std::time::Duration;

use flowlens_benches::faults::{Outcome, Scale, SCENARIOS};

use flowlens_benches::test_flowlens as flowlens;

/// Runs scenario `name` once at the reduced scale; it must lose nothing.
fn run(name: &str) -> Outcome {
    let (_, _, scenario) = SCENARIOS
        .iter()
        .find(|s| s.0 == name)
        .expect("a known scenario");
    let scale = Scale {
        rounds: 100,
        settle: Duration::from_secs(30),
    };
    let outcome = scenario(&flowlens(), scale).unwrap_or_else(|e| panic!("{name}: {e}"));
    eprintln!("fault {name}: {outcome:?}");
    assert_eq!(outcome.lost, 0, "{name} lost flows: {outcome:?}");
    assert!(outcome.flows > 0, "{outcome:?}");
    outcome
}

#[test]
fn killing_the_leader_mid_stream_loses_nothing_committed() {
    let o = run("kill-leader");
    assert!(o.detail.contains("caught up in"), "{o:?}");
}

#[test]
fn a_killed_follower_misses_nothing_once_restarted() {
    run("kill-follower");
}

#[test]
fn a_frozen_leader_is_replaced_and_rejoins_as_a_follower_losing_nothing() {
    run("freeze-leader");
}

#[test]
fn the_cluster_recovers_by_itself_when_nats_server_restarts() {
    run("restart-nats");
}

#[test]
fn a_full_disk_holds_raw_writes_only_and_they_resume_when_space_returns() {
    run("disk-full");
}

#[test]
fn an_exporter_restarting_with_a_new_template_and_sequence_loses_nothing() {
    run("exporter-restart");
}

#[test]
fn an_exporter_whose_clock_jumps_a_day_loses_nothing() {
    run("clock-jump");
}

#[test]
fn the_bench_binary_tabulates_its_runs_and_refuses_unknown_scenarios() {
    let results = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_faults"))
        .arg("--flowlens")
        .arg(flowlens())
        .args([
            "--rounds",
            "20",
            "--repeat",
            "2",
            "--only",
            "clock-jump",
            "--results",
        ])
        .arg(results.path())
        .output()
        .expect("the fault bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(results.path().join("faults.md")).expect("faults.md");
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| clock-jump"))
        .collect();
    assert_eq!(rows.len(), 2, "{md}");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(results.path().join("faults.json")).expect("faults.json"),
    )
    .expect("JSON");
    let runs = json["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "{json}");
    for r in runs {
        assert_eq!(r["lost"], 0, "{r}");
        assert_eq!(r["flows"], 20, "{r}");
    }

    let out = Command::new(env!("CARGO_BIN_EXE_faults"))
        .arg("--flowlens")
        .arg(flowlens())
        .args(["--only", "unplug-the-rack"])
        .output()
        .expect("the fault bench runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no scenario unplug-the-rack"), "{stderr}");
}
