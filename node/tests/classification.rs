//! Classification rules on a real node fed real IPFIX packets: CRUD through the API (each change
//! an event in the log), longest prefix then priority deciding, assets re-classified the moment a
//! rule changes, validation errors naming the field, and the fold of rule events equal to a
//! replay of the history.

use std::collections::BTreeSet;

use flowlens_tests::{
    free_tcp_port, free_udp_port, http_send_auth, ipfix_packets, tcp_flow, NodeProcess,
};
use serde_json::{json, Value};

fn get(node: &NodeProcess, path: &str) -> Value {
    let (status, body) = node.get(path);
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn ips(node: &NodeProcess, query: &str) -> BTreeSet<String> {
    get(node, &format!("/api/v1/assets?{query}"))["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["ip"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn set<const N: usize>(items: [&str; N]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn create(node: &NodeProcess, rule: Value) -> String {
    let (status, body) = node.send_json("POST", "/api/v1/classification-rules", &rule);
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("an id").to_owned()
}

#[test]
fn rules_classify_assets_and_every_change_reclassifies_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_flowlens"));
    let node = NodeProcess::start(bin, dir.path(), free_tcp_port(), free_udp_port(), &[], &[]);
    node.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
    let flows = [
        tcp_flow("10.1.0.5", "10.2.0.9", 5432, 900),
        tcp_flow("10.1.0.6", "10.2.0.9", 5432, 900),
        tcp_flow("10.2.0.7", "192.168.3.3", 443, 900),
    ];
    let [template, data] = ipfix_packets(&flows);
    node.send(&[&template, &data]);
    node.wait_until(|n| n.dependencies().len() == 3, "mapped");

    let everything = create(
        &node,
        json!({"name": "corporate", "cidr": "10.0.0.0/8", "environment": "prod", "priority": 10}),
    );
    let loose = create(
        &node,
        json!({"name": "apps", "cidr": "10.1.0.0/16", "environment": "uat", "datacenter": "fra1", "priority": 50}),
    );
    let tight = create(
        &node,
        json!({"name": "apps-qa", "cidr": "10.1.7.7/16", "environment": "QA", "location": "rack 4", "priority": 5}),
    );
    let lab = create(
        &node,
        json!({"name": "lab", "cidr": "192.168.3.0/24", "environment": "dev", "internal": false}),
    );

    // The same prefix length: the lower priority value (apps-qa) wins; its CIDR is normalised.
    let c = get(&node, "/api/v1/classification-rules/classify/10.1.0.5");
    assert_eq!(c["classification"]["rule_id"], tight.as_str());
    assert_eq!(c["classification"]["environment"], "qa");
    assert_eq!(c["classification"]["location"], "rack 4");
    assert_eq!(c["known_asset"], true);
    let matching: Vec<&str> = c["matching"]
        .as_array()
        .expect("matching")
        .iter()
        .map(|r| r["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        matching,
        vec![tight.as_str(), loose.as_str(), everything.as_str()]
    );
    assert_eq!(
        get(&node, &format!("/api/v1/classification-rules/{tight}"))["cidr"],
        "10.1.0.0/16"
    );
    let outside = get(&node, "/api/v1/classification-rules/classify/8.8.8.8");
    assert_eq!(outside["classification"]["rule_id"], Value::Null);
    assert_eq!(outside["known_asset"], false);

    // Assets carry their classification and filter by environment; the lab rule makes a private
    // address external.
    assert_eq!(ips(&node, "env=qa"), set(["10.1.0.5", "10.1.0.6"]));
    assert_eq!(ips(&node, "env=prod"), set(["10.2.0.7", "10.2.0.9"]));
    assert_eq!(ips(&node, "env=external"), set(["192.168.3.3"]));
    let lab_asset = get(&node, "/api/v1/assets/192.168.3.3");
    assert_eq!(lab_asset["internal"], false);
    assert_eq!(lab_asset["classification"]["rule_name"], "lab");
    let map = get(&node, "/api/v1/topology?env=qa");
    assert_eq!(map["nodes"].as_array().map(Vec::len), Some(2), "{map}");

    // Replacing a rule re-classifies at once; deleting it hands its assets to the next rule.
    let (status, replaced) = node.send_json(
        "PUT",
        &format!("/api/v1/classification-rules/{tight}"),
        &json!({"name": "apps-dev", "cidr": "10.1.0.0/16", "environment": "dev", "priority": 5}),
    );
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(
        ips(&node, "env=dev"),
        set(["10.1.0.5", "10.1.0.6", "192.168.3.3"])
    );
    let (status, _) = http_send_auth(
        node.api,
        "DELETE",
        &format!("/api/v1/classification-rules/{tight}"),
        None,
    )
    .expect("delete");
    assert_eq!(status, 204);
    assert_eq!(ips(&node, "env=uat"), set(["10.1.0.5", "10.1.0.6"]));
    assert_eq!(ips(&node, "datacenter=fra1"), set(["10.1.0.5", "10.1.0.6"]));
    assert_eq!(
        get(&node, "/api/v1/classification-rules")
            .as_array()
            .map(Vec::len),
        Some(3)
    );

    // Impact analysis counts broken assets by environment.
    let blast = get(&node, "/api/v1/analysis/blast-radius/10.2.0.9");
    assert_eq!(blast["broken_by_tier"], json!({"uat": 2}));

    // Every change is an event in the history, and replaying the history gives the same rules.
    let events = get(
        &node,
        "/api/v1/history/events?kind=classification_rule.*&limit=100",
    );
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "classification_rule_set",
            "classification_rule_set",
            "classification_rule_set",
            "classification_rule_set",
            "classification_rule_set",
            "classification_rule_deleted",
        ],
        "{events}"
    );
    let (status, rebuilt) =
        http_send_auth(node.api, "POST", "/api/v1/admin/rebuild", None).expect("rebuild");
    assert_eq!(status, 200);
    assert!(rebuilt.contains(r#""equal":true"#), "{rebuilt}");
    let _ = lab;
}

#[test]
fn bad_rules_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_flowlens"));
    let node = NodeProcess::start(bin, dir.path(), free_tcp_port(), free_udp_port(), &[], &[]);
    node.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
    let path = "/api/v1/classification-rules";
    let cases = [
        (json!({"name": "x", "cidr": "10.0.0.0/33"}), "cidr"),
        (json!({"name": "", "cidr": "10.0.0.0/8"}), "name"),
        (
            json!({"name": "x", "cidr": "10.0.0.0/8", "environment": "staging"}),
            "environment",
        ),
        (
            json!({"name": "x", "cidr": "10.0.0.0/8", "colour": "red"}),
            "body",
        ),
        (json!({"name": "x"}), "body"),
        (
            json!({"name": "x", "cidr": "10.0.0.0/8", "priority": -1}),
            "body",
        ),
    ];
    for (rule, field) in cases {
        let (status, body) = node.send_json("POST", path, &rule);
        assert_eq!(status, 400, "{rule}: {body}");
        assert_eq!(body["parameter"], field, "{rule}: {body}");
    }
    let (status, body) = http_send_auth(node.api, "POST", path, Some("{not json")).expect("post");
    assert_eq!(status, 400, "{body}");
    let (status, _) = node.send_json(
        "PUT",
        &format!("{path}/nope"),
        &json!({"name": "x", "cidr": "10.0.0.0/8"}),
    );
    assert_eq!(status, 404);
    let (status, _) =
        http_send_auth(node.api, "DELETE", &format!("{path}/nope"), None).expect("delete");
    assert_eq!(status, 404);
    let (status, body) = node.get("/api/v1/classification-rules/classify/nope");
    assert_eq!((status, &body["parameter"]), (400, &json!("ip")));
    assert_eq!(get(&node, path), json!([]));
}
