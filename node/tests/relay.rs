//! The flow relay on a real node: every datagram received goes, byte for byte, to each target
//! whose filters it passes (templates always, data only with a flow in the target's networks and
//! formats), with per-target counters in the API and the metrics, while the node still maps the
//! flows itself.

use std::net::UdpSocket;
use std::time::Duration;

use flowlens_tests::{
    free_tcp_port, free_udp_port, http_get_auth, ipfix_packets, tcp_flow, NodeProcess,
};

fn received(sink: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
    sink.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 65536];
    (0..n)
        .map(|_| {
            let got = sink.recv(&mut buf).expect("a relayed datagram");
            buf[..got].to_vec()
        })
        .collect()
}

#[test]
fn datagrams_are_relayed_unchanged_to_each_target_its_filters_allow() {
    let all = UdpSocket::bind("127.0.0.1:0").expect("sink");
    let lab = UdpSocket::bind("127.0.0.1:0").expect("sink");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("flowlens.toml");
    std::fs::write(
        &config,
        format!(
            "[[relay]]\nname = \"all\"\nto = \"{}\"\n\n\
             [[relay]]\nname = \"lab\"\nto = \"{}\"\nprotocols = [\"ipfix\"]\nsrc = [\"10.2.0.0/24\"]\n\n\
             [[relay]]\nname = \"v5-only\"\nto = \"127.0.0.1:9\"\nprotocols = [\"netflow_v5\"]\n",
            all.local_addr().expect("addr"),
            lab.local_addr().expect("addr")
        ),
    )
    .expect("config");
    let config_arg = config.to_string_lossy().into_owned();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_flowlens"));
    let node = NodeProcess::start(
        bin,
        &dir.path().join("data"),
        free_tcp_port(),
        free_udp_port(),
        &["--config", &config_arg],
        &[],
    );
    node.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");

    let [template, lab_data] = ipfix_packets(&[tcp_flow("10.2.0.7", "10.1.0.10", 443, 1_000)]);
    let [_, other_data] = ipfix_packets(&[tcp_flow("10.9.0.7", "10.1.0.10", 443, 2_000)]);
    node.send(&[&template, &lab_data, &other_data]);
    assert_eq!(
        received(&all, 3),
        [template.clone(), lab_data.clone(), other_data]
    );
    assert_eq!(received(&lab, 2), [template, lab_data]);
    // The node maps them too.
    node.wait_until(|n| n.dependencies().len() == 2, "both dependencies mapped");

    let (status, stats) = node.get("/api/v1/relay");
    assert_eq!(status, 200, "{stats}");
    let of = |name: &str| {
        stats
            .as_array()
            .and_then(|a| a.iter().find(|t| t["name"] == name).cloned())
            .unwrap_or_default()
    };
    assert_eq!(
        (of("all")["sent"].as_u64(), of("all")["filtered"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(
        (of("lab")["sent"].as_u64(), of("lab")["filtered"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(of("v5-only")["filtered"].as_u64(), Some(3));
    let metrics = http_get_auth(node.api, "/metrics").expect("metrics").1;
    assert!(
        metrics.contains("flowlens_relay_sent_total{target=\"lab\"} 2"),
        "{metrics}"
    );
    // A target without a port is refused at start.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[relay]]\nname = \"x\"\nto = \"127.0.0.1:0\"\n").expect("bad config");
    let out = std::process::Command::new(bin)
        .args(["node", "--config"])
        .arg(&bad)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`to` must be a host and port"));
}
