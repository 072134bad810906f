//! A cluster node on a NATS server that demands TLS and a user and password: the node connects
//! with the CA it is told to trust and its credentials, `flowlens admin` does too and initialises
//! it, and the same tool without the CA, or with a wrong password, is refused with a clear error.
//! The password is hidden in the node's configuration answer.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flowlens_tests::{free_tcp_port, free_udp_port, NodeProcess};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn admin(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flowlens"))
        .arg("admin")
        .args(args)
        .output()
        .expect("flowlens admin runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn nodes_and_tools_reach_a_tls_nats_with_credentials_and_others_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("cert");
    let (cert, key) = (dir.path().join("nats.pem"), dir.path().join("nats.key"));
    std::fs::write(&cert, certified.cert.pem()).expect("cert");
    std::fs::write(&key, certified.key_pair.serialize_pem()).expect("key");
    let port = free_tcp_port();
    let store = dir.path().join("js");
    let _server = Server(
        Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(&store)
            .args(["--tls", "--tlscert"])
            .arg(&cert)
            .arg("--tlskey")
            .arg(&key)
            .args(["--user", "flow", "--pass", "nats-secret-pass"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("tls://127.0.0.1:{port}");
    let ca = cert.to_string_lossy().into_owned();
    let env = [
        ("FLOWLENS_CLUSTER__NATS", url.as_str()),
        ("FLOWLENS_CLUSTER__NAME", "secure"),
        ("FLOWLENS_CLUSTER__SECURITY__TLS_CA", ca.as_str()),
        ("FLOWLENS_CLUSTER__SECURITY__USER", "flow"),
        ("FLOWLENS_CLUSTER__SECURITY__PASSWORD", "nats-secret-pass"),
        ("FLOWLENS_CLUSTER__SECURITY__REQUIRE_TLS", "true"),
    ];
    let bin = Path::new(env!("CARGO_BIN_EXE_flowlens"));
    let node = NodeProcess::start(
        bin,
        &dir.path().join("node"),
        free_tcp_port(),
        free_udp_port(),
        &[],
        &env,
    );
    let secure = [
        "--nats",
        url.as_str(),
        "--cluster",
        "secure",
        "--nats-tls-ca",
        ca.as_str(),
        "--nats-user",
        "flow",
        "--nats-password",
        "nats-secret-pass",
    ];
    let mut init = secure.to_vec();
    init.extend(["init", "--node", "1"]);
    let (ok, out) = admin(&init);
    assert!(ok && out.contains("node 1 initialised"), "{out}");
    node.wait_until(
        |n| n.get("/api/v1/health/ready").0 == 200,
        "ready over TLS NATS",
    );

    // Without the CA the server's certificate is not trusted; a wrong password is refused.
    let (ok, out) = admin(&[
        "--nats",
        &url,
        "--cluster",
        "secure",
        "--nats-user",
        "flow",
        "--nats-password",
        "nats-secret-pass",
        "status",
    ]);
    assert!(!ok && out.contains("cannot connect to NATS"), "{out}");
    let (ok, out) = admin(&[
        "--nats",
        &url,
        "--cluster",
        "secure",
        "--nats-tls-ca",
        &ca,
        "--nats-user",
        "flow",
        "--nats-password",
        "wrong",
        "status",
    ]);
    assert!(!ok && out.contains("cannot connect to NATS"), "{out}");
    let (ok, out) = admin(&["--nats", &url, "--nats-user", "flow", "status"]);
    assert!(
        !ok && out.contains("user and password go together"),
        "{out}"
    );

    let (_, about) = node.get("/api/v1/about");
    let security = &about["config"]["cluster"]["security"];
    assert_eq!(security["password"], "(hidden)", "{about}");
    assert_eq!(security["user"], "flow");
    assert!(!about.to_string().contains("nats-secret-pass"));
}
