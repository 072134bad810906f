//! Housekeeping on a real node. The disk guard: with less free space than
//! `retention.min_free_bytes` (here an impossible floor), raw flows are not written while the map
//! still grows, a CRITICAL `disk_space` advisory says why, and an alert rule on advisories turns
//! it into an alert. Retention: the event history is pruned past `retention.events` while the
//! map keeps what it learnt.

use flowlens_tests::{
    free_tcp_port, free_udp_port, http_get_auth, ipfix_packets, tcp_flow, NodeProcess,
};

fn metric(node: &NodeProcess, name: &str) -> Option<u64> {
    metric_line(node, name)
}

/// The value of the metric line starting `series ` (a name, or a name with labels).
fn metric_line(node: &NodeProcess, series: &str) -> Option<u64> {
    let text = http_get_auth(node.api, "/metrics").ok()?.1;
    text.lines()
        .find(|l| l.starts_with(&format!("{series} ")))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn below_the_free_space_floor_raw_writes_stop_and_an_advisory_and_alert_say_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_flowlens"));
    // First an alert rule on CRITICAL advisories, on a node with room to spare.
    let (api, udp) = (free_tcp_port(), free_udp_port());
    let node = NodeProcess::start(bin, dir.path(), api, udp, &[], &[]);
    node.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
    let (status, rule) = node.send_json(
        "POST",
        "/api/v1/alert-rules",
        &serde_json::json!({"name": "disk", "condition": {"on": "advisory", "min_severity": "CRITICAL"}}),
    );
    assert_eq!(status, 201, "{rule}");
    assert_eq!(metric(&node, "flowlens_raw_held"), Some(0));
    drop(node);
    // Then the same node with a floor no disk reaches.
    let env = [("FLOWLENS_RETENTION__MIN_FREE_BYTES", "1000000000000000000")];
    let node = NodeProcess::start(bin, dir.path(), api, udp, &[], &env);
    node.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready again");
    node.wait_until(
        |n| {
            n.get("/api/v1/advisories").1["items"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["kind"] == "disk_space"))
        },
        "the disk_space advisory",
    );
    let (_, advisories) = node.get("/api/v1/advisories");
    let disk = advisories["items"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["kind"] == "disk_space").cloned())
        .unwrap_or_default();
    assert_eq!(disk["severity"], "CRITICAL", "{disk}");
    assert!(disk["summary"]
        .as_str()
        .is_some_and(|s| s.contains("raw flows are no longer written")));
    assert_eq!(metric(&node, "flowlens_raw_held"), Some(1));
    assert!(metric(&node, "flowlens_disk_free_bytes").is_some_and(|f| f > 0));

    let [template, data] = ipfix_packets(&[tcp_flow("10.2.0.1", "10.1.0.10", 443, 1_000)]);
    node.send(&[&template, &data]);
    node.wait_until(|n| n.dependencies().len() == 1, "the map still grows");
    node.wait_until(
        |n| metric(n, "flowlens_raw_guarded_flows_total").is_some_and(|g| g >= 1),
        "the flow held back from disk",
    );
    assert_eq!(metric(&node, "flowlens_raw_flows_written_total"), Some(0));
    // The rule on CRITICAL advisories raised an alert naming it.
    node.wait_until(
        |n| {
            n.get("/api/v1/alerts")
                .1
                .to_string()
                .contains("raw flows are no longer written")
        },
        "the alert from the advisory",
    );
}

/// The `dependency.discovered` events the history serves: (total, each one's dependency id).
fn discovered(node: &NodeProcess) -> (u64, Vec<String>) {
    let (_, page) = node.get("/api/v1/history/events?kind=dependency.discovered&limit=100");
    let ids = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let d = &i["dependency"];
            let client = d["client"].as_str().unwrap_or_default();
            let server = d["service"]["ip"].as_str().unwrap_or_default();
            format!("{client}>{server}:{}", d["service"]["port"])
        })
        .collect();
    (page["total"].as_u64().unwrap_or(u64::MAX), ids)
}

#[test]
fn the_event_history_is_pruned_past_its_retention_and_the_map_is_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_flowlens"));
    let (api, udp) = (free_tcp_port(), free_udp_port());
    let env = [("FLOWLENS_RETENTION__EVENTS", "4s")];
    let node = NodeProcess::start(bin, dir.path(), api, udp, &[], &env);
    node.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
    let before = flowlens_tests::now_ms();
    let [template, data] = ipfix_packets(&[tcp_flow("10.2.0.1", "10.1.0.10", 443, 1_000)]);
    node.send(&[&template, &data]);
    node.wait_until(|n| n.dependencies().len() == 1, "the first dependency");
    let first = "10.2.0.1>10.1.0.10:443".to_owned();
    assert_eq!(discovered(&node), (1, vec![first.clone()]));
    assert_eq!(metric(&node, "flowlens_history_starts_ms"), Some(0));

    // 4 s on (and a checkpoint after the event), the history restarts after it.
    node.wait_until(|n| discovered(n).0 == 0, "the first event pruned");
    // The counters move once the round has pruned the index too, just after the history.
    node.wait_until(
        |n| metric(n, "flowlens_history_prunes_total").is_some_and(|p| p >= 1),
        "the prune counted",
    );
    node.wait_until(
        |n| metric(n, "flowlens_history_index_pruned_total").is_some_and(|p| p >= 1),
        "the history index pruned",
    );
    let starts = metric(&node, "flowlens_history_starts_ms").expect("history start");
    assert!(
        starts > before,
        "the history starts after the first event: {starts} vs {before}"
    );
    assert!(dir.path().join("history").join("base.snap").is_file());
    assert!(metric_line(&node, "flowlens_data_bytes{part=\"history\"}").is_some_and(|b| b > 0));

    // A new dependency is in the history; the first is still on the map.
    let [template, data] = ipfix_packets(&[tcp_flow("10.2.0.2", "10.1.0.10", 443, 2_000)]);
    node.send(&[&template, &data]);
    node.wait_until(|n| n.dependencies().len() == 2, "the second dependency");
    let second = "10.2.0.2>10.1.0.10:443".to_owned();
    assert_eq!(discovered(&node), (1, vec![second]));
    assert!(node.dependencies().contains_key(&format!("{first}/6")));
    // The map as of before the history's start cannot be replayed, and says why.
    let (status, body) = node.get(&format!("/api/v1/topology?at={before}"));
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("retention.events"), "{body}");
    // The projection still equals the history replayed from its new base.
    let (status, report) = node.send_json("POST", "/api/v1/admin/rebuild", &serde_json::json!({}));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["equal"], true, "{report}");

    // Restarted, the node opens its pruned history and goes on.
    drop(node);
    let node = NodeProcess::start(bin, dir.path(), api, udp, &[], &env);
    node.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready again");
    assert_eq!(node.dependencies().len(), 2);
    assert!(discovered(&node).0 <= 1);
}
