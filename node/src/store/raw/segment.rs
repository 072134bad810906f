//! Segment files of the raw tier: one file per UTC minute of receipt, named
//! `<minute-ms, zero-padded>.flw` so that names sort by time. Owns appending (buffered, one
//! record at a time through a stack buffer), listing, retention (by age, then by total size,
//! oldest first) and scanning newest-first with a bound on the records read.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use actors::aggregator::FlowQuery;
use proto::FlowRecord;

use super::record::{self, HEADER_SIZE, RECORD_SIZE};

/// Width of a segment, ms.
pub const MINUTE_MS: u64 = 60_000;
/// How far ahead of this node's clock an exporter's clock may run: flows received in a minute
/// are assumed to have ended no later than this after it (used to stop a time-bounded scan).
pub const CLOCK_AHEAD_MS: u64 = 5 * MINUTE_MS;
/// Records read from disk per read call when scanning.
const CHUNK_RECORDS: usize = 512;
/// Write buffer per open segment.
const WRITE_BUFFER: usize = 256 * RECORD_SIZE;
const EXTENSION: &str = "flw";

/// One segment file on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// The UTC minute (ms) its flows were received in.
    pub minute_ms: u64,
    /// Its path.
    pub path: PathBuf,
    /// Its size, bytes.
    pub len: u64,
}

/// The path of the segment for `minute_ms` in `dir`.
pub fn segment_path(dir: &Path, minute_ms: u64) -> PathBuf {
    dir.join(format!("{minute_ms:015}.{EXTENSION}"))
}

/// The segments in `dir`, oldest first; files with other names are left alone.
pub fn list(dir: &Path) -> io::Result<Vec<Segment>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(minute_ms) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".flw"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        // A file deleted since read_dir listed it is simply not there.
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_file() {
            out.push(Segment {
                minute_ms,
                path: entry.path(),
                len: meta.len(),
            });
        }
    }
    out.sort_by_key(|s| s.minute_ms);
    Ok(out)
}

/// The segment being appended to.
struct Open {
    minute_ms: u64,
    file: BufWriter<File>,
}

/// Appends flows to the segment of their minute of receipt.
pub struct SegmentWriter {
    dir: PathBuf,
    open: Option<Open>,
}

impl SegmentWriter {
    /// A writer for `dir`, created if missing.
    pub fn new(dir: &Path) -> io::Result<SegmentWriter> {
        fs::create_dir_all(dir)?;
        Ok(SegmentWriter {
            dir: dir.to_path_buf(),
            open: None,
        })
    }

    /// The minute of the segment open for appending, if any.
    pub fn open_minute(&self) -> Option<u64> {
        self.open.as_ref().map(|o| o.minute_ms)
    }

    /// Appends `flows` received at `receipt_ms`, rotating to that minute's segment first;
    /// returns the bytes added to the directory (records and any new header).
    pub fn append(&mut self, receipt_ms: u64, flows: &[FlowRecord]) -> io::Result<u64> {
        let minute_ms = receipt_ms - receipt_ms % MINUTE_MS;
        let mut added = 0;
        let file = match &mut self.open {
            Some(o) if o.minute_ms == minute_ms => &mut o.file,
            _ => {
                self.close()?;
                let (file, header_bytes) = open_segment(&self.dir, minute_ms)?;
                added += header_bytes;
                &mut self.open.insert(Open { minute_ms, file }).file
            }
        };
        let mut buf = [0u8; RECORD_SIZE];
        for f in flows {
            record::encode(f, &mut buf);
            file.write_all(&buf)?;
        }
        Ok(added + (flows.len() * RECORD_SIZE) as u64)
    }

    /// Writes buffered records to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.open {
            Some(o) => o.file.flush(),
            None => Ok(()),
        }
    }

    /// Flushes and closes the open segment.
    pub fn close(&mut self) -> io::Result<()> {
        match self.open.take() {
            Some(mut o) => o.file.flush(),
            None => Ok(()),
        }
    }
}

/// Opens a minute's segment for appending: a new file gets a header; an existing one (a restart
/// within the minute) is checked, and a partial record left by a crash is cut off so that the
/// records appended next stay aligned. Returns the file and the header bytes written.
fn open_segment(dir: &Path, minute_ms: u64) -> io::Result<(BufWriter<File>, u64)> {
    let path = segment_path(dir, minute_ms);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    let len = file.metadata()?.len();
    let mut head = [0u8; HEADER_SIZE];
    let valid = len >= HEADER_SIZE as u64
        && file.read_exact(&mut head).is_ok()
        && record::check_header(&head).is_ok();
    let mut header_bytes = 0;
    if valid {
        let aligned = len - (len - HEADER_SIZE as u64) % RECORD_SIZE as u64;
        if aligned != len {
            tracing::warn!(path = %path.display(), cut = len - aligned, "raw segment: partial last record cut off");
            file.set_len(aligned)?;
        }
        file.seek(SeekFrom::Start(aligned))?;
    } else {
        if len > 0 {
            tracing::warn!(path = %path.display(), "raw segment: unreadable header, segment rewritten");
        }
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&record::header(minute_ms))?;
        header_bytes = HEADER_SIZE as u64;
    }
    Ok((BufWriter::with_capacity(WRITE_BUFFER, file), header_bytes))
}

/// What retention left on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Kept {
    /// Segments left.
    pub files: u64,
    /// Their total size, bytes.
    pub bytes: u64,
    /// Segments deleted.
    pub deleted: u64,
}

/// Deletes segments whose minute ended more than `keep` before `now_ms`, then the oldest ones
/// while the total exceeds `max_bytes`. The segment of `open_minute` (being written) is kept.
pub fn prune(
    dir: &Path,
    now_ms: u64,
    keep: Duration,
    max_bytes: u64,
    open_minute: Option<u64>,
) -> io::Result<Kept> {
    let cutoff = now_ms.saturating_sub(u64::try_from(keep.as_millis()).unwrap_or(u64::MAX));
    let mut segments = list(dir)?;
    let mut total: u64 = segments.iter().map(|s| s.len).sum();
    let mut kept = Kept::default();
    let remove = |s: &Segment, total: &mut u64, kept: &mut Kept| match fs::remove_file(&s.path) {
        Ok(()) => {
            *total = total.saturating_sub(s.len);
            kept.deleted += 1;
            true
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
        Err(e) => {
            tracing::warn!(path = %s.path.display(), error = %e, "raw segment: cannot delete");
            false
        }
    };
    segments.retain(|s| {
        let expired = s.minute_ms.saturating_add(MINUTE_MS) <= cutoff;
        !(expired && Some(s.minute_ms) != open_minute && remove(s, &mut total, &mut kept))
    });
    segments.retain(|s| {
        !(total > max_bytes && Some(s.minute_ms) != open_minute && remove(s, &mut total, &mut kept))
    });
    kept.files = segments.len() as u64;
    kept.bytes = total;
    Ok(kept)
}

/// Whether a flow matches a flow-explorer query (the same rules as the aggregator's ring).
pub fn matches(q: &FlowQuery, f: &FlowRecord) -> bool {
    q.src.is_none_or(|n| n.contains(&f.src_addr))
        && q.dst.is_none_or(|n| n.contains(&f.dst_addr))
        && q.host
            .is_none_or(|n| n.contains(&f.src_addr) || n.contains(&f.dst_addr))
        && q.port.is_none_or(|p| f.src_port == p || f.dst_port == p)
        && q.protocol.is_none_or(|p| f.protocol == p)
        && q.from_ms.is_none_or(|t| f.last_ms >= t)
        && q.to_ms.is_none_or(|t| f.last_ms <= t)
}

/// The answer of a scan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// The page of matches, newest first.
    pub items: Vec<FlowRecord>,
    /// Matches among the records read.
    pub total: u64,
    /// Records read.
    pub scanned: u64,
    /// Records that failed their check and were skipped.
    pub damaged: u64,
    /// The scan stopped at its budget before reading every segment that could match.
    pub truncated: bool,
}

/// Reads matches of `q` newest first (segments newest first, records in each from the last),
/// keeping the page `q.offset .. q.offset + q.limit`, reading at most `budget` records.
/// A segment whose header is wrong is skipped, with a warning the first time (`warned`
/// remembers); a partial last record is ignored.
pub fn scan(dir: &Path, q: &FlowQuery, budget: u64, warned: &mut HashSet<PathBuf>) -> Scan {
    let mut out = Scan::default();
    let segments = match list(dir) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "raw segments cannot be listed");
            return out;
        }
    };
    let mut chunk = vec![0u8; CHUNK_RECORDS * RECORD_SIZE];
    for s in segments.iter().rev() {
        let newest_possible = s.minute_ms.saturating_add(MINUTE_MS + CLOCK_AHEAD_MS);
        if q.from_ms.is_some_and(|from| newest_possible < from) {
            break;
        }
        if out.scanned >= budget {
            out.truncated = true;
            break;
        }
        match scan_segment(s, q, budget, &mut chunk, &mut out) {
            Ok(()) => {}
            Err(why) => {
                if warned.insert(s.path.clone()) {
                    tracing::warn!(path = %s.path.display(), why = %why, "raw segment skipped");
                }
            }
        }
    }
    out
}

fn scan_segment(
    s: &Segment,
    q: &FlowQuery,
    budget: u64,
    chunk: &mut [u8],
    out: &mut Scan,
) -> Result<(), String> {
    let mut file = match File::open(&s.path) {
        Ok(f) => f,
        // Deleted by retention since it was listed.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut head = [0u8; HEADER_SIZE];
    file.read_exact(&mut head)
        .map_err(|e| format!("header: {e}"))?;
    record::check_header(&head)?;
    let records = len.saturating_sub(HEADER_SIZE as u64) / RECORD_SIZE as u64;
    let mut end = records;
    while end > 0 {
        let start = end.saturating_sub(CHUNK_RECORDS as u64);
        let n = (end - start) as usize;
        let bytes = chunk
            .get_mut(..n * RECORD_SIZE)
            .ok_or_else(|| "chunk buffer too small".to_string())?;
        file.seek(SeekFrom::Start(
            HEADER_SIZE as u64 + start * RECORD_SIZE as u64,
        ))
        .and_then(|_| file.read_exact(bytes))
        .map_err(|e| format!("records {start}..{end}: {e}"))?;
        for rec in bytes.chunks_exact(RECORD_SIZE).rev() {
            if out.scanned >= budget {
                out.truncated = true;
                return Ok(());
            }
            out.scanned += 1;
            let Some(f) = <&[u8; RECORD_SIZE]>::try_from(rec)
                .ok()
                .and_then(record::decode)
            else {
                out.damaged += 1;
                continue;
            };
            if matches(q, &f) {
                if out.total >= q.offset as u64 && out.items.len() < q.limit {
                    out.items.push(f);
                }
                out.total += 1;
            }
        }
        end = start;
    }
    Ok(())
}
