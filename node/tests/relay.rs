//! The flow relay on a real node: every datagram received goes, byte for byte, to each target
//! whose filters it passes (templates always, data only with a flow in the target's networks and
//! formats), with per-target counters in the API and the metrics, while the node still maps the
//! flows itself. `flowlens forward` does the same on its own, and a `keep_source` target gets
//! each datagram from the exporter's own address and port.

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

    // Counted once the OS took each datagram, which may be just after it arrived.
    node.wait_until(
        |n| {
            let sent = |name: &str| {
                n.get("/api/v1/relay").1.as_array().and_then(|a| {
                    a.iter()
                        .find(|t| t["name"] == name)
                        .and_then(|t| t["sent"].as_u64())
                })
            };
            sent("all") == Some(3) && sent("lab") == Some(2)
        },
        "the relay's counters",
    );
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

/// A `flowlens forward` process, killed when dropped.
struct Forward(std::process::Child);

impl Drop for Forward {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn flowlens_forward_relays_on_its_own_and_can_keep_the_exporters_address() {
    let plain = UdpSocket::bind("127.0.0.1:0").expect("sink");
    let keep = UdpSocket::bind("127.0.0.1:0").expect("sink");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("forward.toml");
    std::fs::write(
        &config,
        format!(
            "[[relay]]\nname = \"keep\"\nto = \"{}\"\nkeep_source = true\nsrc = [\"10.2.0.0/24\"]\n",
            keep.local_addr().expect("addr")
        ),
    )
    .expect("config");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_flowlens"));
    let (listen, metrics) = (free_udp_port(), free_tcp_port());
    let _forward = Forward(
        std::process::Command::new(bin)
            .arg("forward")
            .args(["--listen", &format!("127.0.0.1:{listen}")])
            .args([
                "--to",
                &format!("plain={}", plain.local_addr().expect("addr")),
            ])
            .arg("--config")
            .arg(&config)
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics}")])
            .spawn()
            .expect("flowlens forward starts"),
    );
    let metrics_addr = std::net::SocketAddr::from(([127, 0, 0, 1], metrics));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while flowlens_tests::http_get(metrics_addr, "/metrics").is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "forward never served metrics"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The exporter: its own loopback address, so that a kept source is told from the relay's.
    let exporter = UdpSocket::bind("127.0.0.7:0").expect("exporter");
    let [template, lab_data] = ipfix_packets(&[tcp_flow("10.2.0.7", "10.1.0.10", 443, 1_000)]);
    let [_, other_data] = ipfix_packets(&[tcp_flow("10.9.0.7", "10.1.0.10", 443, 2_000)]);
    for d in [&template, &lab_data, &other_data] {
        exporter.send_to(d, ("127.0.0.1", listen)).expect("sent");
    }
    assert_eq!(
        received(&plain, 3),
        [template.clone(), lab_data.clone(), other_data]
    );
    keep.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 65536];
    for want in [&template, &lab_data] {
        let (n, from) = keep.recv_from(&mut buf).expect("a relayed datagram");
        assert_eq!(&buf[..n], want.as_slice());
        assert_eq!(
            from,
            exporter.local_addr().expect("addr"),
            "the exporter's source"
        );
    }
    // A sender counts a datagram once the OS took it, which may be just after it arrived.
    let lines = [
        "flowlens_forward_datagrams_total 3",
        "flowlens_relay_sent_total{target=\"plain\"} 3",
        "flowlens_relay_sent_total{target=\"keep\"} 2",
        "flowlens_relay_filtered_total{target=\"keep\"} 1",
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = flowlens_tests::http_get(metrics_addr, "/metrics")
            .expect("metrics")
            .1;
        if lines.iter().all(|l| text.contains(l)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{lines:?} in {text}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Bad plans are refused with the reason.
    for (args, why) in [
        (vec!["--to", "nowhere"], "expected NAME=HOST:PORT"),
        (vec!["--listen", "127.0.0.1:0"], "nothing to forward to"),
        (
            vec!["--to", "v6=[::1]:2055", "--keep-source"],
            "keep_source sends IPv4 packets",
        ),
    ] {
        let out = std::process::Command::new(bin)
            .arg("forward")
            .args(&args)
            .output()
            .expect("runs");
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
}
