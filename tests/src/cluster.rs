//! A three-node cluster of real `flowlens node` processes over one real nats-server, joined
//! with `flowlens admin`, and the flow streams and checks the cluster tests and the fault bench
//! share: rounds of flows with one dependency each (so a missing flow is a missing or short
//! dependency), and waits for agreement and for a new leader that measure how long they took.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use proto::FlowRecord;
use serde_json::Value;
use tempfile::TempDir;

use crate::{free_tcp_port, free_udp_port, https_flow, ipfix_packets, NatsServer, NodeProcess};

/// The cluster name every member and `flowlens admin` use.
pub const CLUSTER: &str = "itest";

/// Dependency id → (bytes to server, bytes to client), as [`NodeProcess::dependencies`] gives.
pub type Want = BTreeMap<String, (u64, u64)>;

/// One member: its process (none while it is down) and its data directory.
pub struct Member {
    /// The running process.
    pub node: Option<NodeProcess>,
    bin: PathBuf,
    env: Vec<(&'static str, &'static str)>,
    /// Its Raft node id.
    pub id: u64,
    api_port: u16,
    udp_port: u16,
    dir: TempDir,
}

impl Member {
    /// Starts member `id` of [`CLUSTER`] (`bin node`) with the `FLOWLENS_…` settings in `env`.
    ///
    /// # Panics
    /// When no temporary directory can be made or the node does not start.
    pub fn start(
        bin: &Path,
        id: u64,
        nats: &NatsServer,
        env: &[(&'static str, &'static str)],
    ) -> Member {
        let mut m = Member {
            node: None,
            bin: bin.to_path_buf(),
            env: env.to_vec(),
            id,
            api_port: free_tcp_port(),
            udp_port: free_udp_port(),
            dir: tempfile::tempdir().expect("tempdir"),
        };
        m.restart(nats);
        m
    }

    /// Starts the member's process again, on the same ports and data.
    pub fn restart(&mut self, nats: &NatsServer) {
        let id = self.id.to_string();
        let url = nats.url();
        let args = ["--cluster", CLUSTER, "--node-id", &id, "--nats", &url];
        self.node = Some(NodeProcess::start(
            &self.bin,
            self.dir.path(),
            self.api_port,
            self.udp_port,
            &args,
            &self.env,
        ));
    }

    /// Its data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The running process.
    ///
    /// # Panics
    /// When the member is down.
    pub fn node(&self) -> &NodeProcess {
        self.node.as_ref().expect("member is running")
    }
}

/// Runs `bin admin` against the cluster; its stdout, or a panic with its stderr.
pub fn admin(bin: &Path, nats: &NatsServer, args: &[&str]) -> String {
    crate::flowlens_admin(bin, &nats.url(), CLUSTER, args)
}

/// Starts three members with the `FLOWLENS_…` settings in `env` and joins them with
/// `flowlens admin`: member 1 leads. Returns once every member is ready.
pub fn three_node_cluster(
    bin: &Path,
    nats: &NatsServer,
    env: &[(&'static str, &'static str)],
) -> Vec<Member> {
    let members: Vec<Member> = (1..=3)
        .map(|id| Member::start(bin, id, nats, env))
        .collect();
    admin(bin, nats, &["init", "--node", "1"]);
    admin(bin, nats, &["add-node", "2"]);
    admin(bin, nats, &["add-node", "3"]);
    for m in &members {
        m.node()
            .wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
    }
    members
}

/// A node's liveness answer (its id and Raft state among others).
pub fn status_of(node: &NodeProcess) -> Value {
    node.get("/api/v1/health/live").1
}

/// The flows of round `r` of a stream: 5 dependencies of their own, clients 10.<site>.<r>.x.
pub fn round_flows(site: u8, r: u8) -> Vec<FlowRecord> {
    (0..5u8)
        .map(|x| {
            let bytes = 100 * u64::from(r) + u64::from(x) + 1;
            https_flow([10, site, r, x], [10, site, 255, x], bytes)
        })
        .collect()
}

/// What a set of HTTPS flows must become on the map.
pub fn expected_of(flows: &[FlowRecord]) -> Want {
    let mut want = Want::new();
    for f in flows {
        let e: &mut (u64, u64) = want
            .entry(format!("{}>{}:443/6", f.src_addr, f.dst_addr))
            .or_default();
        e.0 += f.bytes;
    }
    want
}

/// Sends `rounds` rounds of flows, one every 40 ms, to the collectors at `targets` (round r to
/// target r % n, from site 100 + that index); returns every flow sent.
pub fn stream(targets: Vec<SocketAddr>, rounds: u8) -> JoinHandle<Vec<FlowRecord>> {
    std::thread::spawn(move || {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut sent = Vec::new();
        for r in 0..rounds {
            let i = usize::from(r) % targets.len();
            let flows = round_flows(100 + i as u8, r);
            for packet in ipfix_packets(&flows) {
                socket.send_to(&packet, targets[i]).expect("send");
            }
            sent.extend(flows);
            std::thread::sleep(Duration::from_millis(40));
        }
        sent
    })
}

/// How far `got` is from `want`: dependencies missing, short, over or not expected.
pub fn misses(want: &Want, got: &Want) -> usize {
    let wrong = want.iter().filter(|(k, v)| got.get(*k) != Some(v)).count();
    wrong + got.keys().filter(|k| !want.contains_key(*k)).count()
}

/// The members' running processes.
pub fn running(members: &[Member]) -> Vec<&NodeProcess> {
    members.iter().filter_map(|m| m.node.as_ref()).collect()
}

/// Waits up to `limit` until every node's projection holds exactly `want`. Returns how long
/// that took, or the largest number of [`misses`] on one node when it never did.
pub fn settle(nodes: &[&NodeProcess], want: &Want, limit: Duration) -> Result<Duration, usize> {
    let started = Instant::now();
    loop {
        let worst = nodes
            .iter()
            .map(|n| misses(want, &n.dependencies()))
            .max()
            .unwrap_or(0);
        if worst == 0 {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= limit {
            return Err(worst);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// [`settle`] within 30 s, or a panic showing what differs.
///
/// # Panics
/// When some member's projection still differs from `want` after 30 s.
pub fn wait_all_equal(members: &[Member], want: &Want) {
    let nodes = running(members);
    if let Err(worst) = settle(&nodes, want, Duration::from_secs(30)) {
        let got: Vec<Want> = nodes.iter().map(|n| n.dependencies()).collect();
        panic!("projections differ from the flows sent after 30 s ({worst} misses):\nwant {want:?}\ngot {got:?}");
    }
}

/// Waits up to 20 s until a running member other than `not` leads; its id and how long it took.
pub fn new_leader(members: &[Member], not: u64) -> Result<(u64, Duration), String> {
    let started = Instant::now();
    loop {
        for n in running(members) {
            let h = status_of(n);
            if h["raft_state"] == "Leader" && h["node_id"].as_u64() != Some(not) {
                return Ok((h["node_id"].as_u64().unwrap_or(0), started.elapsed()));
            }
        }
        if started.elapsed() > Duration::from_secs(20) {
            return Err(format!("no new leader 20 s after leader {not} went away"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
