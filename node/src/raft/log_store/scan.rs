//! Opening the log: lists the segments in index order, checks that they are contiguous and
//! validates every record, building the in-memory index. A torn record at the very tail of the
//! last segment (a crash mid-append: cut short, running past the end of the file, failing its
//! crc as the file's last record, or zeros to the end) is cut off with a warning; damage
//! anywhere else is an error naming the file and the offset.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use openraft::LogId;

use super::entry::decode_entry_log_id;
use super::error::{LogFileError, RecordError};
use super::segments::{check_crc, parse_header, Segment, Segments, MAX_RECORD, RECORD_HEADER};

/// The segment files in `dir`, by first index. Other files are not the log's and are left alone.
pub(super) fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, LogFileError> {
    let mut found = Vec::new();
    for item in fs::read_dir(dir).map_err(LogFileError::io(dir))? {
        let path = item.map_err(LogFileError::io(dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(digits) = name
            .strip_prefix("log-")
            .and_then(|n| n.strip_suffix(".seg"))
        else {
            continue;
        };
        let first = Some(digits)
            .filter(|d| d.len() == 20 && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse::<u64>().ok())
            .ok_or_else(|| LogFileError::SegmentName(path.clone()))?;
        found.push((first, path));
    }
    found.sort_unstable_by_key(|(first, _)| *first);
    Ok(found)
}

/// Opens the log in `dir` (creating the directory), entries up to `purged` hidden.
pub(super) fn open(
    dir: &Path,
    max_bytes: u64,
    purged: Option<LogId<u64>>,
) -> Result<Segments, LogFileError> {
    fs::create_dir_all(dir).map_err(LogFileError::io(dir))?;
    let files = list(dir)?;
    let count = files.len();
    let mut segs: VecDeque<Segment> = VecDeque::with_capacity(count);
    let mut last = None;
    for (k, (first, path)) in files.into_iter().enumerate() {
        let expected = match segs.back() {
            Some(prev) => Some(prev.next_index()),
            // Entries between the purge point and the first segment would be missing.
            None => purged
                .map(|p| p.index.saturating_add(1))
                .filter(|kept| first > *kept),
        };
        if let Some(expected) = expected.filter(|e| *e != first) {
            return Err(LogFileError::Gap {
                path,
                expected,
                found: first,
            });
        }
        let (seg, seg_last) = scan_segment(&path, first, k + 1 == count)?;
        last = seg_last.or(last);
        segs.push_back(seg);
    }
    Ok(Segments::new(
        dir.to_path_buf(),
        max_bytes,
        segs,
        last,
        purged,
    ))
}

/// A record the scan could not accept.
enum Bad {
    /// Reading failed.
    Io(io::Error),
    /// The record is damaged; `end` is where it ends by its header, if the header was read.
    Record { why: RecordError, end: Option<u64> },
}

/// Validates every record of one segment; cuts a torn tail if it is the last segment.
fn scan_segment(
    path: &Path,
    first: u64,
    is_last: bool,
) -> Result<(Segment, Option<LogId<u64>>), LogFileError> {
    let file = File::open(path).map_err(LogFileError::io(path))?;
    let file_len = file.metadata().map_err(LogFileError::io(path))?.len();
    let mut reader = BufReader::with_capacity(1 << 20, &file);
    let mut seg = Segment {
        first,
        offsets: Vec::new(),
        len: 0,
    };
    let mut last = None;
    let mut body = Vec::new();
    while seg.len < file_len {
        let offset = seg.len;
        let corrupt = |source| LogFileError::Corrupt {
            path: path.to_path_buf(),
            offset,
            source,
        };
        let index = seg.next_index();
        match next_record(&mut reader, offset, file_len, index, &mut body) {
            Ok(log_id) => {
                let start =
                    u32::try_from(offset).map_err(|_| corrupt(RecordError::SegmentTooLarge))?;
                seg.offsets.push(start);
                seg.len = offset + (RECORD_HEADER + body.len()) as u64;
                last = Some(log_id);
            }
            Err(Bad::Io(e)) => return Err(LogFileError::io(path)(e)),
            Err(Bad::Record { why, end }) => {
                let torn = is_last
                    && match why {
                        RecordError::ShortHeader(_)
                        | RecordError::ShortBody { .. }
                        | RecordError::TooLong(_) => true,
                        _ => end == Some(file_len) || zeros_to_end(&file, offset, file_len, path)?,
                    };
                if !torn {
                    return Err(corrupt(why));
                }
                cut_tail(path, offset, file_len, &why)?;
                break;
            }
        }
    }
    Ok((seg, last))
}

/// Reads and checks the record at `offset` into `body`; returns its log id.
fn next_record(
    reader: &mut impl Read,
    offset: u64,
    file_len: u64,
    index: u64,
    body: &mut Vec<u8>,
) -> Result<LogId<u64>, Bad> {
    let bad = |why, end| Bad::Record { why, end };
    let left = file_len - offset;
    if left < RECORD_HEADER as u64 {
        return Err(bad(RecordError::ShortHeader(left), None));
    }
    let mut header = [0; RECORD_HEADER];
    reader.read_exact(&mut header).map_err(Bad::Io)?;
    let (len, stored) = parse_header(header);
    if len > MAX_RECORD {
        return Err(bad(RecordError::TooLong(len), None));
    }
    let left = left - RECORD_HEADER as u64;
    if u64::from(len) > left {
        return Err(bad(RecordError::ShortBody { len, left }, None));
    }
    let end = Some(offset + RECORD_HEADER as u64 + u64::from(len));
    body.clear();
    body.resize(len as usize, 0);
    reader.read_exact(body).map_err(Bad::Io)?;
    check_crc(body, stored).map_err(|why| bad(why, end))?;
    let log_id = decode_entry_log_id(body).map_err(|e| bad(e.into(), end))?;
    if log_id.index != index {
        let why = RecordError::Index {
            expected: index,
            found: log_id.index,
        };
        return Err(bad(why, end));
    }
    Ok(log_id)
}

/// Whether every byte from `from` to the end of the file is zero.
fn zeros_to_end(file: &File, from: u64, to: u64, path: &Path) -> Result<bool, LogFileError> {
    let mut buf = vec![0; 64 << 10];
    let mut at = from;
    while at < to {
        let n = buf.len().min((to - at) as usize);
        let chunk = &mut buf[..n];
        file.read_exact_at(chunk, at)
            .map_err(LogFileError::io(path))?;
        if chunk.iter().any(|b| *b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// Cuts the last segment at `offset` (the torn record's start) and syncs it.
fn cut_tail(
    path: &Path,
    offset: u64,
    file_len: u64,
    why: &RecordError,
) -> Result<(), LogFileError> {
    tracing::warn!(
        path = %path.display(),
        offset,
        bytes = file_len - offset,
        reason = %why,
        "raft log: cutting a torn record off the tail of the last segment"
    );
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(LogFileError::io(path))?;
    file.set_len(offset)
        .and_then(|()| file.sync_data())
        .map_err(LogFileError::io(path))
}
