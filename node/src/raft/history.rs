//! The event history: every applied log entry, kept in append-only segment files under
//! `<data_dir>/history` (the Raft log's own format), apart from the Raft log so that purging
//! that log behind a snapshot never loses an event. The projection's `history` tree indexes it
//! by event time ([`crate::store::Projection::history_index`]).

use std::path::Path;

use proto::event::EventBatch;

use super::log_store::{FileLog, LogFileError};
use super::{decode_entries, LogEntry, LogError};

/// Segment size of the history files.
const SEGMENT_BYTES: u64 = 64 << 20;

/// The history of applied entries; cheap to clone.
#[derive(Clone)]
pub struct History {
    log: FileLog,
}

impl History {
    /// Opens (creating) the history in `dir`, validating every record (blocking).
    pub(crate) fn open(dir: &Path) -> Result<History, LogFileError> {
        Ok(History {
            log: FileLog::open(dir, SEGMENT_BYTES)?,
        })
    }

    /// Appends applied entries (blocking). Entries it already holds (an entry applied again
    /// after a restart) are skipped; the rest must follow its last entry.
    pub(crate) fn record(&self, entries: &[LogEntry]) -> Result<(), LogFileError> {
        let next = self.log.last_index().map_or(0, |i| i + 1);
        let new: Vec<LogEntry> = entries
            .iter()
            .filter(|e| e.log_id.index >= next)
            .cloned()
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        self.log.append_entries(&new)
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
