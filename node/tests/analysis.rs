//! Impact analysis over a real node fed real IPFIX packets describing a small data centre:
//! three clients call a load balancer (443), which calls a pool of two web servers (8080); both
//! call one database (5432) and one cache (6379); a jump host talks SSH to a lone server. Every
//! answer is checked against what that map implies.

use std::collections::BTreeSet;
use std::net::IpAddr;

use flowlens_tests::{free_tcp_port, free_udp_port, ipfix_packets, tcp_flow, NodeProcess};
use proto::FlowRecord;
use serde_json::Value;

const LB: &str = "10.1.0.10";
const WEB1: &str = "10.1.0.20";
const WEB2: &str = "10.1.0.21";
const DB: &str = "10.1.0.30";
const CACHE: &str = "10.1.0.31";
const CLIENTS: [&str; 3] = ["10.2.0.1", "10.2.0.2", "10.2.0.3"];

fn data_centre() -> Vec<FlowRecord> {
    let mut flows: Vec<FlowRecord> = CLIENTS
        .iter()
        .map(|c| tcp_flow(c, LB, 443, 1_500))
        .collect();
    for web in [WEB1, WEB2] {
        flows.push(tcp_flow(LB, web, 8080, 1_500));
        flows.push(tcp_flow(web, DB, 5432, 1_500));
        flows.push(tcp_flow(web, CACHE, 6379, 1_500));
    }
    flows.push(tcp_flow("10.3.0.1", "10.3.0.2", 22, 1_500));
    flows
}

/// A node holding the data centre's eleven dependencies.
fn node_with_map(dir: &tempfile::TempDir) -> NodeProcess {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_flowlens"));
    let node = NodeProcess::start(bin, dir.path(), free_tcp_port(), free_udp_port(), &[], &[]);
    node.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
    let flows = data_centre();
    let [template, data] = ipfix_packets(&flows);
    node.send(&[&template, &data]);
    node.wait_until(
        |n| {
            let deps = n.dependencies();
            deps.len() == flows.len() && deps.values().all(|(to_server, _)| *to_server > 0)
        },
        "mapped with traffic",
    );
    node
}

fn get(node: &NodeProcess, path: &str) -> Value {
    let (status, body) = node.get(path);
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn ips(list: &Value, field: &str) -> BTreeSet<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|x| x[field].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn set<const N: usize>(items: [&str; N]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn answers_impact_questions_about_a_mapped_data_centre() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = node_with_map(&dir);

    // Downstream of a client: the balancer at one hop, the pool at two, the backends at three.
    let down = get(
        &node,
        &format!("/api/v1/analysis/downstream/{}?hops=3", CLIENTS[0]),
    );
    assert_eq!(down["total"], 5, "{down}");
    assert_eq!(down["by_hops"], serde_json::json!([1, 2, 2]));
    assert_eq!(down["graph"]["assets"], 10);
    assert_eq!(down["graph"]["dependencies"], 10);
    let one = get(
        &node,
        &format!("/api/v1/analysis/downstream/{}?hops=1", CLIENTS[0]),
    );
    assert_eq!(ips(&one["items"], "ip"), set([LB]));
    assert_eq!(one["items"][0]["tier"], "internal");

    // Upstream of the database: both web servers, the balancer, the three clients.
    let up = get(&node, &format!("/api/v1/analysis/upstream/{DB}?hops=10"));
    assert_eq!(
        ips(&up["items"], "ip"),
        set([WEB1, WEB2, LB, CLIENTS[0], CLIENTS[1], CLIENTS[2]])
    );

    // One web server failing only degrades the balancer; the database failing breaks all six.
    let web = get(&node, &format!("/api/v1/analysis/blast-radius/{WEB1}"));
    assert_eq!(web["broken_total"], 0, "{web}");
    assert_eq!(ips(&web["degraded"], "ip"), set([LB]));
    let db = get(&node, &format!("/api/v1/analysis/blast-radius/{DB}"));
    assert_eq!(db["broken_total"], 6, "{db}");
    assert_eq!(db["broken_by_hops"], serde_json::json!([2, 1, 3]));
    assert_eq!(db["broken_by_tier"]["internal"], 6);
    let lb = db["broken"]
        .as_array()
        .and_then(|b| b.iter().find(|x| x["ip"] == LB))
        .expect("the balancer breaks");
    assert_eq!(lb["hops"], 2);

    // Removing the whole pool (as a network and an address) breaks the balancer and clients.
    let pool = get(
        &node,
        &format!("/api/v1/analysis/what-if?remove={WEB1}/32,{WEB2}"),
    );
    assert_eq!(pool["failed"], serde_json::json!([WEB1, WEB2]));
    assert_eq!(
        ips(&pool["broken"], "ip"),
        set([LB, CLIENTS[0], CLIENTS[1], CLIENTS[2]])
    );
    let subnet = get(&node, "/api/v1/analysis/what-if?remove=10.1.0.20/31");
    assert_eq!(subnet["failed"], serde_json::json!([WEB1, WEB2]));

    // Single points of failure: database and cache (six each), then the balancer, then the
    // lone SSH server.
    let spof = get(&node, "/api/v1/analysis/spof");
    let ranked: Vec<(String, u64, u64, bool)> = spof["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|x| {
            (
                x["ip"].as_str().unwrap_or_default().to_owned(),
                x["breaks"].as_u64().unwrap_or(0),
                x["dominated"].as_u64().unwrap_or(0),
                x["cut_vertex"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let own = |ip: &str, b, d, c| (ip.to_string(), b, d, c);
    assert_eq!(
        ranked,
        vec![
            own(DB, 6, 0, false),
            own(CACHE, 6, 0, false),
            own(LB, 3, 3, true),
            own("10.3.0.2", 1, 1, false),
        ]
    );
    let critical = get(&node, &format!("/api/v1/analysis/critical/{}", CLIENTS[2]));
    assert_eq!(critical["critical"], serde_json::json!([LB, DB, CACHE]));

    // The call path from a client to the cache, and the same question asked backwards.
    let path = get(
        &node,
        &format!("/api/v1/analysis/path?from={}&to={CACHE}", CLIENTS[1]),
    );
    assert_eq!(path["direction"], "downstream");
    let hops: Vec<&str> = path["hops"]
        .as_array()
        .expect("hops")
        .iter()
        .map(|h| h["ip"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(hops.len(), 4, "{path}");
    assert_eq!((hops[0], hops[1], hops[3]), (CLIENTS[1], LB, CACHE));
    assert_eq!(path["hops"][0]["calls"][0]["port"], 443);
    let back = get(
        &node,
        &format!("/api/v1/analysis/path?from={CACHE}&to={}", CLIENTS[1]),
    );
    assert_eq!(back["direction"], "upstream");
    let none = get(
        &node,
        &format!("/api/v1/analysis/path?from={CACHE}&to=10.3.0.1"),
    );
    assert_eq!(
        (
            none["direction"].as_str(),
            none["hops"].as_array().map(Vec::len)
        ),
        (Some("none"), Some(0))
    );
}

#[test]
fn refuses_bad_analysis_questions_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = node_with_map(&dir);
    let cases: [(&str, u16, &str); 9] = [
        (
            "/api/v1/analysis/blast-radius/10.9.9.9",
            404,
            "no asset 10.9.9.9",
        ),
        (
            "/api/v1/analysis/upstream/not-an-ip",
            400,
            "`not-an-ip` is not an IP address",
        ),
        (
            "/api/v1/analysis/downstream/10.1.0.10?hops=0",
            400,
            "must be 1 to 64",
        ),
        (
            "/api/v1/analysis/downstream/10.1.0.10?hops=65",
            400,
            "must be 1 to 64",
        ),
        ("/api/v1/analysis/what-if", 400, "required"),
        (
            "/api/v1/analysis/what-if?remove=10.1.0.10,bogus",
            400,
            "`bogus` is not an address",
        ),
        (
            "/api/v1/analysis/path?from=10.1.0.10",
            400,
            "parameter `to`: required",
        ),
        ("/api/v1/analysis/spof?colour=red", 400, "unknown parameter"),
        (
            "/api/v1/analysis/spof?include_expired=maybe",
            400,
            "true or false",
        ),
    ];
    for (path, status, says) in cases {
        let (got, body) = node.get(path);
        assert_eq!(got, status, "{path}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{path}: {error}");
    }
    // An asset the map knows but that takes part in no active dependency gets empty answers.
    let ip: IpAddr = LB.parse().expect("address");
    let alone = get(
        &node,
        &format!("/api/v1/analysis/blast-radius/{ip}?include_expired=true"),
    );
    assert_eq!(alone["graph"]["include_expired"], true);
}

#[test]
fn exports_a_groups_observed_dependencies_as_an_allow_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = node_with_map(&dir);

    // The balancer: three clients in, the pool out.
    let lb = get(&node, &format!("/api/v1/export/allow-list?cidr={LB}"));
    assert_eq!(lb["members"], 1);
    let rules: Vec<(String, String, String, u64)> = lb["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            (
                r["direction"].as_str().unwrap_or_default().to_owned(),
                r["client"].as_str().unwrap_or_default().to_owned(),
                r["server"].as_str().unwrap_or_default().to_owned(),
                r["port"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let rule = |d: &str, c: &str, s: &str, p| (d.to_string(), c.to_string(), s.to_string(), p);
    assert_eq!(
        rules,
        vec![
            rule("inbound", CLIENTS[0], LB, 443),
            rule("inbound", CLIENTS[1], LB, 443),
            rule("inbound", CLIENTS[2], LB, 443),
            rule("outbound", LB, WEB1, 8080),
            rule("outbound", LB, WEB2, 8080),
        ]
    );
    let inbound = get(
        &node,
        &format!("/api/v1/export/allow-list?cidr={LB}&direction=inbound"),
    );
    assert_eq!(inbound["rules"].as_array().map(Vec::len), Some(3));

    // The back ends as CSV and firewall snippets.
    let (status, csv) = flowlens_tests::http_get_auth(
        node.api,
        "/api/v1/export/allow-list?cidr=10.1.0.30/31&format=csv",
    )
    .expect("csv");
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "direction,client,server,port,protocol,service,flows,last_seen_ms"
    );
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(
        lines[1].starts_with("inbound,10.1.0.20,10.1.0.30,5432,6,postgresql,1,"),
        "{csv}"
    );
    let (_, iptables) = flowlens_tests::http_get_auth(
        node.api,
        "/api/v1/export/allow-list?cidr=10.1.0.30/31&format=iptables",
    )
    .expect("iptables");
    assert!(
        iptables.contains("-A FLOWLENS-IN -s 10.1.0.21/32 -d 10.1.0.31/32 -p tcp -m tcp --dport 6379 -m conntrack --ctstate NEW -m comment --comment \"redis, 1 flows\" -j ACCEPT"),
        "{iptables}"
    );
    assert!(
        iptables
            .trim_end()
            .ends_with("-A FLOWLENS-OUT -j DROP\nCOMMIT"),
        "{iptables}"
    );
    let (_, nft) = flowlens_tests::http_get_auth(
        node.api,
        "/api/v1/export/allow-list?cidr=10.1.0.30/31&format=nftables",
    )
    .expect("nft");
    assert!(
        nft.contains("    ip saddr 10.1.0.20 ip daddr 10.1.0.30 tcp dport 5432 ct state new accept comment \"postgresql, 1 flows\""),
        "{nft}"
    );
    assert_eq!(nft.matches("counter drop").count(), 2, "{nft}");

    let (status, body) = node.get("/api/v1/export/allow-list?format=json");
    assert_eq!(
        (status, &body["parameter"]),
        (400, &serde_json::json!("cidr"))
    );
    let (status, body) = node.get("/api/v1/export/allow-list?cidr=10.0.0.0/8&format=pdf");
    assert_eq!(
        (status, &body["parameter"]),
        (400, &serde_json::json!("format"))
    );
}
