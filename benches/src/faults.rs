//! The fault scenarios of the fault bench (`cargo xtask bench faults`), each on real processes
//! (three `flowlens node`s over a real nats-server, or one node and a real exporter socket) and
//! each reporting what it lost and how long recovery took: a killed leader, a killed follower,
//! a leader frozen with SIGSTOP past the election timeout, a restarted nats-server, a full disk
//! (a real tmpfs filled up), an exporter restarting with new templates and sequence numbers,
//! and an exporter clock jumping a day. Loss is counted on the map: every flow of a stream has
//! a dependency of its own, so a lost, doubled or short flow is a dependency that is missing,
//! over or short on some node.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use flowlens_tests::cluster::{
    expected_of, new_leader, round_flows, running, settle, status_of, stream, three_node_cluster,
    Want,
};
use flowlens_tests::{free_tcp_port, free_udp_port, ipfix_packets, NatsServer, NodeProcess};
use proto::FlowRecord;

mod exporter;

/// How big each scenario's stream is.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Rounds of 5 flows, one round every 40 ms.
    pub rounds: u8,
    /// How long every node gets to agree after the stream ends.
    pub settle: Duration,
}

/// What one run of a scenario measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The scenario's name.
    pub scenario: &'static str,
    /// Flows sent.
    pub flows: usize,
    /// Flows lost (or doubled, or short) on the worst node once it settled: must be 0.
    pub lost: usize,
    /// Time from the fault (or its end) until new flows reached every running node's map.
    pub recovery: Duration,
    /// What else was seen, in words.
    pub detail: String,
}

/// A scenario: its name, what it does, and its run.
pub type Scenario = (
    &'static str,
    &'static str,
    fn(&Path, Scale) -> Result<Outcome, String>,
);

/// Every scenario, in the order the bench runs them.
pub const SCENARIOS: [Scenario; 7] = [
    (
        "kill-leader",
        "kill -9 the leader mid-stream, restart it later",
        kill_leader,
    ),
    (
        "kill-follower",
        "kill -9 a follower mid-stream, restart it",
        kill_follower,
    ),
    (
        "freeze-leader",
        "SIGSTOP the leader for 3 s (past the election timeout), SIGCONT",
        freeze_leader,
    ),
    (
        "restart-nats",
        "kill nats-server mid-stream for 1.5 s, start it again",
        restart_nats,
    ),
    (
        "disk-full",
        "fill the data disk (a tmpfs) below the free-space floor, free it",
        disk_full,
    ),
    (
        "exporter-restart",
        "an exporter restarts: another layout under its template id, sequence from 0",
        exporter::restart,
    ),
    (
        "clock-jump",
        "an exporter's clock jumps a day ahead, then a day back",
        exporter::clock_jump,
    ),
];

/// Sends `kill -<signal>` to `pid`.
fn signal(pid: u32, signal: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .map_err(|e| format!("kill: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or(format!("kill -{signal} {pid} failed"))
}

/// A probe sent: one flow of its own, and when it went.
struct Probe {
    flow: FlowRecord,
    sent: Instant,
}

impl Probe {
    /// Sends flow `n` of site 99 to `to`.
    fn send(to: &NodeProcess, n: u8) -> Probe {
        let flow = round_flows(99, n)[0];
        let sent = Instant::now();
        to.send(
            &ipfix_packets(&[flow])
                .iter()
                .map(Vec::as_slice)
                .collect::<Vec<_>>(),
        );
        Probe { flow, sent }
    }

    /// Waits until the probe is on every node's map, at most until `limit` after it was sent;
    /// how long after it was sent it got there, or `None`.
    fn reached(&self, nodes: &[&NodeProcess], limit: Duration) -> Option<Duration> {
        let want = expected_of(&[self.flow]);
        loop {
            let all = nodes.iter().all(|node| {
                let got = node.dependencies();
                want.iter().all(|(k, v)| got.get(k) == Some(v))
            });
            if all {
                return Some(self.sent.elapsed());
            }
            if self.sent.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The stream's flows plus the probes, and the worst node's loss once settled.
fn final_loss(
    nodes: &[&NodeProcess],
    sent: &[FlowRecord],
    probes: &[FlowRecord],
    scale: Scale,
) -> (Want, usize) {
    let all: Vec<FlowRecord> = sent.iter().chain(probes).copied().collect();
    let want = expected_of(&all);
    let lost = settle(nodes, &want, scale.settle).err().unwrap_or(0);
    (want, lost)
}

/// How long to let the stream run before the fault: a third of it.
fn before_fault(scale: Scale) -> Duration {
    Duration::from_millis(40 * u64::from(scale.rounds) / 3)
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// [`Probe::reached`] within 30 s, or why not.
fn probe_time(probe: &Probe, nodes: &[&NodeProcess]) -> Result<Duration, String> {
    probe
        .reached(nodes, Duration::from_secs(30))
        .ok_or_else(|| "the probe flow sent after the fault never reached every node".to_string())
}

fn kill_leader(bin: &Path, scale: Scale) -> Result<Outcome, String> {
    let nats = NatsServer::start();
    let mut members = three_node_cluster(bin, &nats, &[]);
    // Flows stream into the two followers, which forward their batches to the leader.
    let sender = stream(
        vec![members[1].node().udp, members[2].node().udp],
        scale.rounds,
    );
    std::thread::sleep(before_fault(scale));
    if let Some(leader) = members[0].node.take() {
        leader.kill9();
    }
    let probe = Probe::send(members[1].node(), 0);
    let (leader, elected) = new_leader(&members, 1)?;
    let recovery = probe_time(&probe, &running(&members))?;
    // The about answer shows the dead member as unreachable, and why.
    let (_, about) = members[leader as usize - 1].node().get("/api/v1/about");
    let dead = &about["members"][0];
    if dead["id"] != 1
        || !dead["health"].is_null()
        || !dead["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot connect"))
    {
        return Err(format!("the dead leader is not shown unreachable: {about}"));
    }
    let sent = sender.join().map_err(|_| "the sender panicked")?;
    let (want, lost) = final_loss(&running(&members), &sent, &[probe.flow], scale);
    // The old leader comes back after missing all that, and catches up from the log.
    members[0].restart(&nats);
    let caught_up = settle(&running(&members), &want, scale.settle);
    Ok(Outcome {
        scenario: "kill-leader",
        flows: sent.len() + 1,
        lost: lost.max(caught_up.err().unwrap_or(0)),
        recovery,
        detail: format!(
            "node {leader} led {} after the kill; the old leader, restarted, caught up in {}",
            ms(elected),
            caught_up.map_or("never".into(), ms)
        ),
    })
}

fn kill_follower(bin: &Path, scale: Scale) -> Result<Outcome, String> {
    let nats = NatsServer::start();
    let mut members = three_node_cluster(bin, &nats, &[]);
    // Flows go to the leader and the surviving follower while node 3 is down.
    let sender = stream(
        vec![members[0].node().udp, members[1].node().udp],
        scale.rounds,
    );
    std::thread::sleep(before_fault(scale));
    if let Some(follower) = members[2].node.take() {
        follower.kill9();
    }
    let probe = Probe::send(members[1].node(), 0);
    let recovery = probe_time(&probe, &running(&members))?;
    let sent = sender.join().map_err(|_| "the sender panicked")?;
    let (want, lost) = final_loss(&running(&members), &sent, &[probe.flow], scale);
    members[2].restart(&nats);
    let caught_up = settle(&running(&members), &want, scale.settle);
    let state = status_of(members[2].node())["raft_state"].clone();
    if state != "Follower" {
        return Err(format!("the restarted follower is {state}"));
    }
    Ok(Outcome {
        scenario: "kill-follower",
        flows: sent.len() + 1,
        lost: lost.max(caught_up.err().unwrap_or(0)),
        recovery,
        detail: format!(
            "down for the rest of the stream; restarted, it caught up in {}",
            caught_up.map_or("never".into(), ms)
        ),
    })
}

fn freeze_leader(bin: &Path, scale: Scale) -> Result<Outcome, String> {
    let nats = NatsServer::start();
    let members = three_node_cluster(bin, &nats, &[]);
    let sender = stream(
        vec![members[1].node().udp, members[2].node().udp],
        scale.rounds,
    );
    std::thread::sleep(before_fault(scale));
    let frozen = members[0].node().pid();
    signal(frozen, "STOP")?;
    // The others elect a leader among themselves (the frozen one cannot answer): the probe
    // goes to them only.
    let others = &members[1..];
    let probe = Probe::send(others[0].node(), 0);
    let elected = new_leader(others, 1);
    // Frozen for 3 s, well past the election timeout, while flows go on; the probe should be
    // on the others' maps before then.
    let early = probe.reached(&running(others), Duration::from_secs(3));
    std::thread::sleep(Duration::from_secs(3).saturating_sub(probe.sent.elapsed()));
    signal(frozen, "CONT")?;
    let resumed = Instant::now();
    let (leader, elected) = elected?;
    let recovery = match early {
        Some(t) => t,
        None => probe_time(&probe, &running(others))?,
    };
    let sent = sender.join().map_err(|_| "the sender panicked")?;
    let (_, lost) = final_loss(&running(&members), &sent, &[probe.flow], scale);
    let rejoined = resumed.elapsed();
    let state = status_of(members[0].node())["raft_state"].clone();
    if state != "Follower" {
        return Err(format!("the resumed leader is {state}, not a follower"));
    }
    Ok(Outcome {
        scenario: "freeze-leader",
        flows: sent.len() + 1,
        lost,
        recovery,
        detail: format!(
            "node {leader} led {} after the freeze; node 1, resumed after 3 s, a follower again \
             and equal to the others once the stream ended ({} after it resumed)",
            ms(elected),
            ms(rejoined)
        ),
    })
}

fn restart_nats(bin: &Path, scale: Scale) -> Result<Outcome, String> {
    let mut nats = NatsServer::start();
    let members = three_node_cluster(bin, &nats, &[]);
    let targets: Vec<_> = members.iter().map(|m| m.node().udp).collect();
    let sender = stream(targets, scale.rounds);
    std::thread::sleep(before_fault(scale));
    nats.kill();
    std::thread::sleep(Duration::from_millis(1_500));
    nats.restart();
    // Flows that reached a node while NATS was down are committed once it is back.
    let probe = Probe::send(members[0].node(), 0);
    let recovery = probe_time(&probe, &running(&members))?;
    let sent = sender.join().map_err(|_| "the sender panicked")?;
    let (_, lost) = final_loss(&running(&members), &sent, &[probe.flow], scale);
    let leaders = members
        .iter()
        .filter(|m| status_of(m.node())["raft_state"] == "Leader")
        .count();
    if leaders != 1 {
        return Err(format!("{leaders} leaders after nats-server came back"));
    }
    Ok(Outcome {
        scenario: "restart-nats",
        flows: sent.len() + 1,
        lost,
        recovery,
        detail: "down 1.5 s; recovery counted from its restart; one leader after".into(),
    })
}

/// A tmpfs mounted for the length of a scenario, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, mib: u64) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cannot mount a tmpfs for the full disk (needs root): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Waits up to `limit` for `ok`; how long it took.
fn wait(limit: Duration, mut ok: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if ok() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn disk_full(bin: &Path, scale: Scale) -> Result<Outcome, String> {
    const MIB: u64 = 1 << 20;
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    let disk = Tmpfs::mount(&root.path().join("disk"), 512)?;
    let data = disk.0.join("data");
    let floor = (128 * MIB).to_string();
    let env = [("FLOWLENS_RETENTION__MIN_FREE_BYTES", floor.as_str())];
    let node = NodeProcess::start(bin, &data, free_tcp_port(), free_udp_port(), &[], &env);
    let metric = |name: &str| crate::ingest::metric(node.api, name);
    wait(Duration::from_secs(30), || {
        node.get("/api/v1/health/ready").0 == 200
    })
    .ok_or("the node on the tmpfs never became ready")?;
    // Fill the disk to 64 MiB free: below the floor.
    let fill = disk.0.join("fill");
    // Measured as the node's disk guard measures it.
    let free = node::housekeeping::free_bytes(&disk.0)
        .ok_or(format!("no free space known for {}", disk.0.display()))?;
    let file = std::fs::File::create(&fill).map_err(|e| e.to_string())?;
    let chunk = vec![0u8; MIB as usize];
    {
        use std::io::Write as _;
        let mut w = std::io::BufWriter::new(file);
        for _ in 0..free.saturating_sub(64 * MIB) / MIB {
            w.write_all(&chunk)
                .map_err(|e| format!("filling the disk: {e}"))?;
        }
        w.flush().map_err(|e| e.to_string())?;
    }
    let held = wait(Duration::from_secs(30), || metric("flowlens_raw_held") == 1)
        .ok_or("raw writes were not held with the disk full")?;
    // Flows while the disk is full: the map takes them all, the raw tier holds them back.
    let sent = stream(vec![node.udp], scale.rounds / 2)
        .join()
        .map_err(|_| "the sender panicked")?;
    let guarded = wait(Duration::from_secs(30), || {
        metric("flowlens_raw_guarded_flows_total") >= sent.len() as u64
    });
    let written = metric("flowlens_raw_flows_written_total");
    let one = [&node];
    let (mut want, lost) = final_loss(&one, &sent, &[], scale);
    // Space comes back: raw writes resume, and new flows are written.
    std::fs::remove_file(&fill).map_err(|e| e.to_string())?;
    let resumed = wait(Duration::from_secs(30), || metric("flowlens_raw_held") == 0)
        .ok_or("raw writes did not resume once space was freed")?;
    let probe = Probe::send(&node, 0);
    probe_time(&probe, &one)?;
    let rewritten = wait(Duration::from_secs(30), || {
        metric("flowlens_raw_flows_written_total") > written
    })
    .ok_or("no raw flow was written after space came back")?;
    want.extend(expected_of(&[probe.flow]));
    let lost = lost.max(settle(&one, &want, scale.settle).err().unwrap_or(0));
    Ok(Outcome {
        scenario: "disk-full",
        flows: sent.len() + 1,
        lost,
        recovery: resumed,
        detail: format!(
            "raw writes held {} after the fill; {} flows sent while full all on the map, {} \
             kept off disk (by design); writes resumed {} after space was freed, a new flow on \
             disk {} after",
            ms(held),
            sent.len(),
            if guarded.is_some() { "all" } else { "not all" },
            ms(resumed),
            ms(rewritten)
        ),
    })
}
