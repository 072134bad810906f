//! Advisories on a real node fed real IPFIX packets: a port scan (sent twice), a Telnet session
//! and traffic to a network that stops each raise their advisory exactly once, with plain
//! words, a severity and an evidence link; the Telnet one resolves after the expiry. A reply
//! that comes back over another interface than its request raises an asymmetry advisory.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use flowlens_tests::{free_tcp_port, free_udp_port, ipfix_packets, tcp_flow, NodeProcess};
use proto::FlowRecord;
use serde_json::Value;

fn send(node: &NodeProcess, flows: &[FlowRecord]) {
    for chunk in flows.chunks(20) {
        let [template, data] = ipfix_packets(chunk);
        node.send(&[&template, &data]);
    }
}

fn advisories(node: &NodeProcess) -> BTreeMap<String, Value> {
    let (_, body) = node.get("/api/v1/advisories?status=all&limit=1000");
    body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| (a["id"].as_str().unwrap_or_default().to_owned(), a.clone()))
        .collect()
}

fn raised(node: &NodeProcess) -> BTreeMap<String, usize> {
    let (_, body) = node.get("/api/v1/history/events?kind=advisory.raised&limit=1000");
    let mut count = BTreeMap::new();
    for e in body["items"].as_array().into_iter().flatten() {
        *count
            .entry(e["advisory"]["id"].as_str().unwrap_or_default().to_owned())
            .or_insert(0) += 1;
    }
    count
}

const SCAN: &str = "port_scan:10.0.0.66>10.0.1.5";
const TELNET: &str = "insecure_protocol:10.0.1.9:23/6";
const DROP: &str = "traffic_drop:192.168.5.0/24";
const ASYMMETRY: &str = "flow_asymmetry:127.0.0.1/1/2>127.0.0.1/3/1";

#[test]
fn a_scan_a_telnet_session_and_a_traffic_drop_each_raise_one_advisory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_flowlens"));
    let env = [
        ("FLOWLENS_ADVISORIES__WINDOW", "1s"),
        ("FLOWLENS_ADVISORIES__EXPIRE", "4s"),
        ("FLOWLENS_ADVISORIES__BASELINE_WINDOWS", "3"),
        ("FLOWLENS_ADVISORIES__ANOMALY_MIN_BYTES", "50000"),
    ];
    let node = NodeProcess::start(bin, dir.path(), free_tcp_port(), free_udp_port(), &[], &env);
    node.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");

    // Steady traffic to 192.168.5.0/24 for about five windows, a scan and a Telnet login.
    let scan: Vec<FlowRecord> = (1..=120)
        .map(|p| tcp_flow("10.0.0.66", "10.0.1.5", p, 40))
        .collect();
    let started = Instant::now();
    let mut scans = 0;
    while started.elapsed() < Duration::from_millis(5_500) {
        send(&node, &[tcp_flow("10.0.0.20", "192.168.5.10", 443, 40_000)]);
        if scans < 2 && started.elapsed() >= Duration::from_millis(1_500 * (scans + 1)) {
            send(&node, &scan);
            scans += 1;
        }
        if scans == 1 && started.elapsed() < Duration::from_millis(1_700) {
            send(&node, &[tcp_flow("10.0.0.7", "10.0.1.9", 23, 900)]);
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    assert_eq!(scans, 2);
    // A request in on interface 1 and out on 2, its reply back in on 3: asymmetric.
    let mut request = tcp_flow("10.0.0.30", "10.0.3.3", 8443, 700);
    (request.in_if, request.out_if) = (1, 2);
    let mut reply = tcp_flow("10.0.3.3", "10.0.0.30", 0, 900);
    (reply.src_port, reply.dst_port, reply.tcp_flags) = (8443, 45_000, 0x12);
    (reply.in_if, reply.out_if) = (3, 1);
    send(&node, &[request, reply]);

    // Then it stops: the drop shows within a couple of windows.
    node.wait_until(
        |n| advisories(n).contains_key(DROP),
        "traffic drop advisory",
    );
    let all = advisories(&node);
    let scan = &all[SCAN];
    assert_eq!(scan["severity"], "WARNING");
    assert_eq!(scan["kind"], "port_scan");
    assert!(
        scan["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("10.0.0.66 probed 120 ports on 10.0.1.5 in 1 s")),
        "{scan}"
    );
    assert_eq!(scan["evidence"], "/api/v1/flows?src=10.0.0.66&dst=10.0.1.5");
    let telnet = &all[TELNET];
    assert_eq!(telnet["severity"], "WARNING");
    assert!(
        telnet["summary"]
            .as_str()
            .is_some_and(|s| s == "Telnet in use on 10.0.1.9:23/6 (1 client): Telnet sends logins and sessions in clear text"),
        "{telnet}"
    );
    let drop = &all[DROP];
    assert_eq!(drop["severity"], "CRITICAL");
    assert!(
        drop["summary"]
            .as_str()
            .is_some_and(|s| s.contains("traffic to 192.168.5.0/24 dropped")),
        "{drop}"
    );
    // Most severe first.
    let (_, listed) = node.get("/api/v1/advisories?status=all");
    assert_eq!(listed["items"][0]["severity"], "CRITICAL", "{listed}");
    let (_, critical) = node.get("/api/v1/advisories?status=all&severity=critical");
    assert_eq!(critical["total"], 1, "{critical}");

    // The Telnet advisory resolves once it has not been seen for the expiry.
    node.wait_until(
        |n| {
            advisories(n)
                .get(TELNET)
                .is_some_and(|a| a["status"] == "resolved")
        },
        "telnet resolved",
    );
    let telnet = &advisories(&node)[TELNET];
    assert_eq!(telnet["resolution"], "not seen for 4s");

    node.wait_until(
        |n| advisories(n).contains_key(ASYMMETRY),
        "asymmetry advisory",
    );
    assert_eq!(advisories(&node)[ASYMMETRY]["severity"], "INFO");

    // Each was raised exactly once, the scan too although it was sent twice.
    let raised = raised(&node);
    for id in [SCAN, TELNET, DROP, ASYMMETRY] {
        assert_eq!(raised.get(id), Some(&1), "{id}: {raised:?}");
    }
    let (status, body) = node.get("/api/v1/advisories?severity=loud");
    assert_eq!(
        (status, &body["parameter"]),
        (400, &serde_json::json!("severity"))
    );
}
