//! End to end: a real `flowlens node` process receives real exporter captures over UDP; the REST
//! API must then show the captured network — assets, dependencies in the right direction, byte
//! totals equal to tshark's truth. Also: bad parameters are 400s naming the parameter, a node
//! killed with SIGKILL mid-stream restarts with everything committed and its templates, and
//! flows the in-memory ring cannot answer for are read from disk, across a SIGKILL too.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use flowlens_tests::{
    data_dir, free_tcp_port, free_udp_port, http_get_auth, load_truth, read_pcap, NodeProcess,
};
use serde_json::Value;

/// Starts a node of this build with the default test settings.
fn start(data: &Path, api_port: u16, udp_port: u16) -> NodeProcess {
    start_with(data, api_port, udp_port, &[])
}

/// Starts a node with extra environment variables (`FLOWLENS_…` settings), once it is ready.
fn start_with(data: &Path, api_port: u16, udp_port: u16, env: &[(&str, &str)]) -> NodeProcess {
    let bin = Path::new(env!("CARGO_BIN_EXE_flowlens"));
    let node = NodeProcess::start(bin, data, api_port, udp_port, &[], env);
    node.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
    node
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
    let mut all = node.dependencies();
    all.retain(|id, _| id.ends_with("/6") || id.ends_with("/17"));
    all
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
    let node = start(dir.path(), free_tcp_port(), free_udp_port());
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
    assert_eq!(flows["tier"], "memory");
    // A recent range the ring covers is answered from memory; one reaching further back than
    // retention.raw_hot, from the raw flows on disk.
    let (_, hot) = node.get("/api/v1/flows?from=5m");
    assert_eq!(hot["tier"], "memory", "{hot}");
    let (_, cold) = node.get("/api/v1/flows?from=0&port=5432&protocol=tcp&limit=2");
    assert_eq!(cold["tier"], "disk", "{cold}");
    assert_eq!(cold["total"].as_u64(), Some(on_5432 as u64), "{cold}");
    let (_, exporters) = node.get("/api/v1/exporters");
    assert_eq!(
        exporters[0]["records"].as_u64(),
        Some(truth.records.len() as u64)
    );
    assert_eq!(exporters[0]["sequence_lost"].as_u64(), Some(0));
    // Protocol mix and top sources: the capture's bytes per protocol and per source address.
    let mut by_protocol: BTreeMap<u8, (u64, u64)> = BTreeMap::new();
    let mut by_source: BTreeMap<IpAddr, u64> = BTreeMap::new();
    for r in &truth.records {
        let p = by_protocol.entry(r.proto).or_default();
        p.0 += r.bytes;
        p.1 += 1;
        *by_source.entry(r.src).or_default() += r.bytes;
    }
    let (status, mix) = node.get("/api/v1/stats/protocols");
    assert_eq!(status, 200);
    let got: BTreeMap<u8, (u64, u64)> = mix["protocols"]
        .as_array()
        .expect("protocols")
        .iter()
        .map(|p| {
            let n = |k: &str| p[k].as_u64().unwrap_or(u64::MAX);
            (n("protocol") as u8, (n("bytes"), n("flows")))
        })
        .collect();
    assert_eq!(got, by_protocol, "{mix}");
    let (status, top) = node.get("/api/v1/stats/top-talkers?limit=1");
    assert_eq!(status, 200);
    let (top_ip, top_bytes) = by_source
        .iter()
        .max_by_key(|(ip, b)| (**b, std::cmp::Reverse(*ip)))
        .expect("a source");
    assert_eq!(top["sources"][0]["ip"], top_ip.to_string(), "{top}");
    assert_eq!(
        top["sources"][0]["bytes"].as_u64(),
        Some(*top_bytes),
        "{top}"
    );
    for path in [
        "/api/v1/stats/throughput",
        "/api/v1/openapi.json",
        "/api/v1/health/live",
    ] {
        assert_eq!(node.get(path).0, 200, "{path}");
    }
    let metrics = http_get_auth(node.api, "/metrics").expect("metrics").1;
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
    let node = start(dir.path(), api_port, udp_port);
    // The first packet carries the templates; the data in it is committed before the kill.
    node.send(&[&packets[0]]);
    node.wait_until(|n| !dependencies(n).is_empty(), "mapping");
    std::thread::sleep(Duration::from_millis(1500));
    let before = dependencies(&node);
    node.kill9();

    let node = start(dir.path(), api_port, udp_port);
    let after = dependencies(&node);
    assert_eq!(after, before, "committed dependencies survive kill -9");
    // The rest of the capture is data only: it decodes with the reloaded templates.
    node.send(&packets[1..].iter().map(Vec::as_slice).collect::<Vec<_>>());
    let want = expected(capture);
    node.wait_until(|n| dependencies(n) == want, "complete after restart");
    let (_, exporters) = node.get("/api/v1/exporters");
    assert_eq!(exporters[0]["errors"], serde_json::json!({}), "{exporters}");
}

/// A flow as the API shows it and as tshark's truth has it: addresses, ports, protocol, bytes,
/// packets.
type FlowKey = (String, String, u64, u64, u64, u64, u64);

fn flow_keys(page: &Value) -> Vec<FlowKey> {
    let mut keys: Vec<FlowKey> = page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|f| {
                    let n = |k: &str| f[k].as_u64().unwrap_or(u64::MAX);
                    (
                        f["src_addr"].as_str().unwrap_or_default().to_string(),
                        f["dst_addr"].as_str().unwrap_or_default().to_string(),
                        n("src_port"),
                        n("dst_port"),
                        n("protocol"),
                        n("bytes"),
                        n("packets"),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    keys.sort();
    keys
}

fn metric(node: &NodeProcess, name: &str) -> Option<u64> {
    let text = http_get_auth(node.api, "/metrics").ok()?.1;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn flows_the_ring_does_not_hold_are_read_from_disk_and_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (api_port, udp_port) = (free_tcp_port(), free_udp_port());
    // No ring at all: only the disk can answer.
    let env = [("FLOWLENS_AGGREGATOR__RECENT_FLOWS", "0")];
    let capture = "softflowd_ipfix";
    let truth = load_truth(capture).expect("truth");
    let mut want: Vec<FlowKey> = truth
        .records
        .iter()
        .map(|r| {
            (
                r.src.to_string(),
                r.dst.to_string(),
                u64::from(r.src_port),
                u64::from(r.dst_port),
                u64::from(r.proto),
                r.bytes,
                r.packets,
            )
        })
        .collect();
    want.sort();
    let node = start_with(dir.path(), api_port, udp_port, &env);
    let packets = payloads(capture);
    node.send(&packets.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let count = truth.records.len() as u64;
    node.wait_until(
        |n| metric(n, "flowlens_raw_flows_written_total") == Some(count),
        "done writing raw flows",
    );
    // Without a time range a ring that cannot fill the page and has let flows go (this one
    // keeps none) hands the query to the disk.
    let (status, recent) = node.get("/api/v1/flows?limit=10000");
    assert_eq!(
        (status, &recent["tier"], &recent["total"]),
        (200, &"disk".into(), &count.into())
    );
    // The writer flushes every second: after that, a SIGKILL loses nothing written.
    std::thread::sleep(Duration::from_millis(1500));
    node.kill9();

    let node = start_with(dir.path(), api_port, udp_port, &env);
    let to = now_ms();
    let (status, page) = node.get(&format!("/api/v1/flows?from=0&to={to}&limit=10000"));
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["tier"], "disk", "{page}");
    assert_eq!(page["total"].as_u64(), Some(count), "{page}");
    assert_eq!(page["truncated"], false);
    assert_eq!(page["scanned"].as_u64(), Some(count));
    assert_eq!(flow_keys(&page), want, "every flow, exactly, from disk");
    let bytes: u64 = truth.records.iter().map(|r| r.bytes).sum();
    let got: u64 = page["items"].as_array().map_or(0, |a| {
        a.iter().map(|f| f["bytes"].as_u64().unwrap_or(0)).sum()
    });
    assert_eq!(got, bytes);

    // Filters and paging on disk agree with the truth, newest received first.
    let on_5432 = truth
        .records
        .iter()
        .filter(|r| r.src_port == 5432 || r.dst_port == 5432)
        .count() as u64;
    let (_, first) = node.get("/api/v1/flows?from=0&port=5432&protocol=tcp&limit=3");
    let (_, second) = node.get("/api/v1/flows?from=0&port=5432&protocol=tcp&limit=3&offset=3");
    assert_eq!(first["total"].as_u64(), Some(on_5432), "{first}");
    assert_eq!(first["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(second["offset"], 3);
    let (_, six) = node.get("/api/v1/flows?from=0&port=5432&protocol=tcp&limit=6");
    let six = six["items"].as_array().cloned().unwrap_or_default();
    let paged: Vec<Value> = [first, second]
        .iter()
        .flat_map(|p| p["items"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(paged, six, "two pages of three are the first six");
    // The capture's flows ended long ago: none in the last minute, though the disk is read.
    let (_, recent) = node.get("/api/v1/flows?from=1m");
    assert_eq!(
        (&recent["tier"], &recent["total"]),
        (&"disk".into(), &0.into())
    );
    let on_disk = metric(&node, "flowlens_raw_bytes").unwrap_or(0);
    assert!(
        on_disk > 0 && on_disk < count * 136,
        "{on_disk} bytes: compressed"
    );
    assert!(metric(&node, "flowlens_raw_files") >= Some(1));
    assert_eq!(metric(&node, "flowlens_raw_dropped_batches_total"), Some(0));
    assert!(node.terminate().success());
}

#[test]
fn a_full_ring_answers_what_it_can_fill_and_hands_the_rest_to_the_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (api_port, udp_port) = (free_tcp_port(), free_udp_port());
    let env = [("FLOWLENS_AGGREGATOR__RECENT_FLOWS", "5")];
    let capture = "softflowd_ipfix";
    let truth = load_truth(capture).expect("truth");
    let count = truth.records.len() as u64;
    assert!(count > 20, "{count}");
    let node = start_with(dir.path(), api_port, udp_port, &env);
    let packets = payloads(capture);
    node.send(&packets.iter().map(Vec::as_slice).collect::<Vec<_>>());
    node.wait_until(
        |n| metric(n, "flowlens_raw_flows_written_total") == Some(count),
        "done writing raw flows",
    );
    // A page the ring can fill comes from memory.
    let (status, page) = node.get("/api/v1/flows?limit=3");
    assert_eq!((status, &page["tier"]), (200, &"memory".into()), "{page}");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(3));
    // One it cannot: the disk answers, with every flow.
    let (status, page) = node.get("/api/v1/flows?limit=10000");
    assert_eq!((status, &page["tier"]), (200, &"disk".into()), "{page}");
    assert_eq!(page["total"].as_u64(), Some(count), "{page}");
    // So does a filter whose flows the ring no longer holds.
    let on_5432 = truth
        .records
        .iter()
        .filter(|r| r.src_port == 5432 || r.dst_port == 5432)
        .count() as u64;
    let (_, page) = node.get("/api/v1/flows?port=5432&protocol=tcp&limit=1000");
    assert_eq!(page["total"].as_u64(), Some(on_5432), "{page}");
    assert!(node.terminate().success());
}

/// Wall-clock time, Unix ms.
fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}
