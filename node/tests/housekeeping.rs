//! The disk guard on a real node: with less free space than `retention.min_free_bytes` (here an
//! impossible floor), raw flows are not written while the map still grows, a CRITICAL
//! `disk_space` advisory says why, and an alert rule on advisories turns it into an alert.

use flowlens_tests::{
    free_tcp_port, free_udp_port, http_get_auth, ipfix_packets, tcp_flow, NodeProcess,
};

fn metric(node: &NodeProcess, name: &str) -> Option<u64> {
    let text = http_get_auth(node.api, "/metrics").ok()?.1;
    text.lines()
        .find(|l| l.starts_with(&format!("{name} ")))?
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
