//! Federation with real processes: two sites, each its own cluster (one `flowlens node` each)
//! on one real nats-server, and a federation node following both sites' event streams. Its map
//! must hold both sites' dependencies with exact bytes, know each asset's site and the
//! dependency crossing from one site to the other, serve a role scoped to one site only that
//! site's part, and resume where it stopped after a restart.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use flowlens_tests::{
    free_tcp_port, free_udp_port, https_flow, ipfix_packets, NatsServer, NodeProcess,
};
use proto::FlowRecord;
use serde_json::Value;
use tempfile::TempDir;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_flowlens"))
}

/// Starts a node in `dir` with `args`.
fn node(dir: &Path, api_port: u16, args: &[&str]) -> NodeProcess {
    NodeProcess::start(bin(), dir, api_port, free_udp_port(), args, &[])
}

/// A one-node site: cluster `name`, initialised, leading.
fn site(nats: &NatsServer, name: &str, dir: &TempDir) -> NodeProcess {
    let url = nats.url();
    let args = ["--cluster", name, "--node-id", "1", "--nats", &url];
    let n = node(dir.path(), free_tcp_port(), &args);
    flowlens_tests::flowlens_admin(bin(), &url, name, &["init", "--node", "1"]);
    n.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
    n
}

fn send(n: &NodeProcess, flows: &[FlowRecord]) {
    let [template, data] = ipfix_packets(flows);
    n.send(&[&template, &data]);
}

/// Dependency id → (bytes to server, bytes to client) the flows must become.
fn expect(flows: &[&[FlowRecord]]) -> BTreeMap<String, (u64, u64)> {
    let mut want: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for f in flows.iter().flat_map(|f| f.iter()) {
        want.entry(format!("{}>{}:443/6", f.src_addr, f.dst_addr))
            .or_default()
            .0 += f.bytes;
    }
    want
}

fn wait_for(n: &NodeProcess, want: &BTreeMap<String, (u64, u64)>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while n.dependencies() != *want {
        assert!(
            Instant::now() < deadline,
            "want {want:?}\nhave {:?}",
            n.dependencies()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_federation_node_maps_two_sites_and_resumes_where_it_stopped() {
    let nats = NatsServer::start();
    let (dir_a, dir_b, dir_f) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let a = site(&nats, "site-a", &dir_a);
    let b = site(&nats, "site-b", &dir_b);

    // Site a: three local dependencies and one to a server at site b; site b: two local.
    let mut at_a: Vec<FlowRecord> = (0..3)
        .map(|x| https_flow([10, 1, 0, x], [10, 1, 1, x], 1_000 + u64::from(x)))
        .collect();
    at_a.push(https_flow([10, 1, 0, 9], [10, 2, 1, 0], 777));
    let at_b: Vec<FlowRecord> = (0..2)
        .map(|x| https_flow([10, 2, 0, x], [10, 2, 1, x], 2_000 + u64::from(x)))
        .collect();
    send(&a, &at_a);
    send(&b, &at_b);
    wait_for(&a, &expect(&[&at_a]));
    wait_for(&b, &expect(&[&at_b]));

    // The federation node, with each site's networks.
    let config = dir_f.path().join("federation.toml");
    std::fs::write(
        &config,
        "[federation]\nsites = [\"site-a\", \"site-b\"]\n\n[federation.networks]\n\
         site-a = [\"10.1.0.0/16\"]\nsite-b = [\"10.2.0.0/16\"]\n",
    )
    .expect("config");
    let url = nats.url();
    let config_arg = config.to_string_lossy().into_owned();
    let data = dir_f.path().join("data");
    let api_port = free_tcp_port();
    let args = [
        "--config",
        &config_arg,
        "--nats",
        &url,
        "--cluster",
        "global",
    ];
    let fed = node(&data, api_port, &args);
    wait_for(&fed, &expect(&[&at_a, &at_b]));

    let (status, f) = fed.get("/api/v1/federation");
    assert_eq!(status, 200, "{f}");
    let site = |name: &str| -> Value {
        f["sites"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(site("site-a")["dependencies"], 4, "{f}");
    assert_eq!(site("site-a")["assets"], 8, "{f}");
    assert_eq!(site("site-b")["dependencies"], 2, "{f}");
    assert_eq!(site("site-b")["assets"], 4, "{f}");
    assert_eq!(f["homes"]["10.1.0.9"], "site-a", "{f}");
    assert_eq!(f["homes"]["10.2.1.0"], "site-b", "{f}");
    let cross = f["cross_site"].as_array().expect("cross_site");
    assert_eq!(cross.len(), 1, "{f}");
    assert_eq!(cross[0]["id"], "10.1.0.9>10.2.1.0:443/6");
    assert_eq!(cross[0]["client_site"], "site-a");
    assert_eq!(cross[0]["server_site"], "site-b");
    let (_, assets) = fed.get("/api/v1/assets?limit=1000");
    assert_eq!(assets["total"], 11, "both sites' assets: {assets}");
    // A role scoped to site b sees site b's assets (by its networks) and what touches them.
    let token = fed.user_token("site-b-ops", "viewer", &["site:site-b"]);
    let scoped = |path: &str| {
        let (status, text) = flowlens_tests::http_exchange(
            fed.api,
            "GET",
            path,
            None,
            &format!("Authorization: Bearer {token}\r\n"),
        )
        .expect("API reachable");
        assert_eq!(status, 200, "{path}: {text}");
        serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)
    };
    let assets = scoped("/api/v1/assets?limit=1000");
    assert_eq!(assets["total"], 4, "site b's assets only: {assets}");
    assert!(assets.to_string().contains("10.2.1.0") && !assets.to_string().contains("10.1.1.0"));
    // Its two dependencies and the one from site a to a server at site b.
    assert_eq!(scoped("/api/v1/dependencies")["total"], 3);

    // Stopped, it misses more of site b; restarted, its durable consumers resume: each event
    // is applied once (bytes exact), none is missed.
    fed.terminate();
    let more_b = vec![
        https_flow([10, 2, 0, 0], [10, 2, 1, 0], 300),
        https_flow([10, 2, 0, 7], [10, 2, 1, 7], 70),
    ];
    send(&b, &more_b);
    wait_for(&b, &expect(&[&at_b, &more_b]));
    let fed = node(&data, api_port, &args);
    wait_for(&fed, &expect(&[&at_a, &at_b, &more_b]));

    // A site is not a federation: the endpoint says so.
    assert_eq!(a.get("/api/v1/federation").0, 404);
}
