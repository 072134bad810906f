//! Raft RPC over a real nats-server (Debian's `nats-server`, started on a free loopback port):
//! three nodes elect a leader and replicate every batch into equal projections, a stopped node
//! is Unreachable, and a node whose server task ends stops answering.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowlens_tests::NatsServer;
use openraft::{BasicNode, Raft};
use proto::event::{
    DependencyKey, EdgeStats, Event, EventBatch, EventKind, ServiceKey, TrafficDelta,
};
use tempfile::TempDir;

use super::super::history::History;
use super::super::log_store::LogStore;
use super::super::state_machine::StateMachine;
use super::super::tests::batches;
use super::super::{config, LogPayload, SEGMENT_BYTES};
use super::*;
use crate::store::Projection;

struct Member {
    raft: Raft<TypeConfig>,
    projection: Projection,
    server: JoinHandle<()>,
    _db: sled::Db,
    _dir: TempDir,
}

async fn member(url: &str, cluster: &str, id: u64) -> Member {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled::open(dir.path().join("store")).expect("sled");
    let projection = Projection::open(&db).expect("projection");
    let in_use = Arc::new(());
    let log =
        LogStore::open(&db, &dir.path().join("raft"), SEGMENT_BYTES, in_use.clone()).expect("log");
    let history = History::open(&dir.path().join("history")).expect("history");
    let sm = StateMachine::open(&db, projection.clone(), history, in_use).expect("state machine");
    let client = async_nats::connect(url).await.expect("connect");
    let network = NatsNetwork::new(client.clone(), cluster);
    let raft = Raft::new(
        id,
        Arc::new(config(super::super::Snapshots::default()).expect("config")),
        network,
        log,
        sm,
    )
    .await
    .expect("raft");
    let server = serve(client, cluster, id, raft.clone())
        .await
        .expect("serve");
    Member {
        raft,
        projection,
        server,
        _db: db,
        _dir: dir,
    }
}

/// Commits `batch` through `raft` (the leader) and returns its log index.
async fn commit(raft: &Raft<TypeConfig>, batch: &EventBatch) -> u64 {
    raft.client_write(LogPayload::encode(batch))
        .await
        .expect("commit")
        .log_id
        .index
}

/// Waits until every member has applied `last`, then checks their projections are equal and
/// hold assets.
async fn all_applied_and_equal(members: &[Member], last: u64) {
    for m in members {
        m.raft
            .wait(Some(Duration::from_secs(20)))
            .applied_index_at_least(Some(last), "replicated")
            .await
            .expect("applied");
    }
    let want = members[0].projection.contents().expect("contents");
    assert!(
        want.get("assets").is_some_and(|rows| !rows.is_empty()),
        "{want:?}"
    );
    for m in &members[1..] {
        assert_eq!(m.projection.contents().expect("contents"), want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_over_nats_elect_a_leader_and_replicate_every_batch() {
    let nats = NatsServer::start();
    let mut members = Vec::new();
    for id in 1..=3 {
        members.push(member(&nats.url(), "test", id).await);
    }
    let nodes: BTreeMap<u64, BasicNode> = (1..=3)
        .map(|id| (id, BasicNode::new(format!("node-{id}"))))
        .collect();
    members[0].raft.initialize(nodes).await.expect("initialize");
    let leader = members[0]
        .raft
        .wait(Some(Duration::from_secs(10)))
        .metrics(|m| m.current_leader.is_some(), "a leader")
        .await
        .expect("leader")
        .current_leader
        .expect("leader id");
    let on_leader = &members[(leader - 1) as usize].raft;
    let mut last = 0;
    for batch in batches() {
        last = commit(on_leader, &batch).await;
    }
    all_applied_and_equal(&members, last).await;

    // A follower stops answering (its subscription is gone): the leader still commits with
    // the other two, and a direct RPC to it reports Unreachable (no responders), not a hang.
    let follower = (1..=3).find(|&id| id != leader).expect("a follower");
    members[(follower - 1) as usize].server.abort();
    tokio::time::sleep(Duration::from_millis(200)).await;
    commit(on_leader, &batches()[0]).await;
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let mut network = NatsNetwork::new(client, "test");
    let mut peer = network.new_client(follower, &BasicNode::new("gone")).await;
    let vote = openraft::raft::VoteRequest::new(openraft::Vote::new(1, leader), None);
    let option = RPCOption::new(Duration::from_secs(2));
    let started = Instant::now();
    let e = peer.vote(vote, option).await.expect_err("no one answers");
    assert!(matches!(e, RPCError::Unreachable(_)), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no responders is immediate"
    );

    // While it is away the others commit more than one NATS message holds; back, it catches
    // up (the leader's AppendEntries are cut to what a message holds) and matches them.
    for round in 0..12u64 {
        let edges: Vec<EdgeStats> = (0..2000u64)
            .map(|i| EdgeStats {
                dependency: DependencyKey {
                    client: IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + i as u32)),
                    service: ServiceKey {
                        ip: IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1)),
                        port: 443,
                        protocol: 6,
                    },
                },
                traffic: TrafficDelta {
                    bytes_to_server: round * 1_000_003 + i,
                    flows: 1,
                    first_ms: 1_000,
                    last_ms: 2_000,
                    ..TrafficDelta::default()
                },
            })
            .collect();
        let batch = EventBatch::new(vec![Event {
            at_ms: 5_000 + round,
            kind: EventKind::DependencyTraffic { edges },
        }]);
        assert!(LogPayload::encode(&batch).as_bytes().len() > 100_000);
        last = commit(on_leader, &batch).await;
    }
    let back = &mut members[(follower - 1) as usize];
    let client = async_nats::connect(nats.url()).await.expect("connect");
    back.server = serve(client, "test", follower, back.raft.clone())
        .await
        .expect("serve");
    all_applied_and_equal(&members, last).await;
    for m in members {
        m.server.abort();
        let _ = m.raft.shutdown().await;
    }
}
