//! What can go wrong in the file log, naming the file and the byte offset.

use std::path::PathBuf;

use super::entry::EntryDecodeError;

/// Why a record of a segment file is not a valid log entry.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Fewer bytes than a record header are left in the file.
    #[error("a {0}-byte record header is cut off")]
    ShortHeader(u64),
    /// The header announces more bytes than the file holds.
    #[error("the record announces {len} bytes but only {left} are left in the file")]
    ShortBody {
        /// Bytes the header announces.
        len: u32,
        /// Bytes left after the header.
        left: u64,
    },
    /// The header announces more than the largest record the log writes.
    #[error("the record announces {0} bytes (at most {max} allowed)", max = super::segments::MAX_RECORD)]
    TooLong(u32),
    /// The bytes do not match their checksum.
    #[error("crc32 {found:#010x} does not match the stored {stored:#010x}")]
    Crc {
        /// The checksum stored in the header.
        stored: u32,
        /// The checksum of the bytes read.
        found: u32,
    },
    /// The entry bytes do not decode.
    #[error("{0}")]
    Entry(#[from] EntryDecodeError),
    /// The entry does not carry the index its position says.
    #[error("entry index {found} where {expected} follows")]
    Index {
        /// The index the position in the log calls for.
        expected: u64,
        /// The index the entry carries.
        found: u64,
    },
    /// The record starts beyond what the in-memory index addresses (4 GiB).
    #[error("the record starts beyond 4 GiB into its segment")]
    SegmentTooLarge,
}

/// Why the file log failed.
#[derive(Debug, thiserror::Error)]
pub enum LogFileError {
    /// A file or directory operation failed.
    #[error("raft log: {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A record that is not at the tail of the last segment is damaged.
    #[error("raft log: {path} at byte {offset}: {source}")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Where the record starts.
        offset: u64,
        /// What is wrong with it.
        source: RecordError,
    },
    /// A segment does not start where the previous one (or the purged prefix) ends.
    #[error("raft log: {path} starts at index {found} but the log continues at {expected}")]
    Gap {
        /// The segment file.
        path: PathBuf,
        /// The index the log continues at.
        expected: u64,
        /// The index the segment's name says it starts at.
        found: u64,
    },
    /// A file named like a segment whose index does not parse.
    #[error("raft log: {0} is named like a segment but has no 20-digit index")]
    SegmentName(PathBuf),
    /// An appended entry does not follow the last one.
    #[error("raft log: cannot append index {found}: the log continues at {expected}")]
    NotNext {
        /// The index the log continues at.
        expected: u64,
        /// The index of the appended entry.
        found: u64,
    },
    /// An entry is too large for one record.
    #[error("raft log: entry {index} encodes to {len} bytes (at most {max} per record)", max = super::segments::MAX_RECORD)]
    EntryTooLarge {
        /// The entry's index.
        index: u64,
        /// Its encoded size.
        len: usize,
    },
    /// An entry could not be encoded.
    #[error("raft log: entry {index} cannot be encoded: {source}")]
    Encode {
        /// The entry's index.
        index: u64,
        /// What failed.
        source: serde_json::Error,
    },
    /// The meta file (vote, committed, last purged) does not parse.
    #[error("raft log: {path}: {source}")]
    Meta {
        /// The meta file.
        path: PathBuf,
        /// What is wrong with it.
        source: serde_json::Error,
    },
    /// Reading the old sled trees for the one-time migration failed.
    #[error("raft log: migrating from sled: {0}")]
    Sled(#[from] sled::Error),
    /// A value in the old sled trees does not decode.
    #[error("raft log: migrating from sled: key {key}: {why}")]
    SledValue {
        /// The tree key (a log index, or a meta key).
        key: String,
        /// What is wrong with the value.
        why: String,
    },
    /// A blocking file task did not finish.
    #[error("raft log: file task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl LogFileError {
    /// An IO error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LogFileError {
        let path = path.into();
        move |source| LogFileError::Io { path, source }
    }
}
