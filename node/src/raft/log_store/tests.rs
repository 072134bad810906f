//! Tests of the file log: reopening, torn tails, damage, rotation, truncate, purge, migration.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use openraft::storage::RaftLogStorageExt;
use openraft::{CommittedLeaderId, EntryPayload};
use tempfile::TempDir;

use super::*;
use crate::raft::LogPayload;

/// Bytes of one test record: 8 header + 26 entry header + 16 payload.
const RECORD: u64 = 50;
/// A segment size that holds two test records.
const TINY: u64 = 128;

fn id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn entry_in(term: u64, index: u64) -> LogEntry {
    LogEntry {
        log_id: id(term, index),
        payload: EntryPayload::Normal(LogPayload::from_bytes(vec![index as u8; 16])),
    }
}

fn entries(indexes: impl IntoIterator<Item = u64>) -> Vec<LogEntry> {
    indexes.into_iter().map(|i| entry_in(1, i)).collect()
}

fn open(dir: &Path, segment_bytes: u64) -> std::result::Result<LogStore, LogFileError> {
    Ok(LogStore {
        log: FileLog::open(dir, segment_bytes)?,
        _in_use: Arc::new(()),
    })
}

async fn append(store: &mut LogStore, batch: Vec<LogEntry>) {
    store.blocking_append(batch).await.unwrap();
}

/// Appends entries one per batch: with [`TINY`] segments, two to a segment.
async fn append_each(store: &mut LogStore, batch: Vec<LogEntry>) {
    for entry in batch {
        append(store, vec![entry]).await;
    }
}

async fn read_all(store: &mut LogStore) -> Vec<LogEntry> {
    store.try_get_log_entries(..).await.unwrap()
}

/// The segment file names, oldest first.
fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".seg"))
        .collect();
    names.sort();
    names
}

fn seg(first: u64) -> String {
    format!("log-{first:020}.seg")
}

/// What both the reopen and the migration scenarios leave: entries 3..=7 (1..=2 purged),
/// 6 committed, and a committed vote of `term` by node 1.
async fn assert_kept(store: &mut LogStore, term: u64, what: &str) {
    assert_eq!(read_all(store).await, entries(3..=7), "{what}");
    assert_eq!(
        store.read_vote().await.unwrap(),
        Some(Vote::new_committed(term, 1)),
        "{what}"
    );
    assert_eq!(
        store.read_committed().await.unwrap(),
        Some(id(1, 6)),
        "{what}"
    );
    assert_eq!(
        store.get_log_state().await.unwrap(),
        LogState {
            last_purged_log_id: Some(id(1, 2)),
            last_log_id: Some(id(1, 7)),
        },
        "{what}"
    );
}

/// Flips one byte of a file.
fn flip(path: &Path, at: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at as usize] ^= 0x55;
    fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn reopening_keeps_entries_vote_committed_and_last_purged() {
    let dir = TempDir::new().unwrap();
    {
        let mut store = open(dir.path(), TINY).unwrap();
        append(&mut store, entries(1..=4)).await;
        append(&mut store, entries(5..=7)).await;
        store.save_committed(Some(id(1, 6))).await.unwrap();
        store.purge(id(1, 2)).await.unwrap();
        store.save_vote(&Vote::new_committed(3, 1)).await.unwrap();
    }
    let mut store = open(dir.path(), TINY).unwrap();
    assert_kept(&mut store, 3, "reopened").await;
}

#[tokio::test]
async fn a_saved_committed_id_reaches_the_meta_file_within_a_second() {
    let dir = TempDir::new().unwrap();
    let mut store = open(dir.path(), TINY).unwrap();
    append(&mut store, entries(1..=3)).await;
    store.save_committed(Some(id(1, 2))).await.unwrap();
    store.save_committed(Some(id(1, 3))).await.unwrap();
    assert_eq!(meta::load(dir.path()).unwrap(), None, "not written at once");
    tokio::time::sleep(COMMITTED_DELAY + Duration::from_millis(500)).await;
    let saved = meta::load(dir.path()).unwrap().unwrap();
    assert_eq!(saved.committed, Some(id(1, 3)), "written within a second");
    let wait = COMMITTED_DELAY + Duration::from_millis(500);

    // A store dropped (or closed) before its delayed write leaves the file alone: the write
    // could otherwise land over the file of a newer opening.
    store.save_committed(Some(id(1, 4))).await.unwrap();
    drop(store);
    let mut store = open(dir.path(), TINY).unwrap();
    assert_eq!(store.read_committed().await.unwrap(), Some(id(1, 3)));
    tokio::time::sleep(wait).await;
    let saved = meta::load(dir.path()).unwrap().unwrap();
    assert_eq!(saved.committed, Some(id(1, 3)));

    store.save_committed(Some(id(1, 5))).await.unwrap();
    store.log().close().unwrap();
    let saved = meta::load(dir.path()).unwrap().unwrap();
    assert_eq!(saved.committed, Some(id(1, 5)), "close writes at once");
    store.save_committed(Some(id(1, 6))).await.unwrap();
    tokio::time::sleep(wait).await;
    let saved = meta::load(dir.path()).unwrap().unwrap();
    assert_eq!(saved.committed, Some(id(1, 5)));
}

/// Damage done to a log of entries 1..=5 in one segment, and the entries left after reopening.
fn damage_tail(path: &Path, how: &str) -> u64 {
    let len = fs::metadata(path).unwrap().len();
    let mut file = OpenOptions::new().append(true).open(path).unwrap();
    match how {
        "cut mid-entry" => file.set_len(len - 10).unwrap(),
        "cut mid-header" => file.set_len(len - RECORD + 4).unwrap(),
        "crc mismatch in the last record" => flip(path, len - 3),
        "garbage appended" => file.write_all(b"\xde\xad\xbe\xef garbage").unwrap(),
        "short garbage appended" => file.write_all(b"\x01\x02\x03").unwrap(),
        "zeros appended" => file.write_all(&[0; 4096]).unwrap(),
        _ => unreachable!("{how}"),
    }
    match how {
        "garbage appended" | "short garbage appended" | "zeros appended" => 5,
        _ => 4,
    }
}

#[tokio::test]
async fn a_torn_tail_is_cut_on_reopen_and_appends_continue_after_it() {
    for how in [
        "cut mid-entry",
        "cut mid-header",
        "crc mismatch in the last record",
        "garbage appended",
        "short garbage appended",
        "zeros appended",
    ] {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join(seg(1));
        {
            let mut store = open(dir.path(), SEGMENT_BYTES).unwrap();
            append(&mut store, entries(1..=5)).await;
        }
        let kept = damage_tail(&path, how);

        let mut store = open(dir.path(), SEGMENT_BYTES).unwrap();
        assert_eq!(read_all(&mut store).await, entries(1..=kept), "{how}");
        assert_eq!(fs::metadata(&path).unwrap().len(), kept * RECORD, "{how}");
        assert_eq!(
            store.get_log_state().await.unwrap().last_log_id,
            Some(id(1, kept)),
            "{how}"
        );
        let next = vec![entry_in(2, kept + 1), entry_in(2, kept + 2)];
        append(&mut store, next.clone()).await;
        drop(store);

        let mut store = open(dir.path(), SEGMENT_BYTES).unwrap();
        let mut want = entries(1..=kept);
        want.extend(next);
        assert_eq!(read_all(&mut store).await, want, "{how}");
    }
}

#[tokio::test]
async fn a_damaged_record_before_the_tail_is_an_error_naming_file_and_offset() {
    let dir = TempDir::new().unwrap();
    {
        let mut store = open(dir.path(), TINY).unwrap();
        append_each(&mut store, entries(1..=5)).await;
    }
    assert_eq!(segment_files(dir.path()), [seg(1), seg(3), seg(5)]);

    // The last record of a closed segment: not the log's tail.
    let closed = dir.path().join(seg(3));
    flip(&closed, RECORD + 40);
    let err = open(dir.path(), TINY).err().unwrap();
    match &err {
        LogFileError::Corrupt {
            path,
            offset,
            source: RecordError::Crc { .. },
        } => assert_eq!((path, *offset), (&closed, RECORD)),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains(&seg(3)), "{err}");
    assert!(err.to_string().contains("byte 50"), "{err}");
    flip(&closed, RECORD + 40);

    // A record followed by a good one in the last segment: not the tail either.
    {
        let mut store = open(dir.path(), TINY).unwrap();
        append(&mut store, entries(6..=6)).await;
    }
    let last = dir.path().join(seg(5));
    flip(&last, 30);
    assert!(matches!(
        open(dir.path(), TINY),
        Err(LogFileError::Corrupt { offset: 0, .. })
    ));
    flip(&last, 30);

    // Damage done while the log is open is found when the entry is read.
    let mut store = open(dir.path(), TINY).unwrap();
    flip(&dir.path().join(seg(1)), RECORD + 45);
    assert!(store.try_get_log_entries(1..2).await.is_ok());
    let err = store.try_get_log_entries(2..4).await.unwrap_err();
    assert!(err.to_string().contains("crc32"), "{err}");
}

#[tokio::test]
async fn segments_rotate_and_reads_cross_their_boundaries() {
    let dir = TempDir::new().unwrap();
    let mut store = open(dir.path(), TINY).unwrap();
    append(&mut store, entries(1..=2)).await;
    append(&mut store, entries(3..=3)).await;
    append(&mut store, entries(4..=4)).await;
    // A batch is one write: it goes whole into a new segment, even past the segment size.
    append(&mut store, entries(5..=9)).await;
    append(&mut store, entries(10..=10)).await;
    assert_eq!(segment_files(dir.path()), [seg(1), seg(3), seg(5), seg(10)]);
    for (first, records) in [(1, 2), (3, 2), (5, 5), (10, 1)] {
        let len = fs::metadata(dir.path().join(seg(first))).unwrap().len();
        assert_eq!(len, records * RECORD, "{}", seg(first));
    }
    assert_eq!(
        store.try_get_log_entries(2..8).await.unwrap(),
        entries(2..8)
    );
    assert_eq!(
        store.try_get_log_entries(4..=5).await.unwrap(),
        entries(4..=5)
    );
    assert_eq!(
        store.try_get_log_entries(9..100).await.unwrap(),
        entries(9..=10)
    );
    assert!(store.try_get_log_entries(11..).await.unwrap().is_empty());
    drop(store);

    let mut store = open(dir.path(), TINY).unwrap();
    assert_eq!(read_all(&mut store).await, entries(1..=10));
    append(&mut store, entries(11..=11)).await;
    assert_eq!(segment_files(dir.path()).last(), Some(&seg(10)));
    assert_eq!(read_all(&mut store).await, entries(1..=11));
}

#[tokio::test]
async fn truncate_deletes_later_segments_and_cuts_the_one_holding_the_index() {
    let dir = TempDir::new().unwrap();
    let mut store = open(dir.path(), TINY).unwrap();
    append_each(&mut store, entries(1..=9)).await;

    store.truncate(id(1, 4)).await.unwrap();
    assert_eq!(segment_files(dir.path()), [seg(1), seg(3)]);
    assert_eq!(fs::metadata(dir.path().join(seg(3))).unwrap().len(), RECORD);
    assert_eq!(read_all(&mut store).await, entries(1..=3));
    assert_eq!(
        store.get_log_state().await.unwrap().last_log_id,
        Some(id(1, 3))
    );
    let next = vec![entry_in(2, 4), entry_in(2, 5), entry_in(2, 6)];
    append_each(&mut store, next.clone()).await;
    let mut want = entries(1..=3);
    want.extend(next);
    assert_eq!(read_all(&mut store).await, want);
    drop(store);

    let mut store = open(dir.path(), TINY).unwrap();
    assert_eq!(read_all(&mut store).await, want);
    // At a segment's first index the whole segment goes.
    store.truncate(id(2, 5)).await.unwrap();
    assert_eq!(segment_files(dir.path()), [seg(1), seg(3)]);
    store.truncate(id(1, 3)).await.unwrap();
    assert_eq!(segment_files(dir.path()), [seg(1)]);
    assert_eq!(
        store.get_log_state().await.unwrap().last_log_id,
        Some(id(1, 2))
    );
    store.truncate(id(1, 1)).await.unwrap();
    assert!(segment_files(dir.path()).is_empty());
    assert_eq!(store.get_log_state().await.unwrap().last_log_id, None);
}

#[tokio::test]
async fn purge_deletes_whole_segments_and_hides_purged_entries() {
    let dir = TempDir::new().unwrap();
    let mut store = open(dir.path(), TINY).unwrap();
    append_each(&mut store, entries(1..=9)).await;

    store.purge(id(1, 4)).await.unwrap();
    assert_eq!(segment_files(dir.path()), [seg(5), seg(7), seg(9)]);
    store.purge(id(1, 5)).await.unwrap();
    assert_eq!(segment_files(dir.path()), [seg(5), seg(7), seg(9)]);
    assert_eq!(read_all(&mut store).await, entries(6..=9));
    assert!(store.try_get_log_entries(1..6).await.unwrap().is_empty());
    let state = LogState {
        last_purged_log_id: Some(id(1, 5)),
        last_log_id: Some(id(1, 9)),
    };
    assert_eq!(store.get_log_state().await.unwrap(), state);
    drop(store);

    let mut store = open(dir.path(), TINY).unwrap();
    assert_eq!(read_all(&mut store).await, entries(6..=9));
    assert_eq!(store.get_log_state().await.unwrap(), state);

    store.purge(id(1, 9)).await.unwrap();
    assert!(segment_files(dir.path()).is_empty());
    assert_eq!(
        store.get_log_state().await.unwrap(),
        LogState {
            last_purged_log_id: Some(id(1, 9)),
            last_log_id: Some(id(1, 9)),
        }
    );
    // Entries at or below the purge point are acknowledged but never kept.
    append(&mut store, entries(8..=10)).await;
    drop(store);
    let mut store = open(dir.path(), TINY).unwrap();
    assert_eq!(segment_files(dir.path()), [seg(10)]);
    assert_eq!(read_all(&mut store).await, entries(10..=10));
}

#[tokio::test]
async fn a_missing_segment_is_an_error() {
    let dir = TempDir::new().unwrap();
    {
        let mut store = open(dir.path(), TINY).unwrap();
        append_each(&mut store, entries(1..=9)).await;
    }
    fs::remove_file(dir.path().join(seg(5))).unwrap();
    match open(dir.path(), TINY) {
        Err(LogFileError::Gap {
            path,
            expected: 5,
            found: 7,
        }) => assert_eq!(path, dir.path().join(seg(7))),
        other => panic!("{:?}", other.err()),
    }
    // Nor may the first segment start after the purge point.
    fs::remove_file(dir.path().join(seg(1))).unwrap();
    fs::remove_file(dir.path().join(seg(7))).unwrap();
    fs::remove_file(dir.path().join(seg(9))).unwrap();
    meta::store(
        dir.path(),
        &meta::MetaState {
            last_purged: Some(id(1, 1)),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(matches!(
        open(dir.path(), TINY),
        Err(LogFileError::Gap {
            expected: 2,
            found: 3,
            ..
        })
    ));
}

/// Writes entries, a vote, a committed and a last purged id the way the sled log store did.
fn old_sled_log(db: &sled::Db, indexes: std::ops::RangeInclusive<u64>) {
    let log = db.open_tree("raft_log").unwrap();
    for e in entries(indexes) {
        log.insert(
            e.log_id.index.to_be_bytes(),
            entry::encode_entry(&e).unwrap(),
        )
        .unwrap();
    }
    let meta = db.open_tree("raft_meta").unwrap();
    let vote = serde_json::to_vec(&Vote::new_committed(4, 1)).unwrap();
    meta.insert(b"vote", vote).unwrap();
    meta.insert(b"committed", encode_log_id(&id(1, 6))).unwrap();
    meta.insert(b"last_purged", encode_log_id(&id(1, 2)))
        .unwrap();
    db.flush().unwrap();
}

#[tokio::test]
async fn a_log_in_the_old_sled_trees_moves_into_segment_files_once() {
    let dir = TempDir::new().unwrap();
    let log_dir: PathBuf = dir.path().join("raft");
    let db = sled::open(dir.path().join("store")).unwrap();
    old_sled_log(&db, 3..=7);
    // A copy cut short earlier: a segment but no meta file. It is started over.
    fs::create_dir_all(&log_dir).unwrap();
    fs::write(log_dir.join(seg(3)), b"half a copy").unwrap();

    for round in 0..2 {
        let mut store = LogStore::open(&db, &log_dir, TINY, Arc::new(())).unwrap();
        assert_kept(&mut store, 4, &format!("round {round}")).await;
        let names = db.tree_names();
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with(b"raft_log") || n.starts_with(b"raft_meta")),
            "round {round}: {names:?}"
        );
        if round == 0 {
            assert_eq!(segment_files(&log_dir), [seg(3), seg(5), seg(7)]);
            append(&mut store, entries(8..=8)).await;
            store.truncate(id(1, 8)).await.unwrap();
        }
    }
    // A store that never used sled opens as it is.
    let fresh = TempDir::new().unwrap();
    let db = sled::open(fresh.path().join("store")).unwrap();
    let mut store = LogStore::open(&db, &fresh.path().join("raft"), TINY, Arc::new(())).unwrap();
    assert!(read_all(&mut store).await.is_empty());
    assert_eq!(store.read_vote().await.unwrap(), None);
}
