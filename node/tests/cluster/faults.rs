//! Fault scenarios on a real three-node cluster, each reporting what was lost (it must be
//! nothing committed: every flow's bytes are exact on every node) and how long recovery took:
//! a leader frozen with SIGSTOP past the election timeout and then resumed, and a follower
//! killed mid-stream and restarted.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::{
    admin, expected_of, status_of, stream, three_node_cluster, wait_all_equal, NatsServer,
};

/// Sends `signal` (`STOP`, `CONT`) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

#[test]
fn a_frozen_leader_is_replaced_and_rejoins_as_a_follower_losing_nothing() {
    let nats = NatsServer::start();
    let members = three_node_cluster(&nats);
    let targets = vec![members[1].node().udp, members[2].node().udp];
    let sender = stream(targets, 100);
    std::thread::sleep(Duration::from_millis(1_500));
    let frozen = members[0].node().pid();
    signal(frozen, "STOP");
    // The others elect a leader among themselves (the frozen one cannot answer).
    let started = Instant::now();
    let leader = loop {
        let leading = members[1..]
            .iter()
            .map(|m| status_of(m.node()))
            .find(|h| h["raft_state"] == "Leader");
        if let Some(h) = leading {
            break h["node_id"].as_u64().unwrap_or(0);
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no leader 20 s after node 1 froze"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    eprintln!("fault: leader frozen; node {leader} leads after {took:?}");
    // Frozen well past the election timeout while flows go on, then resumed.
    std::thread::sleep(Duration::from_secs(3));
    signal(frozen, "CONT");
    let resumed = Instant::now();
    let sent = sender.join().expect("sender");
    let want = expected_of(&sent);
    wait_all_equal(&members, &want);
    eprintln!(
        "fault: node 1 resumed and agrees with the others {:?} later; {} flows, none lost",
        resumed.elapsed(),
        sent.len()
    );
    assert_eq!(status_of(members[0].node())["raft_state"], "Follower");
    let status = admin(&nats, &["status"]);
    assert!(
        status.contains(&format!("leader {leader}, voters [1, 2, 3]")),
        "{status}"
    );
}

#[test]
fn a_killed_follower_misses_nothing_once_restarted() {
    let nats = NatsServer::start();
    let mut members = three_node_cluster(&nats);
    // Flows go to the leader and the surviving follower while node 3 is down.
    let targets = vec![members[0].node().udp, members[1].node().udp];
    let sender = stream(targets, 100);
    std::thread::sleep(Duration::from_millis(1_000));
    if let Some(follower) = members[2].node.take() {
        follower.kill9();
    }
    let sent = sender.join().expect("sender");
    let want = expected_of(&sent);
    wait_all_equal(&members, &want);
    let restarted = Instant::now();
    members[2].restart(&nats);
    wait_all_equal(&members, &want);
    eprintln!(
        "fault: follower killed; restarted, it caught up in {:?}; {} flows, none lost",
        restarted.elapsed(),
        sent.len()
    );
    assert_eq!(status_of(members[2].node())["raft_state"], "Follower");
}
