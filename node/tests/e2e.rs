//! End to end: a real `flowlens node` process receives real exporter captures over UDP; the REST
//! API must then show the captured network — assets, dependencies in the right direction, byte
//! totals equal to tshark's truth. Also: bad parameters are 400s naming the parameter, and a node
//! killed with SIGKILL mid-stream restarts with everything committed and its templates.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flowlens_tests::{data_dir, free_tcp_port, free_udp_port, http_get, load_truth, read_pcap};
use serde_json::Value;

struct NodeProcess {
    child: Child,
    api: SocketAddr,
    udp: SocketAddr,
}

impl NodeProcess {
    fn start(data: &Path, api_port: u16, udp_port: u16) -> NodeProcess {
        let api = SocketAddr::from(([127, 0, 0, 1], api_port));
        let udp = SocketAddr::from(([127, 0, 0, 1], udp_port));
        let child = Command::new(env!("CARGO_BIN_EXE_flowlens"))
            .args(["node", "--data-dir"])
            .arg(data)
            .args([
                "--api-listen",
                &api.to_string(),
                "--listen",
                &udp.to_string(),
            ])
            .env("FLOWLENS_AGGREGATOR__FLUSH_INTERVAL", "100ms")
            .env("FLOWLENS_GRAPH__STATS_INTERVAL", "200ms")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("flowlens starts");
        let node = NodeProcess { child, api, udp };
        node.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
        node
    }

    fn get(&self, path: &str) -> (u16, Value) {
        match http_get(self.api, path) {
            Ok((status, body)) => (status, serde_json::from_str(&body).unwrap_or(Value::Null)),
            Err(_) => (0, Value::Null),
        }
    }

    fn wait_until(&self, mut ok: impl FnMut(&NodeProcess) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if ok(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let (_, deps) = self.get("/api/v1/dependencies?limit=10000&status=all");
        panic!("node did not become {what} in 30 s; dependencies: {deps}");
    }

    fn send(&self, payloads: &[&[u8]]) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        for p in payloads {
            socket.send_to(p, self.udp).expect("send");
            // Loopback drops nothing, but a burst can outrun a debug build's receive buffer.
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().expect("node exits")
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SERVER_PORTS: [u16; 6] = [22, 53, 80, 443, 5432, 6379];

/// `client>server:port/proto` → (bytes to server, bytes to client), from tshark's truth.
fn expected(capture: &str) -> BTreeMap<String, (u64, u64)> {
    let truth = load_truth(capture).expect("truth");
    let mut out = BTreeMap::new();
    let id = |c: IpAddr, s: IpAddr, port: u16, proto: u8| match s {
        IpAddr::V4(_) => format!("{c}>{s}:{port}/{proto}"),
        IpAddr::V6(_) => format!("{c}>[{s}]:{port}/{proto}"),
    };
    for r in &truth.records {
        if r.proto != 6 && r.proto != 17 {
            continue;
        }
        if SERVER_PORTS.contains(&r.dst_port) {
            let e: &mut (u64, u64) = out
                .entry(id(r.src, r.dst, r.dst_port, r.proto))
                .or_default();
            e.0 += r.bytes;
        } else if SERVER_PORTS.contains(&r.src_port) {
            let e: &mut (u64, u64) = out
                .entry(id(r.dst, r.src, r.src_port, r.proto))
                .or_default();
            e.1 += r.bytes;
        }
    }
    out
}

/// TCP and UDP dependencies (the truth's server ports tell their direction) with their bytes.
fn dependencies(node: &NodeProcess) -> BTreeMap<String, (u64, u64)> {
    let (status, body) = node.get("/api/v1/dependencies?limit=10000&status=all");
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|d| {
                    (
                        d["id"].as_str().unwrap_or_default().to_string(),
                        (
                            d["bytes_to_server"].as_u64().unwrap_or(0),
                            d["bytes_to_client"].as_u64().unwrap_or(0),
                        ),
                    )
                })
                .filter(|(id, _)| id.ends_with("/6") || id.ends_with("/17"))
                .collect()
        })
        .unwrap_or_default()
}

fn payloads(capture: &str) -> Vec<Vec<u8>> {
    read_pcap(&data_dir().join(format!("{capture}.pcap")))
        .expect("capture")
        .into_iter()
        .map(|d| d.payload)
        .collect()
}

#[test]
fn a_node_maps_real_exports_with_direction_and_byte_totals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProcess::start(dir.path(), free_tcp_port(), free_udp_port());
    // Two exporters' views of the same traffic would double it; use one capture per format
    // family that the node must merge: IPFIX from softflowd and sFlow from pmacct differ in
    // what they see, so send one and check it exactly.
    let capture = "softflowd_ipfix";
    let packets = payloads(capture);
    node.send(&packets.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let want = expected(capture);
    assert!(want.len() > 10, "the capture has conversations");
    node.wait_until(|n| dependencies(n) == want, "consistent with the truth");
    let (_, icmp) = node.get("/api/v1/dependencies?protocol=icmp");
    assert!(
        icmp["total"].as_u64() > Some(0),
        "ICMP echo is mapped too: {icmp}"
    );

    // Assets: every endpoint is there, with bytes in and out summing to the dependency totals.
    let (status, assets) = node.get("/api/v1/assets?limit=1000");
    assert_eq!(status, 200);
    let total_in: u64 = assets["items"].as_array().map_or(0, |a| {
        a.iter().map(|x| x["bytes_in"].as_u64().unwrap_or(0)).sum()
    });
    let tcp_udp_bytes: u64 = want.values().map(|(a, b)| a + b).sum();
    assert!(
        total_in >= tcp_udp_bytes,
        "asset bytes_in {total_in} < {tcp_udp_bytes}"
    );

    // A server's upstream dependencies name it as the server.
    let (_, deps) = node.get("/api/v1/dependencies?port=5432&limit=5");
    let first = deps["items"][0].clone();
    let server = first["key"]["service"]["ip"]
        .as_str()
        .expect("a postgres dependency")
        .to_string();
    let (status, up) = node.get(&format!(
        "/api/v1/assets/{server}/dependencies?direction=upstream"
    ));
    assert_eq!(status, 200);
    assert!(up.as_array().is_some_and(|a| !a.is_empty()
        && a.iter()
            .all(|d| d["key"]["service"]["ip"] == server.as_str())));
    let id = first["id"].as_str().expect("id");
    // `>` is not allowed in a URI: clients percent-encode it.
    let encoded = id.replace('>', "%3E");
    let (status, one) = node.get(&format!("/api/v1/dependencies/{encoded}"));
    assert_eq!((status, &one["id"]), (200, &first["id"]));

    // Topology, flows, statistics, exporters.
    let (status, topo) = node.get("/api/v1/topology?max_nodes=3");
    assert_eq!(status, 200);
    assert_eq!(topo["truncated"], true);
    assert_eq!(topo["nodes"].as_array().map(Vec::len), Some(3));
    let (status, flows) = node.get("/api/v1/flows?port=5432&protocol=tcp&limit=2");
    assert_eq!(status, 200);
    assert_eq!(flows["items"].as_array().map(Vec::len), Some(2));
    let truth = load_truth(capture).expect("truth");
    let on_5432 = truth
        .records
        .iter()
        .filter(|r| r.src_port == 5432 || r.dst_port == 5432)
        .count();
    assert_eq!(flows["total"].as_u64(), Some(on_5432 as u64));
    let (_, exporters) = node.get("/api/v1/exporters");
    assert_eq!(
        exporters[0]["records"].as_u64(),
        Some(truth.records.len() as u64)
    );
    assert_eq!(exporters[0]["sequence_lost"].as_u64(), Some(0));
    for path in [
        "/api/v1/stats/throughput",
        "/api/v1/stats/top-talkers",
        "/api/v1/stats/protocols",
        "/api/v1/openapi.json",
        "/api/v1/health/live",
    ] {
        assert_eq!(node.get(path).0, 200, "{path}");
    }
    let metrics = http_get(node.api, "/metrics").expect("metrics").1;
    assert!(
        metrics.contains(&format!("flowlens_flows_total {}", truth.records.len())),
        "{metrics}"
    );

    // Bad parameters: 400 with the parameter named.
    for (path, param) in [
        ("/api/v1/assets?subnet=10.0.0.0/33", "subnet"),
        ("/api/v1/flows?port=70000", "port"),
        ("/api/v1/flows?protocol=tpc", "protocol"),
        ("/api/v1/assets?limit=0", "limit"),
        ("/api/v1/topology?max_nodes=x", "max_nodes"),
        ("/api/v1/dependencies?colour=red", "colour"),
        ("/api/v1/assets/not-an-ip", "ip"),
    ] {
        let (status, body) = node.get(path);
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["parameter"], param, "{path}: {body}");
    }
    assert_eq!(node.get("/api/v1/assets/192.0.2.1").0, 404);

    // SIGTERM: a clean exit.
    assert!(node.terminate().success());
}

#[test]
fn a_node_killed_mid_stream_keeps_what_was_committed_and_its_templates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (api_port, udp_port) = (free_tcp_port(), free_udp_port());
    let capture = "softflowd_v9";
    let packets = payloads(capture);
    let node = NodeProcess::start(dir.path(), api_port, udp_port);
    // The first packet carries the templates; the data in it is committed before the kill.
    node.send(&[&packets[0]]);
    node.wait_until(|n| !dependencies(n).is_empty(), "mapping");
    std::thread::sleep(Duration::from_millis(1500));
    let before = dependencies(&node);
    node.kill9();

    let node = NodeProcess::start(dir.path(), api_port, udp_port);
    let after = dependencies(&node);
    assert_eq!(after, before, "committed dependencies survive kill -9");
    // The rest of the capture is data only: it decodes with the reloaded templates.
    node.send(&packets[1..].iter().map(Vec::as_slice).collect::<Vec<_>>());
    let want = expected(capture);
    node.wait_until(|n| dependencies(n) == want, "complete after restart");
    let (_, exporters) = node.get("/api/v1/exporters");
    assert_eq!(exporters[0]["errors"], serde_json::json!({}), "{exporters}");
}
