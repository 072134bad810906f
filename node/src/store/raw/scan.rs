//! Reading the raw tier: finds a segment's whole blocks (stopping at a torn or zeroed tail),
//! and scans segments newest first — blocks from the last, records in each from the last —
//! keeping one page of the flows that match a flow-explorer query and reading no more than a
//! budget of records. Never trusts what it reads: a bad header skips the segment, a block that
//! does not inflate or a record that fails its check is skipped and counted.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use actors::aggregator::FlowQuery;
use proto::FlowRecord;

use super::record::{self, BLOCK_HEADER_SIZE, BLOCK_RECORDS, HEADER_SIZE, MAX_PACKED, RECORD_SIZE};
use super::segment::{self, Segment, MINUTE_MS};

/// How far ahead of this node's clock an exporter's clock may run: flows received in a minute
/// are assumed to have ended no later than this after it (used to stop a time-bounded scan).
pub const CLOCK_AHEAD_MS: u64 = 5 * MINUTE_MS;

/// Where one block sits in its segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// Offset of its compressed bytes (after its header).
    pub at: u64,
    /// Records in it.
    pub count: usize,
    /// Compressed length.
    pub packed_len: usize,
}

/// The whole blocks of a segment, and where the last one ends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Blocks {
    /// The blocks, in file order.
    pub list: Vec<Block>,
    /// End of the last whole block: anything after it is a torn or zeroed tail.
    pub end: u64,
}

/// Walks the block headers of a segment of `len` bytes whose header has been checked.
pub fn blocks(file: &mut File, len: u64) -> io::Result<Blocks> {
    file.seek(SeekFrom::Start(HEADER_SIZE as u64))?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut out = Blocks {
        list: Vec::new(),
        end: HEADER_SIZE as u64,
    };
    let mut head = [0u8; BLOCK_HEADER_SIZE];
    while out.end + BLOCK_HEADER_SIZE as u64 <= len {
        reader.read_exact(&mut head)?;
        let Some((count, packed_len)) = record::check_block_header(&head) else {
            break;
        };
        let at = out.end + BLOCK_HEADER_SIZE as u64;
        let next = at + packed_len as u64;
        if next > len {
            break;
        }
        out.list.push(Block {
            at,
            count,
            packed_len,
        });
        out.end = next;
        reader.seek_relative(packed_len as i64)?;
    }
    Ok(out)
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
    /// Records that failed their check, or were in a block that did not inflate, and were
    /// skipped.
    pub damaged: u64,
    /// The scan stopped at its budget before reading every segment that could match.
    pub truncated: bool,
}

/// The scan's reusable buffers: one compressed block and one inflated block.
struct Buffers {
    packed: Vec<u8>,
    raw: Vec<u8>,
    /// A transposed block's records put back one after another.
    rows: Vec<u8>,
}

/// Reads matches of `q` newest first (segments newest first, blocks and records in each from
/// the last), keeping the page `q.offset .. q.offset + q.limit`, reading at most `budget`
/// records. A segment whose header is wrong is skipped, with a warning the first time
/// (`warned` remembers); a partial last block is ignored.
pub fn scan(dir: &Path, q: &FlowQuery, budget: u64, warned: &mut HashSet<PathBuf>) -> Scan {
    let mut out = Scan::default();
    let segments = match segment::list(dir) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "raw segments cannot be listed");
            return out;
        }
    };
    let mut buffers = Buffers {
        packed: vec![0u8; MAX_PACKED],
        raw: vec![0u8; BLOCK_RECORDS * RECORD_SIZE],
        rows: vec![0u8; BLOCK_RECORDS * RECORD_SIZE],
    };
    for s in segments.iter().rev() {
        let newest_possible = s.minute_ms.saturating_add(MINUTE_MS + CLOCK_AHEAD_MS);
        if q.from_ms.is_some_and(|from| newest_possible < from) {
            break;
        }
        if out.scanned >= budget {
            out.truncated = true;
            break;
        }
        if let Err(why) = scan_segment(s, q, budget, &mut buffers, &mut out) {
            if warned.insert(s.path.clone()) {
                tracing::warn!(path = %s.path.display(), why = %why, "raw segment skipped");
            }
        }
    }
    out
}

fn scan_segment(
    s: &Segment,
    q: &FlowQuery,
    budget: u64,
    buffers: &mut Buffers,
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
    let header = record::check_header(&head)?;
    let blocks = blocks(&mut file, len).map_err(|e| format!("blocks: {e}"))?;
    for b in blocks.list.iter().rev() {
        let packed = buffers
            .packed
            .get_mut(..b.packed_len)
            .ok_or_else(|| format!("block at {} larger than a block can be", b.at))?;
        file.seek(SeekFrom::Start(b.at))
            .and_then(|_| file.read_exact(packed))
            .map_err(|e| format!("block at {}: {e}", b.at))?;
        let want = b.count * RECORD_SIZE;
        let raw = buffers
            .raw
            .get_mut(..want)
            .ok_or_else(|| format!("block at {} holds too many records", b.at))?;
        let inflated = lz4_flex::block::decompress_into(packed, raw);
        if inflated.ok() != Some(want) {
            let skipped = (b.count as u64).min(budget.saturating_sub(out.scanned));
            out.scanned += skipped;
            out.damaged += skipped;
            continue;
        }
        let rows: &[u8] = if header.transposed() {
            let rows = buffers
                .rows
                .get_mut(..want)
                .ok_or_else(|| format!("block at {} holds too many records", b.at))?;
            record::untranspose(raw, rows);
            rows
        } else {
            raw
        };
        for rec in rows.chunks_exact(RECORD_SIZE).rev() {
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
            if q.matches(&f) {
                if out.total >= q.offset as u64 && out.items.len() < q.limit {
                    out.items.push(f);
                }
                out.total += 1;
            }
        }
    }
    Ok(())
}
