//! The event history: every applied log entry, kept in append-only segment files under
//! `<data_dir>/history` (the Raft log's own format), apart from the Raft log so that purging
//! that log behind a snapshot never loses an event. The projection's `history` tree indexes it
//! by event time ([`crate::store::Projection::history_index`]).
//!
//! A node that caught up by installing a snapshot has no entries before it: its history starts
//! from a base, the snapshot (`base.snap`: the log index, the time it was taken, the projection
//! export), and replays start from that base.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::LogId;
use proto::event::EventBatch;

use super::log_store::{FileLog, LogFileError};
use super::{decode_entries, LogEntry, LogError};

fn short(path: &Path) -> LogFileError {
    LogFileError::io(path)(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "the history base is shorter than its header",
    ))
}

/// Segment size of the history files.
const SEGMENT_BYTES: u64 = 64 << 20;

/// The file holding a history's base.
const BASE: &str = "base.snap";

/// The file holding the current Raft snapshot's data (its meta is in sled).
const SNAPSHOT_DATA: &str = "snapshot.data";

/// The directory of a history's checkpoints (`<index>-<taken ms>.snap`).
const CHECKPOINTS: &str = "checkpoints";

/// The newest checkpoints always kept; older ones are kept one per slot
/// ([`History::keep_checkpoints_every`]), so that retention can prune close to its cutoff.
const CHECKPOINTS_KEPT: usize = 8;

/// A projection export at a log index: the snapshot a history starts from (its base), or one
/// of its periodic checkpoints.
#[derive(Clone, Debug)]
pub struct Base {
    /// The last log index it holds.
    pub index: u64,
    /// When it was taken, UTC ms: every event it holds is stamped at or before.
    pub taken_ms: u64,
    /// The projection's export ([`crate::store::Projection::export`]).
    pub data: Vec<u8>,
}

/// The history of applied entries; cheap to clone.
#[derive(Clone)]
pub struct History {
    log: FileLog,
    dir: PathBuf,
    /// Checkpoints older than the newest 8 are kept one per this many ms (0: none kept).
    slot_ms: Arc<AtomicU64>,
}

impl History {
    /// Opens (creating) the history in `dir`, validating every record (blocking).
    pub(crate) fn open(dir: &Path) -> Result<History, LogFileError> {
        Ok(History {
            log: FileLog::open(dir, SEGMENT_BYTES)?,
            dir: dir.to_path_buf(),
            slot_ms: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Starts the history over from a snapshot (installed because this node lagged behind the
    /// purged log): the base is written (atomically), then every older entry dropped (blocking).
    pub(crate) fn install_base(
        &self,
        log_id: LogId<u64>,
        taken_ms: u64,
        data: &[u8],
    ) -> Result<(), LogFileError> {
        write_base(&self.dir.join(BASE), log_id.index, taken_ms, data)?;
        self.log.purge_through(log_id)
    }

    /// Keeps a snapshot this node took as a checkpoint (blocking), then thins the checkpoints:
    /// the newest 8 are kept, older ones one per slot. Replays as of a moment start from the
    /// newest checkpoint taken before it, and retention makes one its new base.
    pub(crate) fn checkpoint(
        &self,
        index: u64,
        taken_ms: u64,
        data: &[u8],
    ) -> Result<(), LogFileError> {
        let dir = self.dir.join(CHECKPOINTS);
        std::fs::create_dir_all(&dir).map_err(LogFileError::io(&dir))?;
        let path = dir.join(format!("{index:020}-{taken_ms}.snap"));
        write_base(&path, index, taken_ms, data)?;
        self.thin_checkpoints()
    }

    /// Keeps, besides the newest 8, the first checkpoint of every `slot_ms` (by the time it
    /// was taken); 0 keeps none beyond the newest 8.
    pub fn keep_checkpoints_every(&self, slot_ms: u64) {
        self.slot_ms.store(slot_ms, Ordering::Relaxed);
    }

    /// The log index and time of the newest checkpoint, if there is one (blocking).
    pub fn newest_checkpoint(&self) -> Result<Option<(u64, u64)>, LogFileError> {
        Ok(self
            .checkpoint_files()?
            .last()
            .map(|(index, taken, _)| (*index, *taken)))
    }

    /// Deletes the checkpoints the base makes useless and those beyond what
    /// [`History::keep_checkpoints_every`] keeps.
    fn thin_checkpoints(&self) -> Result<(), LogFileError> {
        let floor = self.base_point()?.map(|(index, _)| index);
        let slot = self.slot_ms.load(Ordering::Relaxed);
        let all = self.checkpoint_files()?;
        let newest_from = all.len().saturating_sub(CHECKPOINTS_KEPT);
        let mut last_slot = None;
        for (n, (index, taken, path)) in all.iter().enumerate() {
            let keep = if floor.is_some_and(|f| *index <= f) {
                false
            } else if n >= newest_from {
                true
            } else if let Some(this) = taken.checked_div(slot) {
                let first = last_slot != Some(this);
                last_slot = Some(this);
                first
            } else {
                false
            };
            if !keep {
                std::fs::remove_file(path).map_err(LogFileError::io(path))?;
            }
        }
        Ok(())
    }

    /// Drops the events from before `cutoff_ms` (blocking): the newest checkpoint taken at or
    /// before it becomes the base, and the entries up to it are purged (whole segment files:
    /// a segment also holding later entries stays until they are due too; what remains below
    /// the base is no longer served). Returns the new base's index and time, or None when no
    /// checkpoint is old enough yet.
    pub(crate) fn prune_before(&self, cutoff_ms: u64) -> Result<Option<(u64, u64)>, LogError> {
        let floor = self.base_point()?.map(|(index, _)| index);
        let found = self
            .checkpoint_files()?
            .into_iter()
            .rev()
            .find(|(index, taken, _)| *taken <= cutoff_ms && floor.is_none_or(|f| *index > f));
        let Some((index, taken, path)) = found else {
            return Ok(None);
        };
        // The purge needs the entry's log id; a checkpoint past what the history holds (it
        // cannot be: checkpoints are of applied entries) is left alone.
        let Some(entry) = self.raw_in(index..=index)?.into_iter().next() else {
            return Ok(None);
        };
        let base = self.dir.join(BASE);
        std::fs::rename(&path, &base).map_err(LogFileError::io(&base))?;
        sync_dir(&self.dir)?;
        self.log.purge_through(entry.log_id)?;
        self.thin_checkpoints()?;
        Ok(Some((index, taken)))
    }

    /// Bytes of every file the history holds: segments, base, checkpoints and the snapshot
    /// data (blocking).
    pub fn disk_bytes(&self) -> u64 {
        dir_bytes(&self.dir)
    }

    /// The checkpoints, oldest first: (index, taken ms, file).
    fn checkpoint_files(&self) -> Result<Vec<(u64, u64, PathBuf)>, LogFileError> {
        let dir = self.dir.join(CHECKPOINTS);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(LogFileError::io(&dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(LogFileError::io(&dir))?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let parsed = name.strip_suffix(".snap").and_then(|stem| {
                let (index, taken) = stem.split_once('-')?;
                Some((index.parse().ok()?, taken.parse().ok()?))
            });
            if let Some((index, taken)) = parsed {
                out.push((index, taken, path));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Where a replay as of `at_ms` starts: the newest checkpoint taken at or before it (and not
    /// before the base), else the base (blocking).
    pub fn start_for(&self, at_ms: u64) -> Result<Option<Base>, LogFileError> {
        let floor = self.base_point()?.map_or(0, |(index, _)| index);
        let newest = self
            .checkpoint_files()?
            .into_iter()
            .rev()
            .find(|(index, taken, _)| *taken <= at_ms && *index >= floor);
        match newest {
            Some((_, _, path)) => read_base(&path),
            None => self.base(),
        }
    }

    /// The log index and time of the base this history starts from, if any, read from the
    /// base's header only (blocking).
    pub fn base_point(&self) -> Result<Option<(u64, u64)>, LogFileError> {
        use std::io::Read as _;
        let path = self.dir.join(BASE);
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LogFileError::io(&path)(e)),
        };
        let mut header = [0u8; 16];
        file.read_exact(&mut header).map_err(|_| short(&path))?;
        let (index, taken) = header.split_at(8);
        let le = |b: &[u8]| <[u8; 8]>::try_from(b).map_or(0, u64::from_le_bytes);
        Ok(Some((le(index), le(taken))))
    }

    /// Stores the current Raft snapshot's data in `snapshot.data`, atomically (blocking): files
    /// cost no memory, where sled would cache the whole export.
    pub(crate) fn save_snapshot_data(&self, data: &[u8]) -> Result<(), LogFileError> {
        write_atomically(&self.dir.join(SNAPSHOT_DATA), &[data])
    }

    /// The current Raft snapshot's data, if stored in a file (blocking).
    pub(crate) fn snapshot_data(&self) -> Result<Option<Vec<u8>>, LogFileError> {
        read_if_exists(&self.dir.join(SNAPSHOT_DATA))
    }

    /// The base this history starts from, if it does not start at the first entry (blocking).
    pub fn base(&self) -> Result<Option<Base>, LogFileError> {
        read_base(&self.dir.join(BASE))
    }

    /// Appends applied entries (blocking). Entries it already holds (an entry applied again
    /// after a restart) are skipped; the rest must follow its last entry.
    pub(crate) fn record(&self, entries: &[LogEntry]) -> Result<(), LogFileError> {
        let next = self.log.last_index().map_or(0, |i| i + 1);
        if entries.iter().all(|e| e.log_id.index < next) {
            return Ok(());
        }
        self.log
            .append_entries(entries.iter().filter(|e| e.log_id.index >= next))
    }

    /// The index of the last entry it holds.
    pub fn last_index(&self) -> Option<u64> {
        self.log.last_index()
    }

    /// The entries with indexes in `range`, decoded: (index, batch, or None for blank and
    /// membership entries) (blocking).
    pub fn entries_in(
        &self,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Vec<(u64, Option<EventBatch>)>, LogError> {
        decode_entries(self.log.read(range)?)
    }

    /// The entries with indexes in `range`, as stored (blocking).
    pub(crate) fn raw_in(
        &self,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Vec<LogEntry>, LogFileError> {
        self.log.read(range)
    }

    /// Every entry it holds, decoded as [`History::entries_in`] (blocking).
    pub fn entries(&self) -> Result<Vec<(u64, Option<EventBatch>)>, LogError> {
        decode_entries(self.log.read(..)?)
    }

    /// Writes its meta file a last time (blocking).
    pub(crate) fn close(&self) -> Result<(), LogFileError> {
        self.log.close()
    }
}

/// Writes a base or checkpoint file atomically: index, taken ms, export.
fn write_base(path: &Path, index: u64, taken_ms: u64, data: &[u8]) -> Result<(), LogFileError> {
    write_atomically(path, &[&index.to_le_bytes(), &taken_ms.to_le_bytes(), data])
}

/// Writes `parts` one after another to `path` through a synced temporary file renamed over it.
fn write_atomically(path: &Path, parts: &[&[u8]]) -> Result<(), LogFileError> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(LogFileError::io(&tmp))?;
    parts
        .iter()
        .try_for_each(|part| file.write_all(part))
        .and_then(|()| file.sync_all())
        .map_err(LogFileError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(LogFileError::io(path))
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), LogFileError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(LogFileError::io(dir))
}

/// Bytes of the files under `dir`, recursively (what cannot be read counts 0).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// A file's bytes; None if it does not exist.
fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, LogFileError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogFileError::io(path)(e)),
    }
}

/// Reads a base or checkpoint file; None if it does not exist.
fn read_base(path: &Path) -> Result<Option<Base>, LogFileError> {
    let Some(bytes) = read_if_exists(path)? else {
        return Ok(None);
    };
    let (index, rest) = bytes.split_first_chunk::<8>().ok_or_else(|| short(path))?;
    let (taken, data) = rest.split_first_chunk::<8>().ok_or_else(|| short(path))?;
    Ok(Some(Base {
        index: u64::from_le_bytes(*index),
        taken_ms: u64::from_le_bytes(*taken),
        data: data.to_vec(),
    }))
}
