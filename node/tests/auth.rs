//! Access control on a real node: every route but health, sign-in and the API description
//! refuses an unauthenticated request; the first admin's one-time password must be changed
//! before anything else; sessions need their CSRF header for changes; each role can do exactly
//! what it should (table-driven); tokens expire and revoke; every change, refusal and sign-in
//! is in the audit trail; per-client limits hold back floods and password guessing, and bodies
//! over 64 KiB are refused (413); a role scoped to a network sees only what touches it.

use std::net::SocketAddr;
use std::time::Duration;

use flowlens_tests::{
    free_tcp_port, free_udp_port, http_exchange, http_exchange_head, http_send, ipfix_packets,
    tcp_flow, NodeProcess,
};
use serde_json::{json, Value};

fn start(env: &[(&str, &str)]) -> (tempfile::TempDir, NodeProcess) {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_flowlens"));
    let node = NodeProcess::start(bin, dir.path(), free_tcp_port(), free_udp_port(), &[], env);
    node.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
    (dir, node)
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// A request with a bearer token.
fn with_token(
    api: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let (status, text) = http_exchange(
        api,
        method,
        path,
        body.as_deref(),
        &format!("Authorization: Bearer {token}\r\n"),
    )
    .expect("API reachable");
    (status, json_of(&text))
}

/// A browser-like session: its cookie and CSRF value.
struct Session {
    cookie: String,
    csrf: String,
}

fn sign_in(api: SocketAddr, user: &str, password: &str) -> Result<Session, (u16, String)> {
    let body = json!({"user": user, "password": password}).to_string();
    let (status, head, text) =
        http_exchange_head(api, "POST", "/api/v1/auth/login", Some(&body), "").expect("login");
    if status != 200 {
        return Err((status, text));
    }
    let cookie = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    assert!(
        head.to_ascii_lowercase()
            .contains("httponly; samesite=strict"),
        "{head}"
    );
    let csrf = json_of(&text)["csrf"].as_str().expect("csrf").to_owned();
    Ok(Session { cookie, csrf })
}

impl Session {
    fn send(
        &self,
        api: SocketAddr,
        method: &str,
        path: &str,
        body: Option<Value>,
        csrf: bool,
    ) -> (u16, Value) {
        let mut extra = format!("Cookie: {}\r\n", self.cookie);
        if csrf {
            extra.push_str(&format!("X-CSRF-Token: {}\r\n", self.csrf));
        }
        let body = body.map(|b| b.to_string());
        let (status, text) =
            http_exchange(api, method, path, body.as_deref(), &extra).expect("API reachable");
        (status, json_of(&text))
    }
}

/// A new user with `role`, signed in, its one-time password changed, and an API token.
fn user_with_token(node: &NodeProcess, name: &str, role: &str) -> String {
    node.user_token(name, role, &[])
}

#[test]
fn unauthenticated_requests_are_refused_on_every_route_but_health_and_sign_in() {
    let (_dir, node) = start(&[]);
    let (status, spec) = http_send(node.api, "GET", "/api/v1/openapi.json", None).expect("spec");
    assert_eq!(status, 200);
    let spec = json_of(&spec);
    let public = [
        "/api/v1/health/live",
        "/api/v1/health/ready",
        "/api/v1/auth/login",
        "/api/v1/auth/state",
    ];
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("methods").keys() {
            let concrete = path
                .replace("{ip}", "10.0.0.1")
                .replace("{id}", "x")
                .replace("{name}", "x")
                .replace("{*id}", "x");
            let (status, body) =
                http_send(node.api, &method.to_uppercase(), &concrete, None).expect("answer");
            if public.contains(&path.as_str()) {
                assert_ne!(status, 401, "{method} {path} is public");
                continue;
            }
            assert_eq!(status, 401, "{method} {path} answered {status}: {body}");
            assert!(body.contains("sign in first"), "{body}");
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} routes checked");
    let (status, _) = http_send(node.api, "GET", "/metrics", None).expect("metrics");
    assert_eq!(status, 401);
    // A made-up token is refused too; the UI's files are public and carry security headers.
    let (status, _) = with_token(node.api, "fl_made_up", "GET", "/api/v1/assets", None);
    assert_eq!(status, 401);
    let (status, head, _) = http_exchange_head(node.api, "GET", "/", None, "").expect("index");
    assert_eq!(status, 200);
    for header in [
        "x-content-type-options: nosniff",
        "x-frame-options: deny",
        "content-security-policy: default-src 'self'",
    ] {
        assert!(
            head.to_ascii_lowercase().contains(header),
            "{header} in {head}"
        );
    }
}

#[test]
fn the_first_admin_must_replace_its_one_time_password_and_sessions_need_csrf() {
    let (dir, node) = start(&[("FLOWLENS_AUTH__LOGIN_ATTEMPTS_PER_MINUTE", "5")]);
    let password = std::fs::read_to_string(dir.path().join("initial-admin-password"))
        .expect("the one-time password file");
    let password = password.trim();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("initial-admin-password"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let session = sign_in(node.api, "admin", password).expect("admin signs in");
    let (status, body) = session.send(node.api, "GET", "/api/v1/assets", None, false);
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]
        .as_str()
        .is_some_and(|e| e.contains("choose a new password")));
    let (status, me) = session.send(node.api, "GET", "/api/v1/auth/me", None, false);
    assert_eq!(status, 200);
    assert_eq!(me["user"]["must_change_password"], true);
    // A change without the CSRF header is refused, with it accepted.
    let change = json!({"current": password, "new": "a-much-better-password"});
    let (status, body) = session.send(
        node.api,
        "POST",
        "/api/v1/auth/password",
        Some(change.clone()),
        false,
    );
    assert_eq!(status, 403, "{body}");
    let (status, body) = session.send(
        node.api,
        "POST",
        "/api/v1/auth/password",
        Some(json!({"current": password, "new": "short"})),
        true,
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = session.send(
        node.api,
        "POST",
        "/api/v1/auth/password",
        Some(change),
        true,
    );
    assert_eq!(status, 204, "{body}");
    let (status, _) = session.send(node.api, "GET", "/api/v1/assets", None, false);
    assert_eq!(status, 200);
    // The one-time password is spent; the new one works; signing out ends the session.
    assert_eq!(
        sign_in(node.api, "admin", password).err().map(|e| e.0),
        Some(401)
    );
    let again = sign_in(node.api, "admin", "a-much-better-password").expect("new password");
    let (status, _) = again.send(node.api, "POST", "/api/v1/auth/logout", None, true);
    assert_eq!(status, 204);
    let (status, _) = again.send(node.api, "GET", "/api/v1/assets", None, false);
    assert_eq!(status, 401);
    // Guessing is held back: 1 wrong above, 4 more, then refused even with the right password.
    for _ in 0..4 {
        assert_eq!(
            sign_in(node.api, "admin", "wrong-password!!")
                .err()
                .map(|e| e.0),
            Some(401)
        );
    }
    assert_eq!(
        sign_in(node.api, "admin", "a-much-better-password")
            .err()
            .map(|e| e.0),
        Some(429)
    );
}

#[test]
fn each_role_can_do_exactly_what_it_should_and_everything_is_audited() {
    let (_dir, node) = start(&[]);
    let tokens: Vec<(&str, String)> = ["viewer", "operator", "editor", "admin"]
        .into_iter()
        .map(|role| (role, user_with_token(&node, &format!("{role}1"), role)))
        .collect();
    let rule = json!({"name": "lab", "cidr": "10.9.0.0/16"});
    let user = json!({"name": "x", "password": "short", "role": "viewer"});
    // (method, path, body, the least role allowed)
    let table: [(&str, &str, Option<Value>, &str); 9] = [
        ("GET", "/api/v1/assets", None, "viewer"),
        ("GET", "/api/v1/analysis/spof", None, "viewer"),
        ("GET", "/metrics", None, "viewer"),
        (
            "POST",
            "/api/v1/alerts/nope/acknowledge",
            Some(json!({"by": "t"})),
            "operator",
        ),
        ("POST", "/api/v1/classification-rules", Some(rule), "editor"),
        (
            "PUT",
            "/api/v1/assets/10.0.0.1/role",
            Some(json!({"role": "database"})),
            "editor",
        ),
        ("GET", "/api/v1/users", None, "admin"),
        ("GET", "/api/v1/audit", None, "admin"),
        ("POST", "/api/v1/users", Some(user), "admin"),
    ];
    let rank = |r: &str| {
        ["viewer", "operator", "editor", "admin"]
            .iter()
            .position(|x| *x == r)
    };
    for (method, path, body, least) in &table {
        for (role, token) in &tokens {
            let (status, answer) = with_token(node.api, token, method, path, body.clone());
            if rank(role) >= rank(least) {
                assert!(
                    status != 403 && status != 401,
                    "{role} may {method} {path}, got {status}: {answer}"
                );
            } else {
                assert_eq!(status, 403, "{role} may not {method} {path}: {answer}");
                assert!(
                    answer["error"].as_str().is_some_and(|e| e.contains(least)),
                    "{answer}"
                );
            }
        }
    }
    // Nobody mints a token above their own role.
    let editor = &tokens[2].1;
    let (status, body) = with_token(
        node.api,
        editor,
        "POST",
        "/api/v1/tokens",
        Some(json!({"name": "escalate", "role": "admin"})),
    );
    assert_eq!(status, 400, "{body}");
    // The last admin stays.
    let (status, body) = node.send_json("DELETE", "/api/v1/users/admin1", &Value::Null);
    assert_eq!(status, 204, "{body}");
    let (status, body) = node.send_json("DELETE", "/api/v1/users/admin", &Value::Null);
    assert_eq!(status, 400, "{body}");
    // admin1's token died with its user.
    let (status, _) = with_token(node.api, &tokens[3].1, "GET", "/api/v1/assets", None);
    assert_eq!(status, 401);

    // The audit trail: sign-ins, changes and refusals, with who and from where.
    let (status, audit) = node.send_json("GET", "/api/v1/audit?limit=1000", &Value::Null);
    assert_eq!(status, 200, "{audit}");
    let items = audit["items"].as_array().expect("items");
    let has = |who: &str, method: &str, path: &str, status: u64| {
        items.iter().any(|i| {
            let e = &i["entry"];
            e["who"] == who
                && e["method"] == method
                && e["path"].as_str().is_some_and(|p| p.starts_with(path))
                && e["status"] == status
                && e["from"] == "127.0.0.1"
        })
    };
    assert!(has("editor1", "POST", "/api/v1/auth/login", 200), "{audit}");
    assert!(
        has("editor1", "POST", "/api/v1/classification-rules", 201),
        "{audit}"
    );
    assert!(
        has("viewer1", "POST", "/api/v1/classification-rules", 403),
        "{audit}"
    );
    assert!(has("operator1", "GET", "/api/v1/users", 403), "{audit}");
    assert!(
        has("admin", "DELETE", "/api/v1/users/admin1", 204),
        "{audit}"
    );
    assert!(
        has("admin", "DELETE", "/api/v1/users/admin", 400),
        "{audit}"
    );
    assert!(
        !audit.to_string().contains("first-password"),
        "no secret in the audit trail"
    );
}

#[test]
fn tokens_expire_and_revoke_and_floods_are_held_back() {
    let (_dir, node) = start(&[("FLOWLENS_AUTH__REQUESTS_PER_SECOND", "20")]);
    let (status, short) = node.send_json(
        "POST",
        "/api/v1/tokens",
        &json!({"name": "short-lived", "expires_in": "2s"}),
    );
    assert_eq!(status, 201, "{short}");
    let short_token = short["token"].as_str().expect("token").to_owned();
    let (status, _) = with_token(node.api, &short_token, "GET", "/api/v1/assets", None);
    assert_eq!(status, 200);
    let (status, long) = node.send_json("POST", "/api/v1/tokens", &json!({"name": "revoked"}));
    assert_eq!(status, 201, "{long}");
    // A body over 64 KiB is refused before it is read into anything.
    let huge = json!({"name": "x".repeat(100_000), "cidr": "10.0.0.0/8"});
    let (status, body) = node.send_json("POST", "/api/v1/classification-rules", &huge);
    assert_eq!(status, 413, "{body}");
    let long_token = long["token"].as_str().expect("token").to_owned();
    let id = long["credential"]["id"].as_str().expect("id").to_owned();
    let (_, mine) = node.send_json("GET", "/api/v1/tokens", &Value::Null);
    assert!(mine.to_string().contains("revoked") && !mine.to_string().contains(&long_token));
    let (status, _) = node.send_json("DELETE", &format!("/api/v1/tokens/{id}"), &Value::Null);
    assert_eq!(status, 204);
    let (status, body) = with_token(node.api, &long_token, "GET", "/api/v1/assets", None);
    assert_eq!(status, 401, "{body}");
    std::thread::sleep(Duration::from_millis(2_500));
    let (status, body) = with_token(node.api, &short_token, "GET", "/api/v1/assets", None);
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("expired")),
        "{body}"
    );
    let (status, body) = node.send_json(
        "POST",
        "/api/v1/tokens",
        &json!({"name": "forever", "expires_in": "10000d"}),
    );
    assert_eq!(status, 400, "{body}");
    // 20 requests a second, bursts of 40: a flood of 100 at once is partly refused.
    let refused = (0..100)
        .filter(|_| {
            http_send(node.api, "GET", "/api/v1/health/live", None).is_ok_and(|r| r.0 == 429)
        })
        .count();
    assert!(refused >= 40, "only {refused} of 100 refused");
}

#[test]
fn a_role_scoped_to_a_network_sees_only_what_touches_it() {
    let (_dir, node) = start(&[]);
    let (status, rule) = node.send_json(
        "POST",
        "/api/v1/alert-rules",
        &json!({"name": "every new dependency", "condition": {"on": "new_dependency"}}),
    );
    assert_eq!(status, 201, "{rule}");
    let flows = [
        tcp_flow("10.2.0.1", "10.1.0.10", 443, 1_000),
        tcp_flow("10.2.0.1", "10.3.0.10", 443, 2_000),
        tcp_flow("10.3.0.5", "10.3.0.10", 5432, 3_000),
    ];
    let [template, data] = ipfix_packets(&flows);
    node.send(&[&template, &data]);
    node.wait_until(|n| n.dependencies().len() == 3, "three dependencies");
    node.wait_until(
        |n| n.get("/api/v1/alerts").1["total"] == 3,
        "an alert per dependency",
    );
    let token = node.user_token("netops", "operator", &["10.1.0.0/16"]);
    let get = |path: &str| with_token(node.api, &token, "GET", path, None);
    let addresses = |v: &Value, key: &str| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.pointer(key).and_then(Value::as_str).map(str::to_owned))
            .collect()
    };

    // Its assets, the dependencies touching them, their flows, services and talkers.
    let (status, assets) = get("/api/v1/assets");
    assert_eq!(status, 200, "{assets}");
    assert_eq!(
        addresses(&assets["items"], "/ip"),
        ["10.1.0.10"],
        "{assets}"
    );
    assert_eq!(assets["total"], 1);
    assert_eq!(get("/api/v1/assets/10.1.0.10").0, 200);
    let (status, refused) = get("/api/v1/assets/10.3.0.10");
    assert_eq!(status, 403, "{refused}");
    assert!(refused.to_string().contains("10.1.0.0/16"), "{refused}");
    assert_eq!(get("/api/v1/assets/10.3.0.10/dependencies").0, 403);
    let (_, deps) = get("/api/v1/dependencies");
    assert_eq!(
        addresses(&deps["items"], "/key/client"),
        ["10.2.0.1"],
        "{deps}"
    );
    assert_eq!(deps["total"], 1);
    assert_eq!(
        get("/api/v1/dependencies/10.2.0.1%3E10.1.0.10:443/6").0,
        200
    );
    assert_eq!(
        get("/api/v1/dependencies/10.2.0.1%3E10.3.0.10:443/6").0,
        403
    );
    let (_, topology) = get("/api/v1/topology");
    let mut nodes = addresses(&topology["nodes"], "/asset/ip");
    nodes.sort();
    assert_eq!(nodes, ["10.1.0.10", "10.2.0.1"], "{topology}");
    assert_eq!(topology["edges"].as_array().map(Vec::len), Some(1));
    let (_, flows) = get("/api/v1/flows");
    assert_eq!(
        addresses(&flows["items"], "/dst_addr"),
        ["10.1.0.10"],
        "{flows}"
    );
    let (_, services) = get("/api/v1/services");
    assert_eq!(services["total"], 1, "{services}");
    let (_, talkers) = get("/api/v1/stats/top-talkers");
    assert_eq!(
        addresses(&talkers["destinations"], "/ip"),
        ["10.1.0.10"],
        "{talkers}"
    );
    assert_eq!(talkers["sources"], json!([]), "{talkers}");

    // Alerts about its network only; it may act on those.
    let (_, alerts) = get("/api/v1/alerts");
    assert_eq!(alerts["total"], 1, "{alerts}");
    let mine = alerts["items"][0]["id"]
        .as_str()
        .expect("alert id")
        .to_owned();
    let (_, all) = node.get("/api/v1/alerts");
    let other = all["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["id"].as_str())
        .find(|id| *id != mine)
        .expect("another alert")
        .to_owned();
    let ack = |id: &str| {
        with_token(
            node.api,
            &token,
            "POST",
            &format!("/api/v1/alerts/{id}/acknowledge"),
            None,
        )
        .0
    };
    assert_eq!(ack(&other), 403);
    assert_eq!(ack(&mine), 200);

    // What answers about every network is refused, and the refusal audited.
    for path in [
        "/api/v1/stats/throughput",
        "/api/v1/stats/protocols",
        "/api/v1/exporters",
        "/api/v1/history/events",
        "/api/v1/topology/diff?from=1h",
        "/api/v1/analysis/spof",
        "/api/v1/classification-rules",
        "/metrics",
    ] {
        let (status, body) = get(path);
        assert_eq!(status, 403, "{path}: {body}");
    }
    // The same user unscoped (by an admin) sees everything again.
    let (status, body) = node.send_json(
        "PUT",
        "/api/v1/users/netops",
        &json!({"role": "operator", "scope": []}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(get("/api/v1/assets").1["total"], 4);
    let (_, audit) = node.get("/api/v1/audit?limit=1000");
    assert!(
        audit.to_string().contains("is scoped to 10.1.0.0/16"),
        "{audit}"
    );
}
