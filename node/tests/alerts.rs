//! Alert rules, alerts and notifications on a real node fed real IPFIX packets: a new database
//! client, a vanished dependency and a Telnet advisory each raise their alert exactly once; a
//! local HTTP server receives the signed webhook (after one refused attempt, retried) and a
//! local SMTP sink the email (after AUTH PLAIN); a notifier that cannot be reached shows its failure on the alert;
//! a maintenance window keeps a rule silent; acknowledging and resolving change the alert's
//! state; the live stream pushes the alerts as they are raised.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowlens_tests::{
    free_tcp_port, free_udp_port, http_send_auth, ipfix_packets, now_ms, tcp_flow, NodeProcess,
};
use serde_json::{json, Value};

type Received = Arc<Mutex<Vec<(String, String)>>>;

/// An HTTP server that answers 500 to the first request and 200 after; keeps (head, body).
fn webhook_server() -> (SocketAddr, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let got: Received = Arc::default();
    let keep = got.clone();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let status = if n == 0 {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno"
            );
            keep.lock()
                .expect("lock")
                .push((head, String::from_utf8_lossy(&body).into_owned()));
        }
    });
    (addr, got)
}

/// A minimal SMTP sink: accepts every message, keeps each one's text.
fn smtp_sink() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let keep = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let _ = stream.write_all(b"220 sink ESMTP\r\n");
            let mut message = String::new();
            let mut in_data = false;
            let mut authenticated = false;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        keep.lock()
                            .expect("lock")
                            .push(std::mem::take(&mut message));
                        let _ = stream.write_all(b"250 queued\r\n");
                    } else {
                        message.push_str(&line);
                    }
                    continue;
                }
                let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
                let reply: &[u8] = match verb.as_str() {
                    "EHLO" => b"250-sink\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n",
                    // The credentials of the config below, and nothing else.
                    "AUTH" if line.trim_end() == "AUTH PLAIN AGZsb3dsZW5zAHB3" => {
                        authenticated = true;
                        b"235 welcome\r\n"
                    }
                    "AUTH" => b"535 no\r\n",
                    "MAIL" if !authenticated => b"530 authentication required\r\n",
                    "DATA" => {
                        in_data = true;
                        b"354 go on\r\n"
                    }
                    "QUIT" => {
                        let _ = stream.write_all(b"221 bye\r\n");
                        break;
                    }
                    _ => b"250 ok\r\n",
                };
                let _ = stream.write_all(reply);
            }
        }
    });
    (addr, got)
}

fn create_rule(node: &NodeProcess, rule: Value) -> String {
    let (status, body) = node.send_json("POST", "/api/v1/alert-rules", &rule);
    assert_eq!(status, 201, "{rule}: {body}");
    body["id"].as_str().expect("id").to_owned()
}

fn alerts_of(node: &NodeProcess, rule: &str) -> Vec<Value> {
    let (_, body) = node.get(&format!("/api/v1/alerts?status=all&rule={rule}&limit=1000"));
    body["items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn alerts_are_raised_once_notified_acknowledged_and_resolved() {
    let (hook, hooked) = webhook_server();
    let (smtp, mailed) = smtp_sink();
    let dead = free_tcp_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("flowlens.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[alerting]
retry_base = "200ms"
max_attempts = 3
timeout = "2s"

[[notifiers]]
id = "hook"
kind = "webhook"
url = "http://{hook}/flowlens"
secret = "s3cret"

[[notifiers]]
id = "mail"
kind = "email"
smtp = "{smtp}"
from = "flowlens@example.com"
to = ["ops@example.com"]
username = "flowlens"
password = "pw"

[[notifiers]]
id = "dead"
kind = "webhook"
url = "http://127.0.0.1:{dead}/nobody"
"#
        ),
    )
    .expect("config");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_flowlens"));
    let env = [
        ("FLOWLENS_GRAPH__IDLE_EXPIRY", "3s"),
        ("FLOWLENS_ADVISORIES__WINDOW", "1s"),
    ];
    let data = dir.path().join("data");
    let config_arg = config.to_string_lossy().into_owned();
    let node = NodeProcess::start(
        bin,
        &data,
        free_tcp_port(),
        free_udp_port(),
        &["--config", &config_arg],
        &env,
    );
    node.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
    let (_, notifiers) = node.get("/api/v1/notifiers");
    assert_eq!(notifiers.as_array().map(Vec::len), Some(3), "{notifiers}");
    assert!(!notifiers.to_string().contains("s3cret"));

    let db_client = create_rule(
        &node,
        json!({"name": "new database client", "condition": {"on": "new_dependency"},
               "scope": {"port": 5432}, "notify": ["hook", "mail"]}),
    );
    let vanished = create_rule(
        &node,
        json!({"name": "vanished database dependency", "condition": {"on": "dependency_removed"},
               "scope": {"cidr": "10.5.0.0/16", "port": 5432}, "severity": "CRITICAL", "notify": ["dead"]}),
    );
    let insecure = create_rule(
        &node,
        json!({"name": "insecure protocols", "condition": {"on": "advisory", "min_severity": "WARNING"}}),
    );
    let busy = create_rule(
        &node,
        json!({"name": "busy database", "condition": {"on": "traffic", "min_bytes_per_s": 1000},
               "scope": {"port": 5432}, "severity": "INFO"}),
    );
    let now = now_ms();
    let quiet = create_rule(
        &node,
        json!({"name": "new assets (in maintenance)", "condition": {"on": "new_asset"},
               "maintenance": [{"start_ms": now - 60_000, "end_ms": now + 3_600_000}]}),
    );

    // The live stream, opened before any traffic.
    let mut sse = TcpStream::connect(node.api).expect("connect");
    write!(
        sse,
        "GET /api/v1/events/stream?kind=alert.raised HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {}\r\n\r\n",
        flowlens_tests::test_token()
    )
    .expect("request");
    sse.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let streamed = Arc::new(Mutex::new(String::new()));
    let keep = streamed.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = sse.read(&mut buf) {
            if n == 0 {
                break;
            }
            keep.lock()
                .expect("lock")
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    std::thread::sleep(Duration::from_millis(300));

    let traffic = [
        tcp_flow("10.5.0.7", "10.5.0.30", 5432, 800),
        tcp_flow("10.5.0.8", "10.5.0.9", 23, 800),
    ];
    let [template, data_packet] = ipfix_packets(&traffic);
    node.send(&[&template, &data_packet]);
    node.wait_until(
        |n| alerts_of(n, &db_client).len() == 1,
        "database client alert",
    );
    node.wait_until(
        |n| alerts_of(n, &insecure).len() == 1,
        "telnet advisory alert",
    );
    // The same traffic again raises nothing new.
    let [template, data_packet] = ipfix_packets(&traffic);
    node.send(&[&template, &data_packet]);

    // Webhook: refused once, delivered on the retry, signed with the secret.
    node.wait_until(
        |n| {
            alerts_of(n, &db_client)[0]["deliveries"]
                .as_array()
                .is_some_and(|d| d.len() == 2 && d.iter().all(|x| x["done"] == true))
        },
        "both notifications done",
    );
    let alert = &alerts_of(&node, &db_client)[0];
    assert_eq!(
        alert["summary"],
        "new dependency: 10.5.0.7 calls 10.5.0.30:5432/6"
    );
    assert_eq!(alert["severity"], "WARNING");
    let hook_delivery = alert["deliveries"]
        .as_array()
        .and_then(|d| d.iter().find(|x| x["notifier"] == "hook"))
        .expect("hook delivery");
    assert_eq!(
        (&hook_delivery["ok"], &hook_delivery["attempts"]),
        (&json!(true), &json!(2))
    );
    let requests = hooked.lock().expect("lock").clone();
    assert_eq!(requests.len(), 2);
    let (head, body) = &requests[1];
    let mac = node::alerting::notify::hmac_sha256(b"s3cret", body.as_bytes());
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        head.contains(&format!("X-FlowLens-Signature: sha256={hex}")),
        "{head}"
    );
    let payload: Value = serde_json::from_str(body).expect("json");
    assert_eq!(payload["alert"]["rule_id"], db_client.as_str());

    // Email.
    let mails = mailed.lock().expect("lock").clone();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(
        mails[0].contains("Subject: [FlowLens WARNING] new database client: new dependency"),
        "{}",
        mails[0]
    );

    // The Telnet advisory's alert.
    let telnet = &alerts_of(&node, &insecure)[0];
    assert_eq!(telnet["subject"], "insecure_protocol:10.5.0.9:23/6");

    // Silence: the database dependency vanishes after the idle time; its notifier is unreachable.
    node.wait_until(
        |n| alerts_of(n, &vanished).len() == 1,
        "vanished dependency alert",
    );
    node.wait_until(
        |n| alerts_of(n, &vanished)[0]["deliveries"][0]["done"] == true,
        "dead notifier given up",
    );
    let gone = &alerts_of(&node, &vanished)[0];
    assert_eq!(gone["severity"], "CRITICAL");
    let failed = &gone["deliveries"][0];
    assert_eq!(
        (&failed["ok"], &failed["attempts"]),
        (&json!(false), &json!(3))
    );
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot connect")),
        "{failed}"
    );

    // 800 bytes in a 200 ms stats period is 4000 bytes/s: over the traffic rule's 1000.
    node.wait_until(|n| alerts_of(n, &busy).len() == 1, "traffic alert");
    let busy_alert = &alerts_of(&node, &busy)[0];
    assert_eq!(busy_alert["subject"], "10.5.0.7>10.5.0.30:5432/6");
    assert!(
        busy_alert["summary"]
            .as_str()
            .is_some_and(|s| s.ends_with("bytes/s over the last stats period")),
        "{busy_alert}"
    );

    // Exactly once each, and nothing from the rule in maintenance.
    assert_eq!(alerts_of(&node, &busy).len(), 1);
    assert_eq!(alerts_of(&node, &db_client).len(), 1);
    assert_eq!(alerts_of(&node, &insecure).len(), 1);
    assert_eq!(alerts_of(&node, &vanished).len(), 1);
    assert!(alerts_of(&node, &quiet).is_empty());

    // Acknowledge, then resolve.
    let id = alert["id"].as_str().expect("id");
    let (status, acked) = node.send_json(
        "POST",
        &format!("/api/v1/alerts/{id}/acknowledge"),
        &json!({"by": "alice", "note": "expected: new reporting job"}),
    );
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["status"], "acknowledged");
    assert_eq!(acked["acknowledged"]["by"], "alice");
    let (status, again) = http_send_auth(
        node.api,
        "POST",
        &format!("/api/v1/alerts/{id}/acknowledge"),
        None,
    )
    .expect("post");
    assert_eq!(status, 400, "{again}");
    let (status, resolved) = http_send_auth(
        node.api,
        "POST",
        &format!("/api/v1/alerts/{id}/resolve"),
        None,
    )
    .expect("post");
    assert_eq!(status, 200);
    assert!(resolved.contains(r#""status":"resolved""#), "{resolved}");
    let (_, open) = node.get("/api/v1/alerts");
    assert!(!open.to_string().contains(id), "{open}");

    // The stream pushed the raised alerts.
    let text = streamed.lock().expect("lock").clone();
    assert!(text.contains("event: alert.raised"), "{text}");
    assert!(text.contains(&db_client), "{text}");

    // Bad rules and unknown alerts.
    let (status, body) = node.send_json(
        "POST",
        "/api/v1/alert-rules",
        &json!({"name": "x", "condition": {"on": "new_asset"}, "notify": ["pager"]}),
    );
    assert_eq!(
        (status, &body["parameter"]),
        (400, &json!("notify")),
        "{body}"
    );
    let (status, body) = node.send_json(
        "POST",
        "/api/v1/alert-rules",
        &json!({"name": "x", "condition": {"on": "solar_flare"}}),
    );
    assert_eq!(
        (status, &body["parameter"]),
        (400, &json!("body")),
        "{body}"
    );
    assert_eq!(node.get("/api/v1/alerts/nope").0, 404);
}
