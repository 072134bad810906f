//! The segment files and their in-memory index. Segment `log-<first index, 20 digits>.seg`
//! holds the entries from its first index on, one record each: `[len: u32 LE][crc32 of the
//! entry bytes: u32 LE][entry bytes]`. Only the first index and the record offsets of each
//! segment stay in memory, never the entries; the last segment is the one appended to and is
//! rotated once it would grow past the segment size.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::{LogId, LogState};

use super::entry::decode_entry;
use super::error::{LogFileError, RecordError};
use crate::raft::{LogEntry, TypeConfig};

/// The size at which the node's log starts a new segment.
pub(crate) const SEGMENT_BYTES: u64 = 64 << 20;
/// The largest entry one record may carry; a larger length in a header is damage.
pub(crate) const MAX_RECORD: u32 = 256 << 20;
/// The largest segment size accepted, so that record offsets fit the `u32` index.
pub(super) const MAX_SEGMENT_BYTES: u64 = 2 << 30;
/// Bytes of a record header: length and crc32.
pub(super) const RECORD_HEADER: usize = 8;

/// The path of the segment whose first entry has index `first`.
pub(super) fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("log-{first:020}.seg"))
}

/// Fsyncs a directory, so that files created, renamed or removed in it stay so.
pub(super) fn sync_dir(dir: &Path) -> Result<(), LogFileError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(LogFileError::io(dir))
}

/// The entry length and crc32 a record header holds.
pub(super) fn parse_header(header: [u8; RECORD_HEADER]) -> (u32, u32) {
    let [a, b, c, d, e, f, g, h] = header;
    (
        u32::from_le_bytes([a, b, c, d]),
        u32::from_le_bytes([e, f, g, h]),
    )
}

/// Checks a whole record (header and entry bytes) and returns the entry bytes.
fn check_record(record: &[u8]) -> Result<&[u8], RecordError> {
    let Some((header, body)) = record.split_first_chunk::<RECORD_HEADER>() else {
        return Err(RecordError::ShortHeader(record.len() as u64));
    };
    let (len, stored) = parse_header(*header);
    if len as usize != body.len() {
        return Err(RecordError::ShortBody {
            len,
            left: body.len() as u64,
        });
    }
    check_crc(body, stored)?;
    Ok(body)
}

/// Checks entry bytes against the crc32 their record header holds.
pub(super) fn check_crc(body: &[u8], stored: u32) -> Result<(), RecordError> {
    let found = crc32fast::hash(body);
    if found != stored {
        return Err(RecordError::Crc { stored, found });
    }
    Ok(())
}

/// Entries framed as records, ready for one write.
#[derive(Default)]
pub(super) struct Records {
    bytes: Vec<u8>,
    starts: Vec<usize>,
    first: Option<u64>,
    last: Option<LogId<u64>>,
}

impl Records {
    /// Frames one encoded entry; entries must follow each other by index.
    pub(super) fn push(&mut self, log_id: LogId<u64>, entry: &[u8]) -> Result<(), LogFileError> {
        if let Some(last) = self.last {
            let expected = last.index.saturating_add(1);
            if log_id.index != expected {
                return Err(LogFileError::NotNext {
                    expected,
                    found: log_id.index,
                });
            }
        }
        let len = u32::try_from(entry.len())
            .ok()
            .filter(|len| *len <= MAX_RECORD)
            .ok_or(LogFileError::EntryTooLarge {
                index: log_id.index,
                len: entry.len(),
            })?;
        self.starts.push(self.bytes.len());
        self.bytes.extend_from_slice(&len.to_le_bytes());
        self.bytes
            .extend_from_slice(&crc32fast::hash(entry).to_le_bytes());
        self.bytes.extend_from_slice(entry);
        self.first.get_or_insert(log_id.index);
        self.last = Some(log_id);
        Ok(())
    }

    /// Bytes framed so far.
    pub(super) fn framed(&self) -> usize {
        self.bytes.len()
    }
}

/// The segment written by an append, to be synced before it is acknowledged.
#[derive(Default)]
pub(super) struct Written {
    file: Option<(PathBuf, Arc<File>)>,
    created: bool,
}

impl Written {
    /// Syncs the written segment (and the directory if the segment is new).
    pub(super) fn sync(self, dir: &Path) -> Result<(), LogFileError> {
        if let Some((path, file)) = &self.file {
            file.sync_data().map_err(LogFileError::io(path))?;
        }
        if self.created {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

/// One segment: its first index and where each of its records starts.
pub(super) struct Segment {
    /// Index of its first entry (its name).
    pub(super) first: u64,
    /// Byte offset of each record.
    pub(super) offsets: Vec<u32>,
    /// Bytes of valid records (the file's length).
    pub(super) len: u64,
}

impl Segment {
    /// The index that follows its last entry.
    pub(super) fn next_index(&self) -> u64 {
        self.first + self.offsets.len() as u64
    }

    /// Where record `k` ends.
    fn end(&self, k: usize) -> u64 {
        self.offsets
            .get(k + 1)
            .map_or(self.len, |offset| u64::from(*offset))
    }
}

/// The segments of the log, the last entry's id and the purge point.
pub(super) struct Segments {
    dir: PathBuf,
    max_bytes: u64,
    segs: VecDeque<Segment>,
    /// The last segment's file, opened on first use.
    tail: Option<Arc<File>>,
    last: Option<LogId<u64>>,
    purged: Option<LogId<u64>>,
}

impl Segments {
    /// The segments found by the open scan.
    pub(super) fn new(
        dir: PathBuf,
        max_bytes: u64,
        segs: VecDeque<Segment>,
        last: Option<LogId<u64>>,
        purged: Option<LogId<u64>>,
    ) -> Segments {
        Segments {
            dir,
            max_bytes: max_bytes.clamp(1, MAX_SEGMENT_BYTES),
            segs,
            tail: None,
            last,
            purged,
        }
    }

    /// The directory of the segments.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index the next appended entry must have, if the log constrains it.
    fn next_index(&self) -> Option<u64> {
        match self.segs.back() {
            Some(seg) => Some(seg.next_index()),
            None => self.purged.map(|p| p.index.saturating_add(1)),
        }
    }

    /// The last segment's file, opened read-write if not yet.
    fn tail_file(&mut self) -> Result<Option<Arc<File>>, LogFileError> {
        if self.tail.is_none() {
            if let Some(seg) = self.segs.back() {
                let path = segment_path(&self.dir, seg.first);
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(LogFileError::io(path))?;
                self.tail = Some(Arc::new(file));
            }
        }
        Ok(self.tail.clone())
    }

    /// Starts a new last segment at `first`.
    fn create(&mut self, first: u64) -> Result<Arc<File>, LogFileError> {
        let path = segment_path(&self.dir, first);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(LogFileError::io(path))?;
        if let Some(prev) = self.segs.back_mut() {
            prev.offsets.shrink_to_fit();
        }
        self.segs.push_back(Segment {
            first,
            offsets: Vec::new(),
            len: 0,
        });
        let file = Arc::new(file);
        self.tail = Some(file.clone());
        Ok(file)
    }

    /// Writes `records` after the last entry in one write and indexes them; the caller syncs
    /// the returned file before acknowledging. A batch is never split: a new segment starts
    /// when the batch would take the last one past the segment size. Entries at or below the
    /// purge point are skipped: they could never be read (openraft's storage suite appends
    /// such). On a failed write the segment is cut back to where the write began.
    pub(super) fn write(&mut self, records: &Records) -> Result<Written, LogFileError> {
        let (Some(first), Some(last)) = (records.first, records.last) else {
            return Ok(Written::default());
        };
        let kept = self.purged.map_or(0, |p| p.index.saturating_add(1));
        if last.index < kept {
            return Ok(Written::default());
        }
        let skipped = kept.saturating_sub(first);
        let first = first + skipped;
        if let Some(expected) = self.next_index() {
            if first != expected {
                return Err(LogFileError::NotNext {
                    expected,
                    found: first,
                });
            }
        }
        let starts = &records.starts[skipped as usize..];
        let base = starts.first().copied().unwrap_or(records.bytes.len());
        let bytes = &records.bytes[base..];
        let (file, created) = match self.segs.back() {
            Some(seg)
                if seg.offsets.is_empty() || seg.len + bytes.len() as u64 <= self.max_bytes =>
            {
                (self.tail_file()?, false)
            }
            _ => (Some(self.create(first)?), true),
        };
        let (Some(file), Some(seg)) = (file, self.segs.back_mut()) else {
            return Err(LogFileError::Io {
                path: self.dir.clone(),
                source: io::Error::other("no segment to append to"),
            });
        };
        let path = segment_path(&self.dir, seg.first);
        let (indexed, start) = (seg.offsets.len(), seg.len);
        for &at in starts {
            let offset = start + (at - base) as u64;
            match u32::try_from(offset) {
                Ok(offset) => seg.offsets.push(offset),
                Err(_) => {
                    seg.offsets.truncate(indexed);
                    return Err(LogFileError::Corrupt {
                        path,
                        offset,
                        source: RecordError::SegmentTooLarge,
                    });
                }
            }
        }
        if let Err(e) = file.write_all_at(bytes, start) {
            seg.offsets.truncate(indexed);
            let _ = file.set_len(start);
            return Err(LogFileError::Io { path, source: e });
        }
        seg.len = start + bytes.len() as u64;
        self.last = Some(last);
        Ok(Written {
            file: Some((path, file)),
            created,
        })
    }

    /// The entries in the range that are not purged, in index order.
    pub(super) fn read(
        &mut self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<Vec<LogEntry>, LogFileError> {
        let (Some(first), Some(next)) = (
            self.segs.front().map(|s| s.first),
            self.segs.back().map(Segment::next_index),
        ) else {
            return Ok(Vec::new());
        };
        let kept = self.purged.map_or(0, |p| p.index.saturating_add(1));
        let from = match start {
            Bound::Included(i) => i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        }
        .max(first)
        .max(kept);
        let to = match end {
            Bound::Included(i) => i.saturating_add(1),
            Bound::Excluded(i) => i,
            Bound::Unbounded => next,
        }
        .min(next);
        if from >= to {
            return Ok(Vec::new());
        }
        self.read_range(from, to)
    }

    /// Reads entries `from..to`, all of which are in the segments: one positioned read per
    /// segment, each record checked against its crc and its index.
    fn read_range(&mut self, from: u64, to: u64) -> Result<Vec<LogEntry>, LogFileError> {
        let tail = self.tail_file()?;
        let mut out = Vec::with_capacity(usize::try_from(to - from).unwrap_or(0).min(4096));
        let k0 = self.segs.partition_point(|s| s.next_index() <= from);
        for (k, seg) in self.segs.iter().enumerate().skip(k0) {
            if seg.first >= to {
                break;
            }
            let lo = (from.max(seg.first) - seg.first) as usize;
            let hi = (to.min(seg.next_index()) - seg.first) as usize;
            if lo >= hi {
                continue;
            }
            let path = segment_path(&self.dir, seg.first);
            let file = match &tail {
                Some(tail) if k + 1 == self.segs.len() => tail.clone(),
                _ => Arc::new(File::open(&path).map_err(LogFileError::io(&path))?),
            };
            let base = u64::from(seg.offsets[lo]);
            let mut buf = vec![0; (seg.end(hi - 1) - base) as usize];
            file.read_exact_at(&mut buf, base)
                .map_err(LogFileError::io(&path))?;
            for i in lo..hi {
                let offset = u64::from(seg.offsets[i]);
                let record = &buf[(offset - base) as usize..(seg.end(i) - base) as usize];
                let corrupt = |source| LogFileError::Corrupt {
                    path: path.clone(),
                    offset,
                    source,
                };
                let entry = check_record(record)
                    .and_then(|body| decode_entry(body).map_err(RecordError::from))
                    .map_err(corrupt)?;
                let expected = seg.first + i as u64;
                if entry.log_id.index != expected {
                    return Err(corrupt(RecordError::Index {
                        expected,
                        found: entry.log_id.index,
                    }));
                }
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// Removes the entries from `index` on: deletes the segments that start there or later
    /// (last first) and cuts the one holding `index`, then syncs.
    pub(super) fn truncate(&mut self, index: u64) -> Result<(), LogFileError> {
        if self.segs.back().is_none_or(|s| index >= s.next_index()) {
            return Ok(());
        }
        let mut removed = false;
        while let Some(seg) = self.segs.back() {
            if seg.first < index {
                break;
            }
            self.tail = None;
            remove_segment(&segment_path(&self.dir, seg.first))?;
            self.segs.pop_back();
            removed = true;
        }
        let tail = self.tail_file()?;
        if let (Some(seg), Some(file)) = (self.segs.back_mut(), tail) {
            let keep = (index - seg.first) as usize;
            if let Some(&offset) = seg.offsets.get(keep) {
                let path = segment_path(&self.dir, seg.first);
                seg.offsets.truncate(keep);
                seg.len = u64::from(offset);
                file.set_len(seg.len)
                    .and_then(|()| file.sync_data())
                    .map_err(LogFileError::io(path))?;
            }
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        self.last = match self.segs.front() {
            Some(seg) if index > seg.first => self
                .read_range(index - 1, index)?
                .pop()
                .map(|entry| entry.log_id),
            _ => None,
        };
        Ok(())
    }

    /// Hides the entries up to `log_id` and deletes the segments holding only such entries
    /// (oldest first). The purge point must already be durable (the meta file).
    pub(super) fn purge(&mut self, log_id: LogId<u64>) -> Result<(), LogFileError> {
        if self.purged.is_some_and(|p| p.index >= log_id.index) {
            return Ok(());
        }
        self.purged = Some(log_id);
        let kept = log_id.index.saturating_add(1);
        let mut removed = false;
        while let Some(seg) = self.segs.front() {
            if seg.next_index() > kept {
                break;
            }
            if self.segs.len() == 1 {
                self.tail = None;
            }
            remove_segment(&segment_path(&self.dir, seg.first))?;
            self.segs.pop_front();
            removed = true;
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// The last purged log id and the last log id (the purge point when nothing is left).
    pub(super) fn log_state(&self) -> LogState<TypeConfig> {
        let last_purged_log_id = self.purged;
        let last_log_id = match (self.last, last_purged_log_id) {
            (Some(last), Some(purged)) if last.index <= purged.index => Some(purged),
            (None, purged) => purged,
            (last, _) => last,
        };
        LogState {
            last_purged_log_id,
            last_log_id,
        }
    }
}

/// Deletes a segment file; one already gone is fine.
fn remove_segment(path: &Path) -> Result<(), LogFileError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(LogFileError::io(path)(e)),
        _ => Ok(()),
    }
}
