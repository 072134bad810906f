//! A real `flowlens node` process driven over its REST API and UDP collector, for the
//! end-to-end and cluster tests.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{http_get_auth, http_send_auth, test_token};

/// A running `flowlens node`, killed on drop.
#[derive(Debug)]
pub struct NodeProcess {
    child: Child,
    /// Its API address.
    pub api: SocketAddr,
    /// Its UDP collector address.
    pub udp: SocketAddr,
}

impl NodeProcess {
    /// Starts `bin node` on loopback ports `api_port` (API) and `udp_port` (collector) with data
    /// in `data`, flushing and committing every few hundred ms (as tests want), plus `args` and
    /// the `FLOWLENS_…` settings in `env`. Returns once the API answers `/health/live`.
    ///
    /// # Panics
    /// When the process cannot start or its API does not answer within 30 s.
    pub fn start(
        bin: &Path,
        data: &Path,
        api_port: u16,
        udp_port: u16,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> NodeProcess {
        let api = SocketAddr::from(([127, 0, 0, 1], api_port));
        let udp = SocketAddr::from(([127, 0, 0, 1], udp_port));
        let child = Command::new(bin)
            .args(["node", "--data-dir"])
            .arg(data)
            .args([
                "--api-listen",
                &api.to_string(),
                "--listen",
                &udp.to_string(),
            ])
            .args(args)
            .env("FLOWLENS_AGGREGATOR__FLUSH_INTERVAL", "100ms")
            .env("FLOWLENS_GRAPH__STATS_INTERVAL", "200ms")
            .env("RUST_LOG", "warn")
            .env("FLOWLENS_AUTH__BOOTSTRAP_TOKEN", test_token())
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("flowlens starts");
        let node = NodeProcess { child, api, udp };
        node.wait_until(|n| n.get("/api/v1/health/live").0 == 200, "live");
        node
    }

    /// GETs `path` from the API as the test admin: (status, JSON body or Null); status 0 when
    /// it does not answer.
    pub fn get(&self, path: &str) -> (u16, Value) {
        match http_get_auth(self.api, path) {
            Ok((status, body)) => (status, serde_json::from_str(&body).unwrap_or(Value::Null)),
            Err(_) => (0, Value::Null),
        }
    }

    /// Sends `body` as JSON with `method` to `path` as the test admin: (status, JSON answer or
    /// Null).
    ///
    /// # Panics
    /// When the API cannot be reached.
    pub fn send_json(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let (status, text) =
            http_send_auth(self.api, method, path, Some(&body.to_string())).expect("API reachable");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A new user `name` with `role` and `scope` (networks or `site:NAME`), created by the test
    /// admin, signed in with its one-time password, that password replaced, and an API token
    /// issued in its name: the token.
    ///
    /// # Panics
    /// When any step is refused.
    pub fn user_token(&self, name: &str, role: &str, scope: &[&str]) -> String {
        let first = format!("{name}-first-password");
        let (status, body) = self.send_json(
            "POST",
            "/api/v1/users",
            &serde_json::json!({"name": name, "password": first, "role": role, "scope": scope}),
        );
        assert_eq!(status, 201, "{body}");
        let login = serde_json::json!({"user": name, "password": first}).to_string();
        let (status, head, text) =
            crate::http_exchange_head(self.api, "POST", "/api/v1/auth/login", Some(&login), "")
                .expect("login");
        assert_eq!(status, 200, "{text}");
        let cookie = head
            .lines()
            .find_map(|l| {
                let (key, value) = l.split_once(':')?;
                key.eq_ignore_ascii_case("set-cookie").then(|| {
                    value
                        .trim()
                        .split(';')
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                })
            })
            .expect("a session cookie");
        let csrf = serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)["csrf"]
            .as_str()
            .expect("csrf")
            .to_owned();
        let session = format!("Cookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\n");
        let change =
            serde_json::json!({"current": first, "new": format!("{name}-second-password")});
        let (status, text) = crate::http_exchange(
            self.api,
            "POST",
            "/api/v1/auth/password",
            Some(&change.to_string()),
            &session,
        )
        .expect("password");
        assert_eq!(status, 204, "{text}");
        let token = serde_json::json!({"name": format!("{name} tests")}).to_string();
        let (status, text) =
            crate::http_exchange(self.api, "POST", "/api/v1/tokens", Some(&token), &session)
                .expect("token");
        assert_eq!(status, 201, "{text}");
        let issued: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(issued["credential"]["role"], role, "{issued}");
        issued["token"].as_str().expect("token").to_owned()
    }

    /// Every dependency in the node's projection (active or not): id → (bytes to server,
    /// bytes to client); empty when the API does not answer.
    pub fn dependencies(&self) -> std::collections::BTreeMap<String, (u64, u64)> {
        let (_, body) = self.get("/api/v1/dependencies?limit=10000&status=all");
        body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| {
                let n = |k: &str| d[k].as_u64().unwrap_or(0);
                let id = d["id"].as_str().unwrap_or_default().to_owned();
                (id, (n("bytes_to_server"), n("bytes_to_client")))
            })
            .collect()
    }

    /// Waits up to 30 s for `ok`.
    ///
    /// # Panics
    /// When `ok` stays false, naming `what` and showing the node's dependencies.
    pub fn wait_until(&self, mut ok: impl FnMut(&NodeProcess) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if ok(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let (_, deps) = self.get("/api/v1/dependencies?limit=10000&status=all");
        panic!(
            "node {} did not become {what} in 30 s; dependencies: {deps}",
            self.api
        );
    }

    /// Sends each payload as one UDP datagram to the collector.
    ///
    /// # Panics
    /// When the socket cannot be bound or a send fails.
    pub fn send(&self, payloads: &[&[u8]]) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        for p in payloads {
            socket.send_to(p, self.udp).expect("send");
            // Loopback drops nothing, but a burst can outrun a debug build's receive buffer.
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// The process id (to signal it: `SIGSTOP` freezes it as a hung node would be).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the process with SIGTERM and returns how it exited.
    ///
    /// # Panics
    /// When the process cannot be waited for.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().expect("node exits")
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
