//! Tests of the event log: replay, restart, openraft's storage suite, corrupted payloads.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, EntryPayload, LogId, StorageError};
use proto::event::{
    DependencyKey, EdgeStats, Event, EventBatch, EventKind, ServiceKey, TrafficDelta,
};
use tempfile::TempDir;

use super::log_store::LogStore;
use super::state_machine::StateMachine;
use super::*;

fn v4(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, d))
}

fn dep(client: IpAddr, server: IpAddr, port: u16) -> DependencyKey {
    DependencyKey {
        client,
        service: ServiceKey {
            ip: server,
            port,
            protocol: 6,
        },
    }
}

fn traffic(bytes: u64, first_ms: u64) -> TrafficDelta {
    TrafficDelta {
        bytes_to_server: bytes,
        bytes_to_client: bytes * 3,
        packets_to_server: bytes / 100 + 1,
        packets_to_client: bytes / 50 + 1,
        flows: 2,
        first_ms,
        last_ms: first_ms + 9_000,
    }
}

/// Batches covering every kind of event, with traffic on several edges and expiries.
pub(super) fn batches() -> Vec<EventBatch> {
    let web = v4(10);
    let db = v4(20);
    let v6 = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 5));
    let https = dep(v4(1), web, 443);
    let pg = dep(web, db, 5432);
    let dns = dep(v6, v4(53), 53);
    let ev = |at_ms, kind| Event { at_ms, kind };
    vec![
        EventBatch::new(vec![
            ev(
                1_000,
                EventKind::AssetDiscovered {
                    ip: v4(1),
                    internal: true,
                },
            ),
            ev(
                1_000,
                EventKind::AssetDiscovered {
                    ip: web,
                    internal: true,
                },
            ),
            ev(
                1_001,
                EventKind::AssetDiscovered {
                    ip: db,
                    internal: true,
                },
            ),
            ev(
                1_002,
                EventKind::AssetDiscovered {
                    ip: v6,
                    internal: false,
                },
            ),
        ]),
        EventBatch::new(vec![
            ev(
                2_000,
                EventKind::ServiceDiscovered {
                    service: https.service,
                    name: Some("https".into()),
                },
            ),
            ev(
                2_000,
                EventKind::ServiceDiscovered {
                    service: pg.service,
                    name: Some("postgresql".into()),
                },
            ),
            ev(
                2_001,
                EventKind::ServiceDiscovered {
                    service: dns.service,
                    name: None,
                },
            ),
            ev(2_002, EventKind::DependencyDiscovered { dependency: https }),
            ev(2_002, EventKind::DependencyDiscovered { dependency: pg }),
            ev(2_003, EventKind::DependencyDiscovered { dependency: dns }),
        ]),
        EventBatch::new(vec![ev(
            10_000,
            EventKind::DependencyTraffic {
                edges: vec![
                    EdgeStats {
                        dependency: https,
                        traffic: traffic(12_000, 1_500),
                    },
                    EdgeStats {
                        dependency: pg,
                        traffic: traffic(800, 1_600),
                    },
                    EdgeStats {
                        dependency: dns,
                        traffic: traffic(90, 0),
                    },
                ],
            },
        )]),
        EventBatch::new(vec![ev(
            20_000,
            EventKind::DependencyTraffic {
                edges: vec![
                    EdgeStats {
                        dependency: https,
                        traffic: traffic(5_000, 11_000),
                    },
                    EdgeStats {
                        dependency: pg,
                        traffic: traffic(300, 12_000),
                    },
                ],
            },
        )]),
        EventBatch::new(vec![
            ev(90_000, EventKind::DependencyExpired { dependency: dns }),
            ev(
                90_000,
                EventKind::ServiceExpired {
                    service: dns.service,
                },
            ),
            ev(90_001, EventKind::AssetExpired { ip: v6 }),
        ]),
        EventBatch::new(Vec::new()),
        EventBatch::new(vec![ev(
            95_000,
            EventKind::AssetDiscovered {
                ip: v6,
                internal: false,
            },
        )]),
    ]
}

/// Opens the event log of a node whose data directory is `dir`: sled in `dir/store`, the log in
/// `dir/raft`, as the node lays them out.
async fn open(dir: &Path) -> (sled::Db, EventLog) {
    // A log just shut down may still be dropping its last task's handle on the store (and so
    // sled's file lock) for a moment.
    let mut tries = 0;
    let db = loop {
        match sled::open(dir.join("store")) {
            Ok(db) => break db,
            Err(e) if tries < 100 && e.to_string().contains("could not acquire lock") => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    let projection = Projection::open(&db).unwrap();
    let log = EventLog::open(
        &db,
        &dir.join("raft"),
        projection,
        1,
        Start::Solo {
            addr: "127.0.0.1:7000".into(),
        },
        Snapshots::default(),
        SoloNetwork,
    )
    .await
    .unwrap();
    (db, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_log_into_an_empty_store_gives_an_identical_projection() {
    let dir = TempDir::new().unwrap();
    let (_db, log) = open(&dir.path().join("live")).await;
    let mut indexes = Vec::new();
    for batch in batches() {
        indexes.push(log.append(&batch).await.unwrap());
    }
    assert!(indexes.windows(2).all(|w| w[0] < w[1]), "{indexes:?}");
    assert_eq!(log.applied_index(), *indexes.last().unwrap());

    let entries = log.entries().unwrap();
    let committed: Vec<EventBatch> = entries.iter().filter_map(|(_, b)| b.clone()).collect();
    assert_eq!(committed, batches());
    let first = entries.first().unwrap().0;
    assert!(entries
        .iter()
        .map(|(i, _)| *i)
        .eq(first..first + entries.len() as u64));

    let replay_db = sled::open(dir.path().join("replay")).unwrap();
    let replay = Projection::open(&replay_db).unwrap();
    for (index, batch) in &entries {
        replay.apply(*index, batch.as_ref(), &[]).unwrap();
    }
    let live = log.projection().contents().unwrap();
    assert_eq!(replay.contents().unwrap(), live);
    // Five assets: the four discovered and the DNS server, known from traffic only.
    assert_eq!(log.projection().counts().expect("counts"), (5, 3, 3));
    assert!(
        live.values().filter(|items| !items.is_empty()).count() >= 4,
        "{live:?}"
    );
    let https = log
        .projection()
        .dependency(&dep(v4(1), v4(10), 443))
        .unwrap()
        .unwrap();
    assert_eq!(https.bytes_to_server, 17_000);
    log.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_batches_survive_a_restart() {
    let dir = TempDir::new().unwrap();
    let all = batches();
    let (last, before, metrics) = {
        let (_db, log) = open(dir.path()).await;
        let mut last = 0;
        for batch in &all[..4] {
            last = log.append(batch).await.unwrap();
        }
        assert_eq!(log.applied_index(), last);
        let before = log.projection().contents().unwrap();
        let metrics = log.metrics();
        log.shutdown().await.unwrap();
        (last, before, metrics)
    };
    assert_eq!(metrics.current_leader, Some(1));

    let (_db, log) = open(dir.path()).await;
    assert!(log.applied_index() >= last);
    assert_eq!(log.projection().contents().unwrap(), before);
    // A single voter with a committed vote leads again at once, possibly in the same term.
    let after = log.metrics();
    assert_eq!(after.current_leader, Some(1));
    assert!(after.current_term >= metrics.current_term);

    let mut next = last;
    for batch in &all[4..] {
        let index = log.append(batch).await.unwrap();
        assert!(index > next, "{index} after {next}");
        next = index;
    }
    let committed: Vec<EventBatch> = log
        .entries()
        .unwrap()
        .into_iter()
        .filter_map(|(_, b)| b)
        .collect();
    assert_eq!(committed, all);
    log.shutdown().await.unwrap();
}

const ABORT_DIR: &str = "FLOWLENS_TEST_RAFT_ABORT_DIR";

/// Run twice: the child (given a directory) appends and acknowledges batches, then aborts like
/// kill -9, without shutdown or flush; the parent reopens the log, finds them all, and the
/// recovered projection equals a replay. (A process kill keeps what was written to the OS; the
/// fdatasync before `append`'s callback is for power loss, which a test cannot simulate.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_batches_survive_an_abort() {
    if let Ok(dir) = std::env::var(ABORT_DIR) {
        let (_db, log) = open(Path::new(&dir)).await;
        for batch in batches() {
            println!("acknowledged {}", log.append(&batch).await.unwrap());
        }
        std::process::abort();
    }
    let dir = TempDir::new().unwrap();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "raft::tests::acknowledged_batches_survive_an_abort",
        ])
        .args(["--nocapture", "--test-threads=1"])
        .env(ABORT_DIR, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "the child aborts: {stdout}");
    let acknowledged: Vec<u64> = stdout
        .lines()
        .filter_map(|l| l.split_once("acknowledged ")?.1.trim().parse().ok())
        .collect();
    assert_eq!(acknowledged.len(), batches().len(), "{stdout}");

    let (_db, log) = open(dir.path()).await;
    assert!(log.applied_index() >= *acknowledged.last().unwrap());
    let entries = log.entries().unwrap();
    let committed: Vec<EventBatch> = entries.iter().filter_map(|(_, b)| b.clone()).collect();
    assert_eq!(committed, batches());
    let replay_db = sled::open(dir.path().join("replay")).unwrap();
    let replay = Projection::open(&replay_db).unwrap();
    for (index, batch) in &entries {
        replay.apply(*index, batch.as_ref(), &[]).unwrap();
    }
    assert_eq!(
        replay.contents().unwrap(),
        log.projection().contents().unwrap()
    );
    log.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_payload_is_an_error_not_a_panic() {
    let garbage = LogPayload::from_bytes(vec![0xde, 0xad, 0xbe, 0xef, 1, 2, 3]);
    assert!(garbage.decode().is_err());

    // The state machine refuses it with a storage error and applies nothing.
    let dir = TempDir::new().unwrap();
    let db = sled::open(dir.path().join("sm")).unwrap();
    let projection = Projection::open(&db).unwrap();
    let history = History::open(&dir.path().join("history")).unwrap();
    let mut sm = StateMachine::open(&db, projection.clone(), history, Arc::new(())).unwrap();
    let good = LogEntry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), 1),
        payload: EntryPayload::Normal(LogPayload::encode(&batches()[0])),
    };
    let bad = LogEntry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), 2),
        payload: EntryPayload::Normal(garbage.clone()),
    };
    let err = sm.apply([good, bad]).await.unwrap_err();
    assert!(err.to_string().contains("invalid event batch"), "{err}");
    let (applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(applied.map(|id| id.index), Some(1));

    // Through Raft: the write fails, Raft stops, reading the log reports the bad entry.
    let (_db, log) = open(&dir.path().join("log")).await;
    log.append(&batches()[0]).await.unwrap();
    assert!(log.raft.client_write(garbage).await.is_err());
    assert!(matches!(log.entries(), Err(LogError::Decode { .. })));
    assert!(log.append(&batches()[1]).await.is_err());
    let _ = log.shutdown().await;
}

/// Builds a fresh log store (segment files of at most 128 bytes: about two entries each, so the
/// suite crosses segment boundaries) and state machine in a temporary directory for openraft's
/// suite.
struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = TempDir::new().unwrap();
        let db = sled::open(dir.path().join("store")).unwrap();
        let projection = Projection::open(&db).unwrap();
        let in_use = Arc::new(());
        let log = LogStore::open(&db, &dir.path().join("raft"), 128, in_use.clone()).unwrap();
        let history = History::open(&dir.path().join("history")).unwrap();
        let sm = StateMachine::open(&db, projection, history, in_use).unwrap();
        Ok((dir, log, sm))
    }
}

#[test]
fn the_log_store_and_state_machine_pass_openraft_s_storage_suite() {
    Suite::<TypeConfig, LogStore, StateMachine, Builder, TempDir>::test_all(Builder).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_committed_twice_with_one_origin_is_applied_once() {
    let dir = TempDir::new().unwrap();
    let (_db, log) = open(dir.path()).await;
    let https = dep(v4(1), v4(10), 443);
    let batch = EventBatch::new(vec![Event {
        at_ms: 1_000,
        kind: EventKind::DependencyTraffic {
            edges: vec![EdgeStats {
                dependency: https,
                traffic: traffic(500, 1_000),
            }],
        },
    }]);
    let body = batch.to_rkyv();
    let origin = |boot, seq| Origin { node: 7, boot, seq };
    let bytes = || {
        log.projection()
            .dependency(&https)
            .unwrap()
            .unwrap()
            .bytes_to_server
    };
    // A leader that died after committing, and the retry that followed: one batch, twice.
    let write = |o| log.raft().client_write(LogPayload::with_origin(o, &body));
    write(origin(1, 1)).await.unwrap();
    assert_eq!(bytes(), 500);
    write(origin(1, 1)).await.unwrap();
    assert_eq!(bytes(), 500, "the retry is applied once");
    // The next batch of the run, and the first of the node's next run, are new.
    write(origin(1, 2)).await.unwrap();
    assert_eq!(bytes(), 1_000);
    write(origin(2, 1)).await.unwrap();
    assert_eq!(bytes(), 1_500);
    // Batches the log's own append commits carry an origin too, and both apply.
    log.append(&batch).await.unwrap();
    log.append(&batch).await.unwrap();
    assert_eq!(bytes(), 2_500);
    let entries = log.entries().unwrap();
    assert_eq!(entries.iter().filter(|(_, b)| b.is_some()).count(), 6);
    log.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_keeps_every_applied_entry_and_catches_up_from_the_log() {
    let dir = TempDir::new().unwrap();
    let (db, log) = open(dir.path()).await;
    for batch in batches() {
        log.append(&batch).await.unwrap();
    }
    let entries = log.entries().unwrap();
    assert_eq!(log.history().entries().unwrap(), entries);
    log.shutdown().await.unwrap();
    drop((db, log));

    // A store from before the history (or a crash between applying and keeping): on open, the
    // history takes what it lacks from the Raft log.
    std::fs::remove_dir_all(dir.path().join("history")).unwrap();
    let (_db, log) = open(dir.path()).await;
    let history = log.history().entries().unwrap();
    assert_eq!(history[..entries.len()], entries[..]);
    log.append(&batches()[0]).await.unwrap();
    assert_eq!(log.history().entries().unwrap(), log.entries().unwrap());
    log.shutdown().await.unwrap();
}

#[test]
fn checkpoints_thin_to_one_per_slot_and_pruning_makes_the_newest_old_enough_the_base() {
    let dir = TempDir::new().unwrap();
    let history = History::open(&dir.path().join("history")).unwrap();
    let entries: Vec<LogEntry> = (0..=30)
        .map(|i| LogEntry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), i),
            payload: EntryPayload::Blank,
        })
        .collect();
    history.record(&entries).unwrap();
    history.keep_checkpoints_every(1_000);
    // A checkpoint every 400 ms from t = 10 s: entries 1..=20.
    for i in 1..=20u64 {
        history.checkpoint(i, 10_000 + i * 400, &[i as u8]).unwrap();
    }
    let kept: Vec<u64> = (1..=20)
        .filter(|i| {
            let name = format!("{i:020}-{}.snap", 10_000 + i * 400);
            dir.path().join("history/checkpoints").join(name).is_file()
        })
        .collect();
    // The newest 8 (13..=20), and before them the first of each second: 10.4 s (1), 11.2 s
    // (3), 12.0 s (5), 13.2 s (8) and 14.0 s (10).
    assert_eq!(kept, vec![1, 3, 5, 8, 10, 13, 14, 15, 16, 17, 18, 19, 20]);

    // Nothing old enough: no change.
    assert_eq!(history.prune_before(10_000).unwrap(), None);
    // The newest checkpoint taken by 13.5 s (entry 8, taken 13.2 s) becomes the base.
    assert_eq!(history.prune_before(13_500).unwrap(), Some((8, 13_200)));
    assert_eq!(history.base_point().unwrap(), Some((8, 13_200)));
    assert_eq!(history.base().unwrap().unwrap().data, vec![8]);
    let starts = history.start_for(20_000).unwrap().unwrap();
    assert_eq!(
        starts.index, 20,
        "replays still start from the newest checkpoint"
    );
    assert!(matches!(
        history.start_for(13_000).unwrap(),
        Some(b) if b.index == 8
    ));
    // Checkpoints at or before the base are gone.
    assert!(!dir
        .path()
        .join("history/checkpoints")
        .join(format!("{:020}-11200.snap", 3))
        .exists());
    // Again with the same cutoff: nothing newer is old enough.
    assert_eq!(history.prune_before(13_500).unwrap(), None);
    assert!(history.disk_bytes() > 0);
}
