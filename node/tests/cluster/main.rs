//! Clustering with real processes: a real nats-server (Debian's `nats-server`) and three real
//! `flowlens node` processes joined into one cluster with `flowlens admin`. Flows sent to every
//! node, followers included, must end up committed once and in every node's projection. The fault
//! scenarios (killed and frozen members, a restarted nats-server, …) are the fault bench's
//! (`benches/src/faults.rs`), run in a reduced form by `benches/tests/faults.rs`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use flowlens_tests::cluster::{
    expected_of, round_flows, status_of, stream, wait_all_equal, Member, CLUSTER,
};
use flowlens_tests::{https_flow, ipfix_packets, NatsServer, NodeProcess};
use proto::FlowRecord;
use serde_json::Value;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_flowlens"))
}

/// Runs `flowlens admin` against the cluster; its stdout, or a panic with its stderr.
fn admin(nats: &NatsServer, args: &[&str]) -> String {
    flowlens_tests::cluster::admin(bin(), nats, args)
}

/// Three members with `FLOWLENS_…` settings, joined: node 1 leads.
fn three_node_cluster_with(nats: &NatsServer, env: &[(&'static str, &'static str)]) -> Vec<Member> {
    flowlens_tests::cluster::three_node_cluster(bin(), nats, env)
}

/// `n` flows from clients 10.<site>.0.x to servers 10.<site>.1.x on port 443, each client
/// sending `1000 + x` bytes: one dependency per flow.
fn flows(site: u8, n: u8) -> Vec<FlowRecord> {
    (0..n)
        .map(|x| https_flow([10, site, 0, x], [10, site, 1, x], 1_000 + u64::from(x)))
        .collect()
}

/// The assets a node's projection holds, by address.
fn assets(node: &NodeProcess) -> Vec<String> {
    let (_, body) = node.get("/api/v1/assets?limit=10000");
    let mut ips: Vec<String> = body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|a| a["ip"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    ips.sort();
    ips
}

/// What the flows of `sites` must become.
fn expected(sites: &[(u8, u8)]) -> BTreeMap<String, (u64, u64)> {
    sites
        .iter()
        .flat_map(|&(site, n)| flows(site, n))
        .map(|f| {
            let id = format!("{}>{}:443/6", f.src_addr, f.dst_addr);
            (id, (f.bytes, 0))
        })
        .collect()
}

#[test]
fn three_nodes_join_with_admin_and_every_node_projects_every_nodes_flows() {
    let nats = NatsServer::start();
    let members: Vec<Member> = (1..=3)
        .map(|id| Member::start(bin(), id, &nats, &[]))
        .collect();
    // Not initialised yet: no node has a leader, so none is ready.
    for m in &members {
        assert_eq!(m.node().get("/api/v1/health/ready").0, 503);
    }

    let out = admin(&nats, &["init", "--node", "1"]);
    assert!(out.contains("node 1 initialised"), "{out}");
    for id in ["2", "3"] {
        let out = admin(&nats, &["add-node", id]);
        assert!(out.contains(&format!("node {id} (")), "{out}");
        assert!(out.contains("is a voter"), "{out}");
    }
    for m in &members {
        m.node()
            .wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
    }
    let status = admin(&nats, &["status"]);
    assert!(status.contains("leader 1, voters [1, 2, 3]"), "{status}");
    assert_eq!(status.matches("Leader").count(), 1, "{status}");
    assert_eq!(status.matches("Follower").count(), 2, "{status}");

    // Each node collects its own site's flows; nodes 2 and 3 forward theirs to the leader.
    let sites = [(1u8, 20u8), (2, 25), (3, 30)];
    for (m, &(site, n)) in members.iter().zip(&sites) {
        let [template, data] = ipfix_packets(&flows(site, n));
        m.node().send(&[&template, &data]);
    }
    let want = expected(&sites);
    wait_all_equal(&members, &want);

    // Assets too, and every node applied the same log.
    let a = assets(members[0].node());
    assert_eq!(a.len(), 2 * (20 + 25 + 30), "{a:?}");
    for m in &members[1..] {
        assert_eq!(assets(m.node()), a);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let applied: Vec<u64> = members
            .iter()
            .map(|m| status_of(m.node())["applied_index"].as_u64().unwrap_or(0))
            .collect();
        if applied.iter().all(|&i| i == applied[0] && i > 0) {
            break;
        }
        assert!(Instant::now() < deadline, "applied indexes {applied:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The about answer of a follower asks every member for its own health.
    let (status, about) = members[1].node().get("/api/v1/about");
    assert_eq!(status, 200, "{about}");
    let roles: Vec<(u64, String, bool)> = about["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["id"].as_u64().unwrap_or(0),
                m["health"]["raft_state"]
                    .as_str()
                    .unwrap_or("unreachable")
                    .to_owned(),
                m["voter"] == true,
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            (1, "Leader".to_owned(), true),
            (2, "Follower".to_owned(), true),
            (3, "Follower".to_owned(), true)
        ],
        "{about}"
    );
    assert_eq!(about["node"]["node_id"], 2);
    // Each node's projection, rebuilt from its own history, equals its live one.
    for id in ["1", "3"] {
        let out = admin(&nats, &["rebuild", "--node", id]);
        assert!(out.contains("equal to the live projection"), "{out}");
    }
    // Node 3 leaves: two voters remain, and it shows as running but not a member.
    let out = admin(&nats, &["remove-node", "3"]);
    assert!(out.contains("node 3 was removed"), "{out}");
    let status = admin(&nats, &["status"]);
    assert!(status.contains("leader 1, voters [1, 2]"), "{status}");
    assert!(status.contains("not a member"), "{status}");
}

#[test]
fn admin_errors_are_clear() {
    let nats = NatsServer::start();
    // Nobody runs: the admin command says so instead of hanging.
    let out = Command::new(bin())
        .args([
            "admin",
            "--nats",
            &nats.url(),
            "--cluster",
            CLUSTER,
            "status",
        ])
        .output()
        .expect("flowlens admin runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no node of cluster itest is running"), "{err}");

    let m = Member::start(bin(), 1, &nats, &[]);
    let out = admin(&nats, &["init", "--node", "1"]);
    assert!(out.contains("initialised"), "{out}");
    m.node()
        .wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
    // A second init, and adding a node that does not run, are refused with a reason.
    for args in [&["init", "--node", "1"][..], &["add-node", "7"]] {
        let out = Command::new(bin())
            .args(["admin", "--nats", &nats.url(), "--cluster", CLUSTER])
            .args(args)
            .output()
            .expect("flowlens admin runs");
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("cannot initialise") || err.contains("node 7 is not running"),
            "{args:?}: {err}"
        );
    }
    // A bad NATS URL is named.
    let out = Command::new(bin())
        .args(["admin", "--nats", "nats://127.0.0.1:1", "status"])
        .output()
        .expect("flowlens admin runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot connect to NATS at nats://127.0.0.1:1"),
        "{err}"
    );
}

#[test]
fn a_node_behind_the_purged_log_catches_up_from_a_snapshot_and_keeps_a_history() {
    let nats = NatsServer::start();
    // A snapshot every 10 entries, 2 kept behind it: the log is purged as the test runs.
    let env = [
        ("FLOWLENS_STORE__SNAPSHOT_EVERY", "10"),
        ("FLOWLENS_STORE__LOG_KEEP", "2"),
    ];
    let mut members = three_node_cluster_with(&nats, &env);
    let first = stream(vec![members[0].node().udp], 10)
        .join()
        .expect("sender");
    wait_all_equal(&members, &expected_of(&first));
    let behind = status_of(members[2].node())["applied_index"]
        .as_u64()
        .unwrap_or(0);
    if let Some(node) = members[2].node.take() {
        node.terminate();
    }
    // Node 3 misses all this; the others snapshot and purge their logs past where it stopped.
    let targets = vec![members[0].node().udp, members[1].node().udp];
    let mut sent = first;
    sent.extend(stream(targets, 80).join().expect("sender"));
    let want = expected_of(&sent);
    wait_all_equal(&members, &want);
    let deadline = Instant::now() + Duration::from_secs(30);
    while status_of(members[0].node())["purged_index"].as_u64() <= Some(behind + 1) {
        assert!(
            Instant::now() < deadline,
            "the leader did not purge its log past {behind}: {}",
            status_of(members[0].node())
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    members[2].restart(&nats);
    wait_all_equal(&members, &want);
    // It installed the leader's snapshot: its history starts from it.
    let base = members[2].dir().join("history/base.snap");
    assert!(
        base.exists(),
        "node 3 caught up without a snapshot: {}",
        status_of(members[2].node())
    );
    // Its history starts at the snapshot, and a rebuild from it equals its projection.
    let out = admin(&nats, &["rebuild", "--node", "3"]);
    assert!(out.contains("equal to the live projection"), "{out}");
    let (status, events) = members[2]
        .node()
        .get("/api/v1/history/events?kind=dependency.*");
    assert_eq!(status, 200, "{events}");
    let (status, body) = members[2].node().get("/api/v1/topology?at=1000");
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("history starts at"), "{body}");
}

#[test]
fn a_dependency_only_one_node_sees_is_not_expired_by_the_others() {
    let nats = NatsServer::start();
    let env = [("FLOWLENS_GRAPH__IDLE_EXPIRY", "3s")];
    let mut members = three_node_cluster_with(&nats, &env);
    let x = round_flows(7, 0);
    let [template, data] = ipfix_packets(&x);
    members[1].node().send(&[&template, &data]);
    wait_all_equal(&members, &expected_of(&x));
    // Node 1 restarts, so its graph knows x from the projection, not from its own flows.
    if let Some(n) = members[0].node.take() {
        n.terminate();
    }
    members[0].restart(&nats);
    members[0]
        .node()
        .wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
    // Only node 2 keeps seeing x, for twice the idle time.
    let started = Instant::now();
    let mut sent = x.clone();
    while started.elapsed() < Duration::from_secs(6) {
        let more = round_flows(7, 0);
        let [template, data] = ipfix_packets(&more);
        members[1].node().send(&[&template, &data]);
        sent.extend(more);
        std::thread::sleep(Duration::from_millis(300));
    }
    wait_all_equal(&members, &expected_of(&sent));
    for m in &members {
        let (_, body) = m
            .node()
            .get("/api/v1/history/events?kind=dependency.expired");
        assert_eq!(body["total"], 0, "node {} saw x expire: {body}", m.id);
        let (_, deps) = m.node().get("/api/v1/dependencies?status=active");
        assert_eq!(deps["total"], 5, "node {}: {deps}", m.id);
    }
}

#[test]
fn rules_and_alerts_written_on_followers_reach_every_node_and_alert_once() {
    let nats = NatsServer::start();
    let members = three_node_cluster_with(&nats, &[("FLOWLENS_ADVISORIES__WINDOW", "1s")]);
    let (leader, follower, other) = (members[0].node(), members[1].node(), members[2].node());
    let post = |node: &NodeProcess, path: &str, body: &str| {
        let (status, text) =
            flowlens_tests::http_send_auth(node.api, "POST", path, Some(body)).expect("post");
        assert!(status == 201 || status == 200, "{path}: {status} {text}");
        serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)
    };
    // Written on followers: forwarded to the leader, applied everywhere before the answer.
    let rule = post(
        follower,
        "/api/v1/alert-rules",
        r#"{"name":"insecure","condition":{"on":"advisory","min_severity":"WARNING"}}"#,
    );
    let rule_id = rule["id"].as_str().expect("rule id").to_owned();
    post(
        other,
        "/api/v1/classification-rules",
        r#"{"name":"servers","cidr":"10.9.0.0/16","environment":"prod"}"#,
    );
    for m in &members {
        m.node().wait_until(
            |n| {
                n.get(&format!("/api/v1/alert-rules/{rule_id}")).0 == 200
                    && n.get("/api/v1/classification-rules")
                        .1
                        .as_array()
                        .map(Vec::len)
                        == Some(1)
            },
            "rules replicated",
        );
    }

    // Both followers see the same Telnet session: one advisory, one alert, everywhere.
    let telnet = https_flow([10, 9, 0, 7], [10, 9, 0, 9], 500);
    let telnet = FlowRecord {
        dst_port: 23,
        ..telnet
    };
    for node in [follower, other] {
        let [template, data] = ipfix_packets(&[telnet]);
        node.send(&[&template, &data]);
    }
    let alerts = |n: &NodeProcess| {
        n.get(&format!("/api/v1/alerts?status=all&rule={rule_id}"))
            .1["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    for m in &members {
        m.node()
            .wait_until(|n| alerts(n).len() == 1, "the alert on every node");
    }
    std::thread::sleep(Duration::from_secs(2));
    for m in &members {
        let node = m.node();
        assert_eq!(alerts(node).len(), 1, "node {}", m.id);
        let (_, advisories) = node.get("/api/v1/advisories");
        assert_eq!(advisories["total"], 1, "node {}: {advisories}", m.id);
        assert_eq!(advisories["items"][0]["times_raised"], 1);
    }
    let id = alerts(leader)[0]["id"].as_str().expect("id").to_owned();
    post(
        other,
        &format!("/api/v1/alerts/{id}/acknowledge"),
        r#"{"by":"bob"}"#,
    );
    leader.wait_until(
        |n| n.get(&format!("/api/v1/alerts/{id}")).1["status"] == "acknowledged",
        "acknowledged on the leader",
    );
    assert_eq!(
        leader.get("/api/v1/assets/10.9.0.9").1["classification"]["environment"],
        "prod"
    );
}
