//! `cargo xtask fuzz-api [seconds]`: property-based fuzzing of the REST API from its own
//! OpenAPI document with schemathesis (PyPI, installed into a venv under
//! `~/.cache/flowlens-tools/schemathesis`), against a freshly built node signed in as an admin
//! token, failing on any 5xx answer (`not_a_server_error`). 300 s by default.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::process::{self, Step};

/// The schemathesis release the command installs.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// A node killed when dropped.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::Prerequisite(format!("no free loopback port: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::Prerequisite(e.to_string()))?
        .port();
    Ok(port)
}

/// The status of a GET of `path`, or 0.
fn status(api: SocketAddr, path: &str) -> u16 {
    let ask = || -> std::io::Result<u16> {
        let mut s = TcpStream::connect_timeout(&api, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n"
        )?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        Ok(text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0))
    };
    ask().unwrap_or(0)
}

/// Makes sure `st` runs from the tools venv; returns its path.
fn ensure_schemathesis() -> Result<std::path::PathBuf> {
    let venv = process::tools_root()?.join("schemathesis");
    let st = venv.join("bin").join("st");
    if process::is_executable(&st) {
        return Ok(st);
    }
    Step::new("create a Python venv for schemathesis", "python3")
        .args(["-m", "venv"])
        .arg(venv.to_string_lossy())
        .run()
        .map_err(|e| {
            Error::Prerequisite(format!(
                "{e}\npython3 with venv is needed: sudo apt-get install -y python3-venv"
            ))
        })?;
    Step::new(
        "install schemathesis",
        venv.join("bin").join("pip").to_string_lossy(),
    )
    .args(["install", "--quiet", SCHEMATHESIS])
    .run()?;
    Ok(st)
}

/// One schemathesis run against the node at `api` for `seconds`, with the 5xx check only.
fn st_run(st: &Path, api: SocketAddr, token: &str, seconds: u64) -> Step {
    Step::new(
        &format!("schemathesis for {seconds} s"),
        st.to_string_lossy(),
    )
    .arg("run")
    .arg(format!("http://{api}/api/v1/openapi.json"))
    .args(["--url", &format!("http://{api}")])
    .args(["--header", &format!("Authorization: Bearer {token}")])
    .args(["--checks", "not_a_server_error", "--workers", "2"])
    .args(["--max-time", &seconds.to_string()])
    // The event stream never ends; logging out would end the fuzzer's own session.
    .args(["--exclude-path", "/api/v1/events/stream"])
    .args(["--exclude-path", "/api/v1/auth/logout"])
}

/// Builds the node, starts it, and runs schemathesis against it for `args[0]` seconds.
pub fn run(args: &[String]) -> Result<()> {
    let seconds: u64 = match args.first() {
        None => 300,
        Some(s) => s
            .parse()
            .map_err(|e| Error::Usage(format!("fuzz-api: seconds must be a number: {e}")))?,
    };
    let st = ensure_schemathesis()?;
    let target_dir = process::ensure_target_dir()?;
    let binary = process::build_flowlens(&target_dir, false)?;
    let data = std::env::temp_dir().join(format!("flowlens-fuzz-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let api = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let udp = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let token = format!("fl_fuzz-api-{}-{}", std::process::id(), api.port());
    let token = format!("{token:_<40}");
    let node = Node(
        Command::new(&binary)
            .args(["node", "--data-dir"])
            .arg(&data)
            .args([
                "--api-listen",
                &api.to_string(),
                "--listen",
                &udp.to_string(),
            ])
            .env("FLOWLENS_AUTH__BOOTSTRAP_TOKEN", &token)
            .env("FLOWLENS_AUTH__REQUESTS_PER_SECOND", "100000")
            .env("FLOWLENS_AUTH__LOGIN_ATTEMPTS_PER_MINUTE", "100000")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| Error::Prerequisite(format!("cannot start the node: {e}")))?,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(api, "/api/v1/health/ready") != 200 {
        if Instant::now() > deadline {
            return Err(Error::Prerequisite(
                "the node did not become ready in 30 s".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Changing or deleting users and revoking tokens can take the fuzzer's own admin token
    // away (another admin it created may disable this one): those run last, on their own.
    let own = ["/api/v1/users/{name}", "/api/v1/tokens/{id}"];
    let mut first = st_run(&st, api, &token, seconds - seconds / 5);
    for path in own {
        first = first.args(["--exclude-path", path]);
    }
    let mut last = st_run(&st, api, &token, (seconds / 5).max(1));
    for path in own {
        last = last.args(["--include-path", path]);
    }
    let outcome = first.run().and_then(|()| last.run());
    drop(node);
    let _ = std::fs::remove_dir_all(Path::new(&data));
    outcome
}
