//! HTTPS for the API: a node given a certificate and key serves the API and UI over TLS only,
//! a client trusting that certificate gets answers, session cookies are `Secure`, plain HTTP
//! gets nothing, and a certificate without its key stops the node with an error naming the key.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowlens_tests::{free_tcp_port, free_udp_port, http_send, test_token};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

#[test]
fn the_api_serves_https_with_its_certificate_and_secure_session_cookies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("cert file");
    std::fs::File::create(&key)
        .and_then(|mut f| f.write_all(certified.key_pair.serialize_pem().as_bytes()))
        .expect("key file");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).expect("trusted");
    let roots = Arc::new(roots);

    let bin = env!("CARGO_BIN_EXE_flowlens");
    let api = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    let udp = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
    let data = dir.path().join("data");
    let mut child = Command::new(bin)
        .args(["node", "--data-dir"])
        .arg(&data)
        .args([
            "--api-listen",
            &api.to_string(),
            "--listen",
            &udp.to_string(),
        ])
        .env("FLOWLENS_API__TLS_CERT", &cert)
        .env("FLOWLENS_API__TLS_KEY", &key)
        .env("FLOWLENS_AUTH__BOOTSTRAP_TOKEN", test_token())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("flowlens starts");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = runtime.block_on(https(
            api,
            roots.clone(),
            "GET",
            "/api/v1/health/ready",
            "",
            "",
        ));
        if ready.as_ref().is_some_and(|r| r.0 == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "not ready over HTTPS: {ready:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
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
    let _ = child.kill();
    let _ = child.wait();

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
