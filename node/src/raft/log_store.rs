//! The Raft log on sled. Tree `raft_log` maps the big-endian log index to the encoded entry;
//! tree `raft_meta` holds the vote, the committed log id and the last purged log id.
//!
//! Entry encoding: format version (1 byte), term, leader node id, index (8 bytes big-endian
//! each), payload kind (1 byte: 0 blank, 1 normal, 2 membership), then the payload: the
//! rkyv-encoded event batch for normal entries, JSON for membership entries, nothing for blank.

// openraft's traits fix the error type of the log store to `StorageError` (224 bytes); the helpers
// share it rather than box and unbox at every trait method.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, CommittedLeaderId, EntryPayload, LogId, LogState, Membership, OptionalSend,
    RaftLogReader, StorageError, StorageIOError, Vote,
};

use super::{LogEntry, LogPayload, TypeConfig};

const LOG_TREE: &str = "raft_log";
const META_TREE: &str = "raft_meta";
const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";

const FORMAT: u8 = 1;
const HEADER: usize = 1 + 8 + 8 + 8 + 1;
const BLANK: u8 = 0;
const NORMAL: u8 = 1;
const MEMBERSHIP: u8 = 2;

type Result<T> = std::result::Result<T, StorageError<u64>>;

/// Why a stored log entry or log id could not be decoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EntryDecodeError {
    /// Shorter than its fixed header.
    #[error("log entry of {0} bytes is shorter than its {HEADER}-byte header")]
    Truncated(usize),
    /// Written by an unknown format.
    #[error("log entry format {0} is unknown (this build reads {FORMAT})")]
    Format(u8),
    /// Unknown payload kind.
    #[error("log entry payload kind {0} is unknown")]
    Kind(u8),
    /// A blank entry with payload bytes.
    #[error("blank log entry carries {0} payload bytes")]
    BlankWithPayload(usize),
    /// The membership payload is not valid JSON.
    #[error("membership payload: {0}")]
    Membership(#[from] serde_json::Error),
    /// A stored log id has the wrong length.
    #[error("log id of {0} bytes (expected 24)")]
    LogId(usize),
}

/// The sled key of a log index.
fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// Encodes a log id as term, leader node id and index, 8 bytes big-endian each.
pub(crate) fn encode_log_id(log_id: &LogId<u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    out.extend_from_slice(&log_id.leader_id.term.to_be_bytes());
    out.extend_from_slice(&log_id.leader_id.node_id.to_be_bytes());
    out.extend_from_slice(&log_id.index.to_be_bytes());
    out
}

/// Decodes a log id written by [`encode_log_id`].
pub(crate) fn decode_log_id(bytes: &[u8]) -> std::result::Result<LogId<u64>, EntryDecodeError> {
    if bytes.len() != 24 {
        return Err(EntryDecodeError::LogId(bytes.len()));
    }
    Ok(LogId::new(
        CommittedLeaderId::new(read_u64(bytes, 0), read_u64(bytes, 8)),
        read_u64(bytes, 16),
    ))
}

/// Encodes an entry for the `raft_log` tree.
pub(crate) fn encode_entry(entry: &LogEntry) -> std::result::Result<Vec<u8>, serde_json::Error> {
    let (kind, payload) = match &entry.payload {
        EntryPayload::Blank => (BLANK, Vec::new()),
        EntryPayload::Normal(data) => (NORMAL, data.as_bytes().to_vec()),
        EntryPayload::Membership(m) => (MEMBERSHIP, serde_json::to_vec(m)?),
    };
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.push(FORMAT);
    out.extend_from_slice(&encode_log_id(&entry.log_id));
    out.push(kind);
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Decodes the log id of an encoded entry without decoding its payload.
fn decode_entry_log_id(bytes: &[u8]) -> std::result::Result<LogId<u64>, EntryDecodeError> {
    if bytes.len() < HEADER {
        return Err(EntryDecodeError::Truncated(bytes.len()));
    }
    if bytes[0] != FORMAT {
        return Err(EntryDecodeError::Format(bytes[0]));
    }
    decode_log_id(&bytes[1..25])
}

/// Decodes an entry written by [`encode_entry`]. A normal entry's event batch is carried as
/// bytes and checked when it is applied ([`LogPayload::decode`]).
pub(crate) fn decode_entry(bytes: &[u8]) -> std::result::Result<LogEntry, EntryDecodeError> {
    let log_id = decode_entry_log_id(bytes)?;
    let payload = &bytes[HEADER..];
    let payload = match bytes[HEADER - 1] {
        BLANK if payload.is_empty() => EntryPayload::Blank,
        BLANK => return Err(EntryDecodeError::BlankWithPayload(payload.len())),
        NORMAL => EntryPayload::Normal(LogPayload::from_bytes(payload.to_vec())),
        MEMBERSHIP => {
            let membership: Membership<u64, openraft::BasicNode> = serde_json::from_slice(payload)?;
            EntryPayload::Membership(membership)
        }
        kind => return Err(EntryDecodeError::Kind(kind)),
    };
    Ok(LogEntry { log_id, payload })
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

fn vote_err(e: impl std::error::Error + 'static, write: bool) -> StorageError<u64> {
    let source = AnyError::new(&e);
    if write {
        StorageIOError::write_vote(source).into()
    } else {
        StorageIOError::read_vote(source).into()
    }
}

/// The two trees of the log; cheap to clone, readable while Raft runs.
#[derive(Clone)]
pub(crate) struct LogTrees {
    log: sled::Tree,
    meta: sled::Tree,
}

impl LogTrees {
    fn log_id_at(&self, key: &[u8]) -> Result<Option<LogId<u64>>> {
        self.meta
            .get(key)
            .map_err(read_err)?
            .map(|v| decode_log_id(&v).map_err(read_err))
            .transpose()
    }

    fn last_purged(&self) -> Result<Option<LogId<u64>>> {
        self.log_id_at(LAST_PURGED)
    }

    /// The entries in `range` that are not purged, in index order.
    pub(crate) fn read<R: RangeBounds<u64>>(&self, range: R) -> Result<Vec<LogEntry>> {
        let first_kept = self.last_purged()?.map_or(0, |p| p.index.saturating_add(1));
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => match i.checked_add(1) {
                Some(i) => i,
                None => return Ok(Vec::new()),
            },
            Bound::Unbounded => 0,
        }
        .max(first_kept);
        let end = match range.end_bound() {
            Bound::Included(&i) => Bound::Included(key(i)),
            Bound::Excluded(&i) => Bound::Excluded(key(i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let empty = match range.end_bound() {
            Bound::Included(&i) => start > i,
            Bound::Excluded(&i) => start >= i,
            Bound::Unbounded => false,
        };
        if empty {
            return Ok(Vec::new());
        }
        self.log
            .range((Bound::Included(key(start)), end))
            .map(|item| {
                let (k, v) = item.map_err(read_err)?;
                decode_entry(&v).map_err(|e| {
                    let index = k.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
                    StorageIOError::read_log_at_index(index, AnyError::new(&e)).into()
                })
            })
            .collect()
    }

    fn log_state(&self) -> Result<LogState<TypeConfig>> {
        let last_purged_log_id = self.last_purged()?;
        let last = self
            .log
            .last()
            .map_err(read_err)?
            .map(|(_, v)| decode_entry_log_id(&v).map_err(read_err))
            .transpose()?;
        // Entries at or below the purge point may survive a crash during `purge`: ignore them.
        let last_log_id = match (last, &last_purged_log_id) {
            (Some(last), Some(purged)) if last.index <= purged.index => Some(*purged),
            (None, purged) => *purged,
            (last, _) => last,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    /// Removes every entry with an index in `range`, then flushes.
    async fn remove(&self, range: (Bound<[u8; 8]>, Bound<[u8; 8]>)) -> Result<()> {
        let mut batch = sled::Batch::default();
        for item in self.log.range(range) {
            let (k, _) = item.map_err(write_err)?;
            batch.remove(k);
        }
        self.log.apply_batch(batch).map_err(write_err)?;
        self.log.flush_async().await.map_err(write_err)?;
        Ok(())
    }
}

/// The sled-backed [`RaftLogStorage`].
#[derive(Clone)]
pub(crate) struct LogStore {
    trees: LogTrees,
    /// Held while Raft's tasks own this store (see [`super::EventLog::shutdown`]).
    _in_use: Arc<()>,
}

impl LogStore {
    /// Opens (creating if needed) the log's trees in `db`.
    pub(crate) fn open(
        db: &sled::Db,
        in_use: Arc<()>,
    ) -> std::result::Result<LogStore, sled::Error> {
        Ok(LogStore {
            trees: LogTrees {
                log: db.open_tree(LOG_TREE)?,
                meta: db.open_tree(META_TREE)?,
            },
            _in_use: in_use,
        })
    }

    /// The trees, for reading the log outside Raft.
    pub(crate) fn trees(&self) -> &LogTrees {
        &self.trees
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<LogEntry>> {
        self.trees.read(range)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>> {
        self.trees.log_state()
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<()> {
        let bytes = serde_json::to_vec(vote).map_err(|e| vote_err(e, true))?;
        let meta = &self.trees.meta;
        meta.insert(VOTE, bytes).map_err(|e| vote_err(e, true))?;
        meta.flush_async().await.map_err(|e| vote_err(e, true))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>> {
        let Some(bytes) = self.trees.meta.get(VOTE).map_err(|e| vote_err(e, false))? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| vote_err(e, false))
    }

    // Not flushed: the next flush (an append, a vote) persists it, and after a crash the state
    // machine (whose entries are applied atomically with its last-applied id) simply re-applies
    // whatever the log still holds once committed again.
    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> Result<()> {
        let meta = &self.trees.meta;
        match committed {
            Some(id) => meta.insert(COMMITTED, encode_log_id(&id)),
            None => meta.remove(COMMITTED),
        }
        .map_err(write_err)?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>> {
        self.trees.log_id_at(COMMITTED)
    }

    // The callback is called only once sled has flushed, so an acknowledged entry survives a
    // kill -9. Appends are serialized: the next one starts after this flush.
    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<()>
    where
        I: IntoIterator<Item = LogEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            let bytes = encode_entry(&entry).map_err(|e| {
                StorageError::from(StorageIOError::write_log_entry(
                    entry.log_id,
                    AnyError::new(&e),
                ))
            })?;
            batch.insert(&key(entry.log_id.index), bytes);
        }
        self.trees.log.apply_batch(batch).map_err(write_err)?;
        let flushed = self.trees.log.flush_async().await;
        callback.log_io_completed(flushed.map(|_| ()).map_err(io::Error::other));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<()> {
        tracing::debug!(%log_id, "truncating the raft log");
        self.trees
            .remove((Bound::Included(key(log_id.index)), Bound::Unbounded))
            .await
    }

    // The purge point is written first: entries at or below it are ignored from then on, so a
    // crash between the two steps leaves no hole.
    async fn purge(&mut self, log_id: LogId<u64>) -> Result<()> {
        tracing::debug!(%log_id, "purging the raft log");
        self.trees
            .meta
            .insert(LAST_PURGED, encode_log_id(&log_id))
            .map_err(write_err)?;
        self.trees
            .remove((Bound::Unbounded, Bound::Included(key(log_id.index))))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(payload: EntryPayload<TypeConfig>) -> LogEntry {
        LogEntry {
            log_id: LogId::new(CommittedLeaderId::new(3, 7), 42),
            payload,
        }
    }

    #[test]
    fn entries_round_trip_through_the_log_encoding() {
        let batch = proto::event::EventBatch::new(Vec::new());
        let members = Membership::new(
            vec![[1u64].into_iter().collect()],
            [(1u64, openraft::BasicNode::new("127.0.0.1:1"))]
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>(),
        );
        for payload in [
            EntryPayload::Blank,
            EntryPayload::Normal(LogPayload::encode(&batch)),
            EntryPayload::Membership(members),
        ] {
            let e = entry(payload);
            let bytes = encode_entry(&e).unwrap();
            assert_eq!(&bytes[1..9], &3u64.to_be_bytes(), "term");
            assert_eq!(decode_entry(&bytes).unwrap(), e);
        }
    }

    #[test]
    fn damaged_entries_are_errors_not_panics() {
        let e = entry(EntryPayload::Membership(Membership::new(
            vec![[1u64].into_iter().collect()],
            (),
        )));
        let bytes = encode_entry(&e).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode_entry(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = bytes.clone();
        bad[0] = 9;
        assert!(matches!(
            decode_entry(&bad),
            Err(EntryDecodeError::Format(9))
        ));
        let mut bad = bytes.clone();
        bad[HEADER - 1] = 77;
        assert!(matches!(
            decode_entry(&bad),
            Err(EntryDecodeError::Kind(77))
        ));
        assert!(decode_log_id(&[0; 23]).is_err());
    }
}
