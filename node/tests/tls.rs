//! HTTPS for the API: a node given a certificate and key serves the API and UI over TLS only,
//! a client trusting that certificate gets answers, session cookies are `Secure`, plain HTTP
//! gets nothing, and a certificate without its key stops the node with an error naming the key.
//! In a cluster over TLS, the cluster page asks each member over HTTPS at its advertised
//! address.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowlens_tests::{free_tcp_port, free_udp_port, http_send, test_token, NatsServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

/// One HTTPS request: (status, head, body); `None` when the exchange fails.
async fn https(
    api: SocketAddr,
    roots: Arc<rustls::RootCertStore>,
    method: &str,
    path: &str,
    extra: &str,
    body: &str,
) -> Option<(u16, String, String)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(api).await.ok()?;
    let name = rustls::pki_types::ServerName::try_from("localhost").ok()?;
    let mut tls = connector.connect(name, tcp).await.ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    // A server may close without TLS close_notify; what arrived is the answer.
    let _ = tls.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, head.to_owned(), body.to_owned()))
}

/// A self-signed certificate for `localhost` and 127.0.0.1 in `dir`: (cert file, key file,
/// roots trusting it).
fn certificate(dir: &Path) -> (PathBuf, PathBuf, Arc<rustls::RootCertStore>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("cert");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("cert file");
    std::fs::File::create(&key)
        .and_then(|mut f| f.write_all(certified.key_pair.serialize_pem().as_bytes()))
        .expect("key file");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).expect("trusted");
    (cert, key, Arc::new(roots))
}

/// A node serving HTTPS with `cert` and `key`, killed when dropped.
struct TlsNode {
    child: Child,
    api: SocketAddr,
}

impl Drop for TlsNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a node in `data` serving HTTPS at `api`, with `args` and `env` added.
fn start_tls(
    data: &Path,
    (cert, key): (&Path, &Path),
    api: SocketAddr,
    args: &[&str],
    env: &[(&str, &str)],
) -> TlsNode {
    let udp = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
    let child = Command::new(env!("CARGO_BIN_EXE_flowlens"))
        .args(["node", "--data-dir"])
        .arg(data)
        .args([
            "--api-listen",
            &api.to_string(),
            "--listen",
            &udp.to_string(),
        ])
        .args(args)
        .env("FLOWLENS_API__TLS_CERT", cert)
        .env("FLOWLENS_API__TLS_KEY", key)
        .env("FLOWLENS_AUTH__BOOTSTRAP_TOKEN", test_token())
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .spawn()
        .expect("flowlens starts");
    TlsNode { child, api }
}

/// Waits up to 30 s for `path` to answer 200 over HTTPS (with the test token).
fn wait_for(runtime: &Runtime, node: &TlsNode, roots: &Arc<rustls::RootCertStore>, path: &str) {
    let bearer = format!("Authorization: Bearer {}\r\n", test_token());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = runtime.block_on(https(node.api, roots.clone(), "GET", path, &bearer, ""));
        if answer.as_ref().is_some_and(|r| r.0 == 200) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} not 200 over HTTPS: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_api_serves_https_with_its_certificate_and_secure_session_cookies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key, roots) = certificate(dir.path());
    let bin = env!("CARGO_BIN_EXE_flowlens");
    let data = dir.path().join("data");
    let api = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    let node = start_tls(&data, (&cert, &key), api, &[], &[]);
    let runtime = Runtime::new().expect("runtime");
    wait_for(&runtime, &node, &roots, "/api/v1/health/ready");
    let bearer = format!("Authorization: Bearer {}\r\n", test_token());
    let assets = runtime.block_on(https(
        api,
        roots.clone(),
        "GET",
        "/api/v1/assets",
        &bearer,
        "",
    ));
    assert_eq!(assets.as_ref().map(|a| a.0), Some(200), "{assets:?}");
    // Signing in over HTTPS gives a Secure cookie.
    let password = std::fs::read_to_string(data.join("initial-admin-password")).expect("password");
    let login = serde_json::json!({"user": "admin", "password": password.trim()}).to_string();
    let answer = runtime
        .block_on(https(
            api,
            roots.clone(),
            "POST",
            "/api/v1/auth/login",
            "",
            &login,
        ))
        .expect("login answer");
    assert_eq!(answer.0, 200, "{answer:?}");
    assert!(
        answer
            .1
            .to_ascii_lowercase()
            .contains("httponly; samesite=strict; max-age=43200; secure"),
        "{}",
        answer.1
    );
    // Plain HTTP on the same port gets no HTTP answer.
    let plain = http_send(api, "GET", "/api/v1/health/live", None);
    assert!(plain.as_ref().map_or(true, |p| p.0 == 0), "{plain:?}");
    drop(node);

    // A certificate without its key is refused at start, naming the key.
    let out = Command::new(bin)
        .args(["node", "--data-dir"])
        .arg(dir.path().join("other"))
        .args(["--api-listen", "127.0.0.1:0"])
        .env("FLOWLENS_API__TLS_CERT", &cert)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("api.tls_cert and api.tls_key go together"),
        "{stderr}"
    );
}

#[test]
fn a_tls_clusters_page_asks_each_member_over_https_at_its_advertised_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key, roots) = certificate(dir.path());
    let nats = NatsServer::start();
    let url = nats.url();
    let runtime = Runtime::new().expect("runtime");
    let nodes: Vec<TlsNode> = (1..=2)
        .map(|id| {
            let api = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
            let advertise = api.to_string();
            let id = id.to_string();
            let args = ["--cluster", "tls", "--node-id", &id, "--nats", &url];
            start_tls(
                &dir.path().join(format!("node-{id}")),
                (&cert, &key),
                api,
                &args,
                &[("FLOWLENS_API__ADVERTISE", &advertise)],
            )
        })
        .collect();
    for node in &nodes {
        wait_for(&runtime, node, &roots, "/api/v1/health/live");
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_flowlens"));
    let admin = |args: &[&str]| flowlens_tests::flowlens_admin(bin, &url, "tls", args);
    admin(&["init", "--node", "1"]);
    admin(&["add-node", "2"]);
    wait_for(&runtime, &nodes[1], &roots, "/api/v1/health/ready");

    // The follower's cluster page reaches the leader over HTTPS, at the address it advertised.
    let bearer = format!("Authorization: Bearer {}\r\n", test_token());
    let deadline = Instant::now() + Duration::from_secs(30);
    let about = loop {
        let answer = runtime.block_on(https(
            nodes[1].api,
            roots.clone(),
            "GET",
            "/api/v1/about",
            &bearer,
            "",
        ));
        let about: serde_json::Value = answer
            .as_ref()
            .and_then(|a| serde_json::from_str(&a.2).ok())
            .unwrap_or_default();
        let members = about["members"].as_array().cloned().unwrap_or_default();
        if members.len() == 2 && members.iter().all(|m| m["health"].is_object()) {
            break about;
        }
        assert!(
            Instant::now() < deadline,
            "members not all healthy: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let leader = &about["members"][0];
    assert_eq!(leader["id"], 1, "{about}");
    assert_eq!(leader["addr"], nodes[0].api.to_string(), "{about}");
    assert_eq!(leader["health"]["raft_state"], "Leader", "{about}");
    assert!(leader["error"].is_null(), "{about}");
}
