//! The end-to-end benches in their reduced forms, against a (debug) `flowlens node`: the
//! side-by-side ingest bench (every protocol at a low rate for a second, into the node and into
//! nfdump's `nfcapd`/`sfcapd`, each counting exactly the flows offered) and the soak (a few
//! seconds: nothing lost, the projection equal to a replay of its log). Correctness only: speed
//! and memory are the full benches' business (`cargo xtask bench ingest|soak`).

use std::process::Command;

use flowlens_benches::test_flowlens as flowlens;

#[test]
fn every_protocol_reaches_flowlens_and_nfdump_whole_at_a_low_rate() {
    let results = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_ingest"))
        .arg("--flowlens")
        .arg(flowlens())
        .args(["--rates", "3000", "--seconds", "1", "--hosts", "100"])
        .args(["--dependencies", "300", "--settle", "0.3", "--results"])
        .arg(results.path())
        .output()
        .expect("the ingest bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(results.path().join("ingest.json")).expect("ingest.json"),
    )
    .expect("JSON");
    let runs = json["runs"].as_array().expect("runs");
    let seen: Vec<(String, String)> = runs
        .iter()
        .map(|r| {
            (
                r["proto"].as_str().unwrap_or_default().to_owned(),
                r["collector"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for proto in ["V5", "V9", "Ipfix", "Sflow"] {
        let daemon = if proto == "Sflow" { "sfcapd" } else { "nfcapd" };
        for collector in ["flowlens", daemon] {
            assert!(
                seen.contains(&(proto.to_owned(), collector.to_owned())),
                "{proto} into {collector}: {seen:?}"
            );
        }
    }
    for run in runs {
        let step = &run["steps"][0];
        let offered = step["offered"].as_u64().expect("offered");
        assert!(offered >= 2_000, "{run}");
        assert_eq!(
            step["received"].as_u64(),
            Some(offered),
            "every flow counted: {run}"
        );
        assert!(
            run["peak_rss_bytes"].as_u64().is_some_and(|r| r > 0),
            "{run}"
        );
    }
    assert!(stdout.contains("| V5 | nfcapd | 3000 |"), "{stdout}");
}

#[test]
fn a_short_soak_loses_nothing_and_its_projection_equals_a_replay_of_its_log() {
    let results = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_soak"))
        .arg("--flowlens")
        .arg(flowlens())
        .args([
            "--seconds",
            "3",
            "--rate",
            "3000",
            "--sample",
            "1",
            "--hosts",
            "100",
        ])
        .args(["--dependencies", "300", "--results"])
        .arg(results.path())
        .output()
        .expect("the soak runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(results.path().join("soak.json")).expect("soak.json"),
    )
    .expect("JSON");
    assert!(json["offered"].as_u64() >= Some(6_000), "{json}");
    assert_eq!(json["lost"], 0, "{json}");
    assert_eq!(json["received"], json["offered"], "{json}");
    assert_eq!(json["rebuild"]["equal"], true, "{json}");
    assert!(
        json["rss_curve"].as_array().is_some_and(|c| c.len() >= 3),
        "{json}"
    );
}
