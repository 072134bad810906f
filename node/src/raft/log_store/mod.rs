//! The Raft log in append-only segment files under one directory (`<data_dir>/raft`): the
//! entries in `log-<first index>.seg` files ([`segments`]), the vote, committed and last purged
//! log ids in an atomically replaced `meta.json` ([`meta`]). Memory holds only an index (per
//! segment its first index and record offsets). An append is one write and one `fdatasync`
//! on a blocking thread, acknowledged only after both, so an acknowledged entry survives a
//! kill -9 or a power cut. Opening validates every record ([`scan`]) and moves a log still in
//! the sled trees of older versions over once ([`migrate`]).

// openraft's traits fix the error type of the log store to `StorageError` (224 bytes); the helpers
// share it rather than box and unbox at every trait method.
#![allow(clippy::result_large_err)]

mod entry;
mod error;
mod meta;
mod migrate;
mod scan;
mod segments;
#[cfg(test)]
mod tests;

use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, LogId, LogState, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote,
};

pub use entry::EntryDecodeError;
pub(crate) use entry::{decode_log_id, encode_log_id};
pub use error::{LogFileError, RecordError};
pub(crate) use segments::SEGMENT_BYTES;

use super::{LogEntry, TypeConfig};
use meta::Meta;
use segments::{Records, Segments};

/// How long a saved committed log id may wait before the meta file is rewritten with it: at
/// most one meta write a second for commits. Losing it costs nothing but a re-apply check.
const COMMITTED_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

type Result<T> = std::result::Result<T, StorageError<u64>>;

/// Locks a mutex; a panic elsewhere while it was held does not make the log unusable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs file work on tokio's blocking threads, so that no worker waits on the disk.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::result::Result<T, LogFileError> + Send + 'static,
) -> std::result::Result<T, LogFileError> {
    tokio::task::spawn_blocking(work).await?
}

fn read_err(e: LogFileError) -> StorageError<u64> {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

fn write_err(e: LogFileError) -> StorageError<u64> {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

/// Encodes an entry and frames it after `records`' last.
fn frame(records: &mut Records, entry: &LogEntry) -> std::result::Result<(), LogFileError> {
    let index = entry.log_id.index;
    let bytes =
        entry::encode_entry(entry).map_err(|source| LogFileError::Encode { index, source })?;
    records.push(entry.log_id, &bytes)
}

/// The segments and the meta state, shared by the store Raft owns and the readers outside it.
struct Shared {
    segments: Mutex<Segments>,
    meta: Meta,
}

/// The file log; cheap to clone, readable while Raft runs.
#[derive(Clone)]
pub(crate) struct FileLog(Arc<Shared>);

impl FileLog {
    /// Opens the log in `dir` (creating it), validating every record; new segments start once
    /// the last one would grow past `segment_bytes`.
    pub(crate) fn open(dir: &Path, segment_bytes: u64) -> std::result::Result<Self, LogFileError> {
        std::fs::create_dir_all(dir).map_err(LogFileError::io(dir))?;
        let state = meta::load(dir)?.unwrap_or_default();
        let segments = scan::open(dir, segment_bytes, state.last_purged)?;
        Ok(FileLog(Arc::new(Shared {
            segments: Mutex::new(segments),
            meta: Meta::new(dir.to_path_buf(), state),
        })))
    }

    /// The entries in the range that are not purged, in index order (blocking).
    pub(crate) fn read(
        &self,
        range: impl RangeBounds<u64>,
    ) -> std::result::Result<Vec<LogEntry>, LogFileError> {
        lock(&self.0.segments).read(range.start_bound().cloned(), range.end_bound().cloned())
    }

    /// Frames and writes `entries` (following each other, and the log's last entry, by index)
    /// after the last entry, at most 4 MiB at a time, without syncing (blocking). For logs
    /// outside Raft that can be refilled after a crash (the history, from the Raft log).
    pub(crate) fn append_entries<'a>(
        &self,
        entries: impl IntoIterator<Item = &'a LogEntry>,
    ) -> std::result::Result<(), LogFileError> {
        const CHUNK: usize = 4 << 20;
        let mut records = Records::default();
        for entry in entries {
            frame(&mut records, entry)?;
            if records.framed() >= CHUNK {
                lock(&self.0.segments).write(&records)?;
                records = Records::default();
            }
        }
        lock(&self.0.segments).write(&records)?;
        Ok(())
    }

    /// Drops every entry up to `log_id` (blocking), as a purge does: the next entry appended
    /// may then be the one after `log_id`, whatever the log held before.
    pub(crate) fn purge_through(
        &self,
        log_id: LogId<u64>,
    ) -> std::result::Result<(), LogFileError> {
        self.0.meta.update(|m| {
            if m.last_purged.is_none_or(|p| p.index < log_id.index) {
                m.last_purged = Some(log_id);
            }
        });
        self.sync_meta()?;
        // Segments holding only entries up to `log_id` are deleted: when the log ended before
        // it, that is all of them.
        lock(&self.0.segments).purge(log_id)
    }

    /// The index of the last entry, if any.
    pub(crate) fn last_index(&self) -> Option<u64> {
        lock(&self.0.segments)
            .log_state()
            .last_log_id
            .map(|id| id.index)
    }

    /// Writes the meta file now with the current vote, committed and purged ids (blocking).
    fn sync_meta(&self) -> std::result::Result<(), LogFileError> {
        self.0.meta.write()
    }

    /// Writes the meta file a last time (the committed id may be waiting for its delayed
    /// write) and drops delayed writes still to come (blocking). For after Raft has stopped.
    pub(crate) fn close(&self) -> std::result::Result<(), LogFileError> {
        self.0.meta.close()
    }

    /// Writes framed entries after the last one and syncs them (blocking). The segments are
    /// locked for the write only, not for the sync, so readers do not wait on the disk.
    fn append(&self, records: &Records) -> std::result::Result<(), LogFileError> {
        let (written, dir) = {
            let mut segments = lock(&self.0.segments);
            (segments.write(records)?, segments.dir().to_path_buf())
        };
        written.sync(&dir)
    }
}

/// The file-backed [`RaftLogStorage`].
#[derive(Clone)]
pub(crate) struct LogStore {
    log: FileLog,
    /// Held while Raft's tasks own this store (see [`super::EventLog::shutdown`]).
    _in_use: Arc<()>,
}

impl LogStore {
    /// Opens the file log in `dir` (blocking), first moving over a log still in `db`'s sled
    /// trees `raft_log`/`raft_meta`.
    pub(crate) fn open(
        db: &sled::Db,
        dir: &Path,
        segment_bytes: u64,
        in_use: Arc<()>,
    ) -> std::result::Result<LogStore, LogFileError> {
        migrate::from_sled(db, dir, segment_bytes)?;
        Ok(LogStore {
            log: FileLog::open(dir, segment_bytes)?,
            _in_use: in_use,
        })
    }

    /// The log, for reading it outside Raft.
    pub(crate) fn log(&self) -> &FileLog {
        &self.log
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<LogEntry>> {
        let range = (range.start_bound().cloned(), range.end_bound().cloned());
        let log = self.log.clone();
        blocking(move || log.read(range)).await.map_err(read_err)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>> {
        Ok(lock(&self.log.0.segments).log_state())
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<()> {
        self.log.0.meta.update(|m| m.vote = Some(*vote));
        let log = self.log.clone();
        blocking(move || log.sync_meta())
            .await
            .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>> {
        Ok(self.log.0.meta.get().vote)
    }

    // Written within a second, not before returning: after a crash the state machine (whose
    // entries are applied atomically with its last-applied id) re-applies whatever the log holds
    // once it is committed again. A vote or purge writes it at once, and so does shutdown. The
    // delayed write is dropped if the log is gone or closed by then.
    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> Result<()> {
        if self.log.0.meta.set_committed(committed) {
            let shared = Arc::downgrade(&self.log.0);
            tokio::spawn(async move {
                tokio::time::sleep(COMMITTED_DELAY).await;
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                if let Err(e) = blocking(move || shared.meta.write_scheduled()).await {
                    tracing::warn!(error = %e, "raft log: the committed log id was not saved");
                }
            });
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>> {
        Ok(self.log.0.meta.get().committed)
    }

    // One write and one fdatasync on a blocking thread; the callback runs only after both, so an
    // acknowledged entry survives a kill -9 and a power cut. Appends are serialized by Raft.
    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<()>
    where
        I: IntoIterator<Item = LogEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut records = Records::default();
        for entry in entries {
            frame(&mut records, &entry).map_err(write_err)?;
        }
        let log = self.log.clone();
        match blocking(move || log.append(&records)).await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::other(e.to_string())));
                Err(write_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<()> {
        tracing::debug!(%log_id, "truncating the raft log");
        let log = self.log.clone();
        blocking(move || lock(&log.0.segments).truncate(log_id.index))
            .await
            .map_err(write_err)
    }

    // The purge point is written first: entries at or below it are never read again, so a crash
    // before the segments are deleted leaves no hole.
    async fn purge(&mut self, log_id: LogId<u64>) -> Result<()> {
        tracing::debug!(%log_id, "purging the raft log");
        let log = self.log.clone();
        blocking(move || {
            log.0.meta.update(|m| {
                if m.last_purged.is_none_or(|p| p.index < log_id.index) {
                    m.last_purged = Some(log_id);
                }
            });
            log.sync_meta()?;
            lock(&log.0.segments).purge(log_id)
        })
        .await
        .map_err(write_err)
    }
}
