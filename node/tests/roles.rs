//! Behavioural classification on a real node fed real IPFIX packets: roles are inferred only
//! after the observation window and above the confidence threshold, committed once (not again on
//! every pass), shown with their evidence, and a role set by hand wins until cleared.

use std::time::Duration;

use flowlens_tests::{
    free_tcp_port, free_udp_port, http_send_auth, ipfix_packets, now_ms, tcp_flow, NodeProcess,
};
use proto::FlowRecord;
use serde_json::{json, Value};

const LB: &str = "10.1.0.10";
const DB: &str = "10.1.0.30";
const DNS: &str = "10.1.0.53";
const APP: &str = "10.1.0.80";

fn flow(client: &str, server: &str, port: u16, protocol: u8) -> FlowRecord {
    FlowRecord {
        protocol,
        ..tcp_flow(client, server, port, 700)
    }
}

fn get(node: &NodeProcess, path: &str) -> Value {
    let (status, body) = node.get(path);
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn put_role(node: &NodeProcess, ip: &str, body: &str) -> (u16, Value) {
    let (status, text) = http_send_auth(
        node.api,
        "PUT",
        &format!("/api/v1/assets/{ip}/role"),
        Some(body),
    )
    .expect("put");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn inferred(node: &NodeProcess, ip: &str) -> Value {
    get(node, &format!("/api/v1/assets/{ip}/role"))["inferred"].clone()
}

#[test]
fn infers_roles_after_the_window_and_lets_a_user_override_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_flowlens"));
    let env = [
        ("FLOWLENS_CLASSIFICATION__INTERVAL", "200ms"),
        ("FLOWLENS_CLASSIFICATION__MIN_OBSERVATION", "3s"),
    ];
    let node = NodeProcess::start(bin, dir.path(), free_tcp_port(), free_udp_port(), &[], &env);
    node.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
    let mut flows = Vec::new();
    for c in 1..=3 {
        let client = format!("10.2.0.{c}");
        flows.push(flow(&client, LB, 443, 6));
        flows.push(flow(&client, DNS, 53, 17));
        flows.push(flow(&client, APP, 8443, 6));
    }
    for web in ["10.1.0.20", "10.1.0.21"] {
        flows.push(flow(LB, web, 8080, 6));
        flows.push(flow(web, DB, 5432, 6));
    }
    let [template, data] = ipfix_packets(&flows);
    let sent = now_ms();
    node.send(&[&template, &data]);
    node.wait_until(|n| n.dependencies().len() == flows.len(), "mapped");

    // Within the observation window the traffic already suggests a role, but none is applied.
    let early = get(&node, &format!("/api/v1/assets/{DB}/role"));
    assert_eq!(early["candidates"][0]["role"], "database", "{early}");
    if now_ms() - sent < 2_500 {
        assert_eq!(early["inferred"], Value::Null, "{early}");
    }

    node.wait_until(|n| inferred(n, DB) != Value::Null, "database inferred");
    let db = get(&node, &format!("/api/v1/assets/{DB}/role"));
    assert_eq!(db["effective"]["role"], "database");
    assert_eq!(db["effective"]["source"], "inferred");
    assert_eq!(db["effective"]["confidence_pct"], 85);
    assert_eq!(
        db["effective"]["evidence"],
        json!(["answers 5432/tcp (postgresql) for 2 clients"])
    );
    node.wait_until(|n| inferred(n, LB) != Value::Null, "balancer inferred");
    assert_eq!(inferred(&node, LB)["role"], "load_balancer");
    node.wait_until(|n| inferred(n, DNS) != Value::Null, "dns inferred");
    assert_eq!(inferred(&node, DNS)["role"], "dns");
    // Three clients make a server only 65 % sure: below the 70 % threshold, not applied.
    let app = get(&node, &format!("/api/v1/assets/{APP}/role"));
    assert_eq!(app["candidates"][0]["role"], "server", "{app}");
    assert_eq!(app["candidates"][0]["confidence_pct"], 65);
    assert_eq!(app["inferred"], Value::Null);
    let listed = get(&node, "/api/v1/assets?role=database");
    assert_eq!(listed["total"], 1, "{listed}");
    assert_eq!(listed["items"][0]["role"]["role"], "database");

    // Further passes commit nothing new for an unchanged map.
    std::thread::sleep(Duration::from_secs(1));
    let events = get(
        &node,
        "/api/v1/history/events?kind=asset.role_inferred&limit=100",
    );
    assert_eq!(events["total"], 3, "{events}");

    // A role set by hand wins, and clearing it hands the asset back to the classifier.
    let (status, manual) = put_role(&node, DB, r#"{"role":"gateway"}"#);
    assert_eq!(status, 200, "{manual}");
    assert_eq!(manual["effective"]["role"], "gateway");
    assert_eq!(manual["effective"]["source"], "manual");
    assert_eq!(manual["inferred"]["role"], "database");
    assert_eq!(get(&node, "/api/v1/assets?role=gateway")["total"], 1);
    assert_eq!(
        get(&node, &format!("/api/v1/assets/{DB}"))["role"]["role"],
        "gateway"
    );
    let (status, cleared) = put_role(&node, DB, r#"{"role":null}"#);
    assert_eq!(status, 200);
    assert_eq!(cleared["effective"]["role"], "database");

    // Bad input is refused naming what is wrong.
    let (status, body) = put_role(&node, DB, r#"{"role":"toaster"}"#);
    assert_eq!(
        (status, &body["parameter"]),
        (400, &json!("role")),
        "{body}"
    );
    let (status, body) = put_role(&node, DB, r#"{"rol":"server"}"#);
    assert_eq!(
        (status, &body["parameter"]),
        (400, &json!("body")),
        "{body}"
    );
    let (status, _) = put_role(&node, "10.9.9.9", r#"{"role":"server"}"#);
    assert_eq!(status, 404);
    let (status, body) = node.get("/api/v1/assets?role=toaster");
    assert_eq!((status, &body["parameter"]), (400, &json!("role")));
}
