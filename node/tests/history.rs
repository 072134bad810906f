//! History replay against a known sequence of real flow packets sent to a real node: the map as
//! of a moment (`topology?at=`), the difference between two moments (`topology/diff`), the
//! events of a range (`history/events`), and the rebuild check (`POST admin/rebuild`).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use flowlens_tests::{
    free_tcp_port, free_udp_port, http_send_auth, https_flow, ipfix_packets, now_ms, NodeProcess,
};
use proto::FlowRecord;
use serde_json::Value;

/// A flow from 10.<site>.0.<x> to 10.<site>.1.<x>:443 carrying `bytes`.
fn flow(site: u8, x: u8, bytes: u64) -> FlowRecord {
    https_flow([10, site, 0, x], [10, site, 1, x], bytes)
}

fn id(f: &FlowRecord) -> String {
    format!("{}>{}:443/6", f.src_addr, f.dst_addr)
}

fn send(node: &NodeProcess, flows: &[FlowRecord]) {
    let [template, data] = ipfix_packets(flows);
    node.send(&[&template, &data]);
}

/// `path`'s JSON, which must be a 200.
fn get(node: &NodeProcess, path: &str) -> Value {
    let (status, body) = node.get(path);
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Dependency id → bytes to server, of a `/dependencies` or `topology` answer's list.
fn ids(list: &Value, field: Option<&str>) -> BTreeSet<(String, u64)> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|d| field.map_or(d, |f| &d[f]))
        .map(|d| {
            let id = d["id"].as_str().unwrap_or_default().to_owned();
            (id, d["bytes_to_server"].as_u64().unwrap_or(0))
        })
        .collect()
}

fn set(flows: &[(&FlowRecord, u64)]) -> BTreeSet<(String, u64)> {
    flows.iter().map(|(f, b)| (id(f), *b)).collect()
}

/// Active dependencies in the live projection.
fn live(node: &NodeProcess) -> BTreeSet<(String, u64)> {
    ids(
        &get(node, "/api/v1/dependencies?limit=1000&status=active")["items"],
        None,
    )
}

fn wait_for(node: &NodeProcess, want: &BTreeSet<(String, u64)>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while live(node) != *want {
        assert!(
            Instant::now() < deadline,
            "want {want:?}, have {:?}",
            live(node)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn topology_at_and_diff_replay_a_known_sequence_of_flows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = Path::new(env!("CARGO_BIN_EXE_flowlens"));
    // Snapshots every 3 entries: replays start from the checkpoints they leave.
    let env = [
        ("FLOWLENS_GRAPH__IDLE_EXPIRY", "4s"),
        ("FLOWLENS_STORE__SNAPSHOT_EVERY", "3"),
        ("FLOWLENS_STORE__LOG_KEEP", "1"),
    ];
    let node = NodeProcess::start(bin, dir.path(), free_tcp_port(), free_udp_port(), &[], &env);
    node.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
    let t0 = now_ms();

    // Phase A: four dependencies.
    let a: Vec<FlowRecord> = (0..4).map(|x| flow(1, x, 1_000 + u64::from(x))).collect();
    send(&node, &a);
    let at_t1: Vec<_> = a.iter().map(|f| (f, f.bytes)).collect();
    wait_for(&node, &set(&at_t1));
    let t1 = now_ms();

    // Phase B, two seconds on: three new dependencies and more traffic on a[0].
    std::thread::sleep(Duration::from_secs(2));
    let b: Vec<FlowRecord> = (0..3).map(|x| flow(2, x, 2_000 + u64::from(x))).collect();
    let mut phase_b = b.clone();
    phase_b.push(flow(1, 0, 500));
    send(&node, &phase_b);
    let mut at_t2: Vec<_> = b.iter().map(|f| (f, f.bytes)).collect();
    at_t2.push((&a[0], a[0].bytes + 500));
    at_t2.extend(a[1..].iter().map(|f| (f, f.bytes)));
    wait_for(&node, &set(&at_t2));
    let t2 = now_ms();

    // Phase C: a[1..] carry nothing and expire (idle 4 s); a[0] and b are still active.
    let mut at_t3: Vec<_> = b.iter().map(|f| (f, f.bytes)).collect();
    at_t3.push((&a[0], a[0].bytes + 500));
    wait_for(&node, &set(&at_t3));
    let t3 = now_ms();

    // The map as of each moment, rebuilt from the history (from its checkpoints on).
    let checkpoints = std::fs::read_dir(dir.path().join("history/checkpoints"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(checkpoints > 0, "no history checkpoint was kept");
    let health = get(&node, "/api/v1/health/live");
    assert!(health["purged_index"].as_u64() > Some(0), "{health}");
    let topo = |at: u64| {
        ids(
            &get(&node, &format!("/api/v1/topology?at={at}"))["edges"],
            Some("dependency"),
        )
    };
    assert!(topo(t0).is_empty());
    assert_eq!(topo(t1), set(&at_t1));
    assert_eq!(topo(t2), set(&at_t2));
    assert_eq!(topo(t3), set(&at_t3));

    // What changed from t1 to t2, and from t2 to t3.
    let diff = get(&node, &format!("/api/v1/topology/diff?from={t1}&to={t2}"));
    let b_set: BTreeSet<_> = b.iter().map(|f| (id(f), f.bytes)).collect();
    assert_eq!(ids(&diff["dependencies_added"], None), b_set);
    assert!(ids(&diff["dependencies_removed"], None).is_empty());
    let changed: Vec<(String, u64)> = diff["dependencies_changed"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let id = c["dependency"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            (id, c["bytes_to_server"].as_u64().unwrap_or(0))
        })
        .collect();
    assert_eq!(changed, vec![(id(&a[0]), 500)]);
    let added: BTreeSet<String> = diff["assets_added"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["ip"].as_str().map(str::to_owned))
        .collect();
    let b_ips: BTreeSet<String> = b
        .iter()
        .flat_map(|f| [f.src_addr.to_string(), f.dst_addr.to_string()])
        .collect();
    assert_eq!(added, b_ips);

    let diff = get(&node, &format!("/api/v1/topology/diff?from={t2}&to={t3}"));
    assert!(ids(&diff["dependencies_added"], None).is_empty());
    let gone: BTreeSet<String> = ids(&diff["dependencies_removed"], None)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(gone, a[1..].iter().map(id).collect());
    assert_eq!(diff["assets_removed"].as_array().map(Vec::len), Some(6));

    // The events themselves, by kind and time.
    let total = |q: &str| get(&node, &format!("/api/v1/history/events?{q}"))["total"].as_u64();
    assert_eq!(total("kind=dependency.discovered"), Some(7));
    assert_eq!(
        total(&format!("kind=dependency.discovered&from={t1}")),
        Some(3)
    );
    assert_eq!(
        total(&format!("kind=dependency.expired&from={t2}")),
        Some(3)
    );
    assert_eq!(total(&format!("kind=asset.*&to={t1}")), Some(8));
    let page = get(
        &node,
        "/api/v1/history/events?kind=dependency.discovered&limit=2",
    );
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["kind"], "dependency_discovered");
    assert!(items[0]["at_ms"].as_u64() <= items[1]["at_ms"].as_u64());
    for bad in ["kind=bogus", "from=10&to=5", "from=yesterday"] {
        assert_eq!(
            node.get(&format!("/api/v1/history/events?{bad}")).0,
            400,
            "{bad}"
        );
    }
    assert_eq!(node.get("/api/v1/topology/diff").0, 400, "from is required");

    // The projection rebuilt from the history equals the live one.
    let (status, body) =
        http_send_auth(node.api, "POST", "/api/v1/admin/rebuild", None).expect("rebuild");
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(report["equal"], true, "{report}");
    assert!(report["entries"].as_u64() > Some(3), "{report}");
}
