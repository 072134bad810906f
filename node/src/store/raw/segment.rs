//! Segment files of the raw tier: one file per UTC minute of receipt, named
//! `<minute-ms, zero-padded>.flw` so that names sort by time. Owns appending (records gathered
//! into compressed blocks), listing, and retention (by age, then by total size, oldest first).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use lz4_flex::block::{compress_into_with_table, CompressTable};
use proto::FlowRecord;

use super::record::{self, BLOCK_HEADER_SIZE, BLOCK_RECORDS, HEADER_SIZE, MAX_PACKED, RECORD_SIZE};
use super::scan;

/// Width of a segment, ms.
pub const MINUTE_MS: u64 = 60_000;
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
    file: File,
    /// Bytes of whole blocks in the file: where the next block goes.
    len: u64,
}

/// What a [`SegmentWriter`] has put on disk since it was last asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Bytes added to the directory (headers and blocks).
    pub bytes: u64,
    /// Segments created.
    pub segments: u64,
    /// Records in blocks written.
    pub records: u64,
    /// Records in blocks lost to write errors.
    pub lost: u64,
}

/// Appends flows to the segment of their minute of receipt, a compressed block at a time: up to
/// [`record::BLOCK_RECORDS`] records wait in a block buffer, which is compressed and written when
/// full, on [`SegmentWriter::flush`] and when the segment closes. Its buffers are allocated once.
pub struct SegmentWriter {
    dir: PathBuf,
    open: Option<Open>,
    block: Vec<u8>,
    /// The block transposed by words, as it is compressed.
    columns: Vec<u8>,
    packed: Vec<u8>,
    table: CompressTable,
    written: Written,
}

impl SegmentWriter {
    /// A writer for `dir`, created if missing.
    pub fn new(dir: &Path) -> io::Result<SegmentWriter> {
        fs::create_dir_all(dir)?;
        Ok(SegmentWriter {
            dir: dir.to_path_buf(),
            open: None,
            block: Vec::with_capacity(BLOCK_RECORDS * RECORD_SIZE),
            columns: Vec::with_capacity(BLOCK_RECORDS * RECORD_SIZE),
            packed: vec![0u8; BLOCK_HEADER_SIZE + MAX_PACKED],
            table: CompressTable::default(),
            written: Written::default(),
        })
    }

    /// The minute of the segment open for appending, if any.
    pub fn open_minute(&self) -> Option<u64> {
        self.open.as_ref().map(|o| o.minute_ms)
    }

    /// What was put on disk since the last call.
    pub fn take_written(&mut self) -> Written {
        std::mem::take(&mut self.written)
    }

    /// Appends `flows` received at `receipt_ms`, rotating to that minute's segment first.
    pub fn append(&mut self, receipt_ms: u64, flows: &[FlowRecord]) -> io::Result<()> {
        let minute_ms = receipt_ms - receipt_ms % MINUTE_MS;
        if self.open_minute() != Some(minute_ms) {
            let closed = self.close();
            match open_segment(&self.dir, minute_ms, &mut self.written) {
                Ok(open) => self.open = Some(open),
                Err(e) => {
                    self.written.lost += flows.len() as u64;
                    return Err(e);
                }
            }
            closed?;
        }
        let mut buf = [0u8; RECORD_SIZE];
        for (i, f) in flows.iter().enumerate() {
            record::encode(f, &mut buf);
            self.block.extend_from_slice(&buf);
            if self.block.len() >= BLOCK_RECORDS * RECORD_SIZE {
                if let Err(e) = self.write_block() {
                    self.written.lost += (flows.len() - i - 1) as u64;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Compresses and writes the records waiting in the block buffer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.write_block()
    }

    /// Flushes and closes the open segment.
    pub fn close(&mut self) -> io::Result<()> {
        let flushed = self.write_block();
        self.open = None;
        flushed
    }

    fn write_block(&mut self) -> io::Result<()> {
        let count = self.block.len() / RECORD_SIZE;
        if count == 0 {
            return Ok(());
        }
        let Some(open) = self.open.as_mut() else {
            self.block.clear();
            return Ok(());
        };
        let too_small = || io::Error::other("block buffer too small");
        let packed = match self.packed.get_mut(BLOCK_HEADER_SIZE..) {
            Some(body) => {
                record::transpose(&self.block, &mut self.columns);
                compress_into_with_table(&self.columns, body, &mut self.table)
                    .map_err(|e| io::Error::other(format!("lz4: {e}")))
            }
            None => Err(too_small()),
        };
        self.block.clear();
        let result = packed.and_then(|n| {
            let header = record::block_header(count as u32, n as u32);
            let frame = BLOCK_HEADER_SIZE + n;
            let bytes = self.packed.get_mut(..frame).ok_or_else(too_small)?;
            bytes[..BLOCK_HEADER_SIZE].copy_from_slice(&header);
            open.file.write_all(bytes)?;
            Ok(frame as u64)
        });
        match result {
            Ok(frame) => {
                open.len += frame;
                self.written.bytes += frame;
                self.written.records += count as u64;
                Ok(())
            }
            Err(e) => {
                self.written.lost += count as u64;
                // Cut a partly written block off so the blocks after it stay reachable.
                let _ = open.file.set_len(open.len);
                let _ = open.file.seek(SeekFrom::Start(open.len));
                Err(e)
            }
        }
    }
}

/// Opens a minute's segment for appending: a new file gets a header; an existing one (a restart
/// within the minute) is checked, and a partial block left by a crash is cut off so that the
/// blocks appended next stay reachable.
fn open_segment(dir: &Path, minute_ms: u64, written: &mut Written) -> io::Result<Open> {
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
        && record::check_header(&head).is_ok_and(|h| h.version == record::VERSION);
    let end = if valid {
        let blocks = scan::blocks(&mut file, len)?;
        let end = blocks.end;
        if end != len {
            tracing::warn!(path = %path.display(), cut = len - end, "raw segment: partial last block cut off");
            file.set_len(end)?;
        }
        end
    } else {
        if len > 0 {
            tracing::warn!(path = %path.display(), "raw segment: unreadable header or older layout, segment rewritten");
        }
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&record::header(minute_ms))?;
        written.bytes += HEADER_SIZE as u64;
        written.segments += 1;
        HEADER_SIZE as u64
    };
    file.seek(SeekFrom::Start(end))?;
    Ok(Open {
        minute_ms,
        file,
        len: end,
    })
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
