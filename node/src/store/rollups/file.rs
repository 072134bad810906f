//! Rollup files: sorted runs of (dependency, counters) records in LZ4-compressed chunks behind
//! checked headers. Owns the record and chunk layout, appending runs to a file (cutting a torn
//! tail left by a crash first), listing a file's runs, and streaming a run back in key order with
//! one chunk in memory.
//!
//! Chunk header (32 bytes, little-endian): magic `FLR1`, bucket start (u64 ms), run number in the
//! file (u32), record count (u32, 1..=[`CHUNK_RECORDS`]), compressed length (u32), CRC-32 of the
//! compressed bytes (u32), CRC-32 of the header's first 28 bytes (u32). The compressed bytes
//! inflate to exactly count × [`RECORD_SIZE`] bytes. A run is the consecutive chunks with the
//! same run number; its records are in ascending key order, each key once.
//!
//! Record (77 bytes): key (37 bytes: client family 4|6 and 16 address bytes, server family and
//! 16 address bytes, port u16 big-endian, protocol), then bytes to server, bytes to client,
//! packets to server, packets to client, flows (u64 little-endian each).

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use proto::event::DependencyKey;

use super::Row;

/// Bytes in a record key.
pub const KEY_SIZE: usize = 37;
/// Bytes in one record.
pub const RECORD_SIZE: usize = KEY_SIZE + 40;
/// Records in one chunk at most.
pub const CHUNK_RECORDS: usize = 256;
const HEADER_SIZE: usize = 32;
const MAGIC: [u8; 4] = *b"FLR1";
const MAX_PACKED: usize = lz4_flex::block::get_maximum_output_size(CHUNK_RECORDS * RECORD_SIZE);

/// A record key: orders records within a run.
pub type Key = [u8; KEY_SIZE];

fn put_ip(ip: IpAddr, out: &mut [u8]) {
    match ip {
        IpAddr::V4(v4) => {
            out[0] = 4;
            out[1..5].copy_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out[0] = 6;
            out[1..17].copy_from_slice(&v6.octets());
        }
    }
}

#[cfg(test)]
fn get_ip(b: &[u8]) -> Option<IpAddr> {
    let octets: [u8; 16] = b.get(1..17)?.try_into().ok()?;
    match b.first()? {
        4 => Some(IpAddr::V4(std::net::Ipv4Addr::new(
            octets[0], octets[1], octets[2], octets[3],
        ))),
        6 => Some(IpAddr::V6(std::net::Ipv6Addr::from(octets))),
        _ => None,
    }
}

/// The key of a dependency's records.
pub fn key(dep: &DependencyKey) -> Key {
    let mut k = [0u8; KEY_SIZE];
    put_ip(dep.client, &mut k[..17]);
    put_ip(dep.service.ip, &mut k[17..34]);
    k[34..36].copy_from_slice(&dep.service.port.to_be_bytes());
    k[36] = dep.service.protocol;
    k
}

/// The dependency a key was made from (none for a key no [`key`] call makes).
#[cfg(test)]
pub fn dependency(k: &Key) -> Option<DependencyKey> {
    Some(DependencyKey {
        client: get_ip(&k[..17])?,
        service: proto::event::ServiceKey {
            ip: get_ip(&k[17..34])?,
            port: u16::from_be_bytes([k[34], k[35]]),
            protocol: k[36],
        },
    })
}

fn encode(key: &Key, row: &Row, out: &mut [u8]) {
    out[..KEY_SIZE].copy_from_slice(key);
    let fields = [
        row.bytes_to_server,
        row.bytes_to_client,
        row.packets_to_server,
        row.packets_to_client,
        row.flows,
    ];
    for (chunk, v) in out[KEY_SIZE..RECORD_SIZE].chunks_exact_mut(8).zip(fields) {
        chunk.copy_from_slice(&v.to_le_bytes());
    }
}

fn decode(b: &[u8]) -> Option<(Key, Row)> {
    let key: Key = b.get(..KEY_SIZE)?.try_into().ok()?;
    let f = |i: usize| {
        b.get(KEY_SIZE + i * 8..KEY_SIZE + i * 8 + 8)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
            .map_or(0, u64::from_le_bytes)
    };
    Some((
        key,
        Row {
            bytes_to_server: f(0),
            bytes_to_client: f(1),
            packets_to_server: f(2),
            packets_to_client: f(3),
            flows: f(4),
        },
    ))
}

/// A chunk's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Start of the bucket the run holds, UTC ms.
    pub bucket_ms: u64,
    /// The run's number in its file.
    pub run: u32,
    records: u32,
    packed: u32,
    crc: u32,
    /// Where the header starts in the file.
    offset: u64,
}

impl Chunk {
    fn header(&self) -> [u8; HEADER_SIZE] {
        let mut h = [0u8; HEADER_SIZE];
        h[..4].copy_from_slice(&MAGIC);
        h[4..12].copy_from_slice(&self.bucket_ms.to_le_bytes());
        h[12..16].copy_from_slice(&self.run.to_le_bytes());
        h[16..20].copy_from_slice(&self.records.to_le_bytes());
        h[20..24].copy_from_slice(&self.packed.to_le_bytes());
        h[24..28].copy_from_slice(&self.crc.to_le_bytes());
        let check = crc32fast::hash(&h[..28]);
        h[28..].copy_from_slice(&check.to_le_bytes());
        h
    }

    fn parse(h: &[u8; HEADER_SIZE], offset: u64) -> Option<Chunk> {
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        if h[..4] != MAGIC || crc32fast::hash(&h[..28]) != u32_at(28) {
            return None;
        }
        let mut bucket = [0u8; 8];
        bucket.copy_from_slice(&h[4..12]);
        let chunk = Chunk {
            bucket_ms: u64::from_le_bytes(bucket),
            run: u32_at(12),
            records: u32_at(16),
            packed: u32_at(20),
            crc: u32_at(24),
            offset,
        };
        let sane = (1..=CHUNK_RECORDS as u32).contains(&chunk.records)
            && chunk.packed as usize <= MAX_PACKED;
        sane.then_some(chunk)
    }

    fn end(&self) -> u64 {
        self.offset + (HEADER_SIZE as u64) + u64::from(self.packed)
    }
}

/// The chunks of a file whose headers check out, in file order, and where the last whole one
/// ends (a torn or corrupt tail after it is not listed). A missing file has none.
pub fn chunks(path: &Path) -> io::Result<(Vec<Chunk>, u64)> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let mut out = Vec::new();
    let mut at = 0u64;
    let mut h = [0u8; HEADER_SIZE];
    while at + HEADER_SIZE as u64 <= len {
        file.read_exact_at(&mut h, at)?;
        let Some(chunk) = Chunk::parse(&h, at) else {
            break;
        };
        if chunk.end() > len {
            break;
        }
        at = chunk.end();
        out.push(chunk);
    }
    Ok((out, at))
}

/// The runs of a file as (bucket, chunks), in file order.
pub fn runs(path: &Path) -> io::Result<Vec<(u64, Vec<Chunk>)>> {
    let (chunks, _) = chunks(path)?;
    let mut out: Vec<(u64, Vec<Chunk>)> = Vec::new();
    for c in chunks {
        match out.last_mut() {
            Some((_, run)) if run.last().is_some_and(|l| l.run == c.run) => run.push(c),
            _ => out.push((c.bucket_ms, vec![c])),
        }
    }
    Ok(out)
}

/// Appends runs to one file.
pub struct Appender {
    out: BufWriter<File>,
    next_run: u32,
    raw: Vec<u8>,
    packed: Vec<u8>,
}

impl Appender {
    /// Opens (creates) the file for appending, cutting any torn tail a crash left.
    pub fn open(path: &Path) -> io::Result<Appender> {
        let (existing, end) = chunks(path)?;
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)?;
        if file.metadata()?.len() != end {
            file.set_len(end)?;
        }
        file.seek(SeekFrom::Start(end))?;
        let next_run = existing.iter().map(|c| c.run + 1).max().unwrap_or(0);
        Ok(Appender {
            out: BufWriter::with_capacity(1 << 16, file),
            next_run,
            raw: Vec::with_capacity(CHUNK_RECORDS * RECORD_SIZE),
            packed: vec![0u8; MAX_PACKED],
        })
    }

    /// Writes one run for the bucket starting at `bucket_ms` and flushes it to the file;
    /// `records` must come in ascending key order, each key once. Returns the records written.
    pub fn run(
        &mut self,
        bucket_ms: u64,
        records: impl IntoIterator<Item = (Key, Row)>,
    ) -> io::Result<u64> {
        let run = self.next_run;
        self.next_run += 1;
        let mut written = 0u64;
        let mut record = [0u8; RECORD_SIZE];
        self.raw.clear();
        for (key, row) in records {
            encode(&key, &row, &mut record);
            self.raw.extend_from_slice(&record);
            written += 1;
            if self.raw.len() == CHUNK_RECORDS * RECORD_SIZE {
                self.chunk(bucket_ms, run)?;
            }
        }
        if !self.raw.is_empty() {
            self.chunk(bucket_ms, run)?;
        }
        self.out.flush()?;
        Ok(written)
    }

    fn chunk(&mut self, bucket_ms: u64, run: u32) -> io::Result<()> {
        let packed = lz4_flex::block::compress_into(&self.raw, &mut self.packed)
            .map_err(|e| io::Error::other(format!("compress: {e}")))?;
        let body = &self.packed[..packed];
        let chunk = Chunk {
            bucket_ms,
            run,
            records: (self.raw.len() / RECORD_SIZE) as u32,
            packed: packed as u32,
            crc: crc32fast::hash(body),
            offset: 0,
        };
        self.out.write_all(&chunk.header())?;
        self.out.write_all(body)?;
        self.raw.clear();
        Ok(())
    }
}

/// One run's records in key order, one inflated chunk in memory. A chunk that fails its check
/// ends the run early and is counted in `bad`.
pub struct RunReader {
    file: Arc<File>,
    chunks: std::vec::IntoIter<Chunk>,
    packed: Vec<u8>,
    raw: Vec<u8>,
    at: usize,
    /// Chunks skipped because they did not check out.
    pub bad: u64,
}

impl RunReader {
    /// A reader over `chunks` of one run in `file`.
    pub fn new(file: Arc<File>, chunks: Vec<Chunk>) -> RunReader {
        RunReader {
            file,
            chunks: chunks.into_iter(),
            packed: Vec::new(),
            raw: Vec::new(),
            at: 0,
            bad: 0,
        }
    }

    fn load(&mut self) -> bool {
        let Some(c) = self.chunks.next() else {
            return false;
        };
        self.packed.resize(c.packed as usize, 0);
        self.raw.resize(c.records as usize * RECORD_SIZE, 0);
        self.at = 0;
        let ok = self
            .file
            .read_exact_at(&mut self.packed, c.offset + HEADER_SIZE as u64)
            .is_ok()
            && crc32fast::hash(&self.packed) == c.crc
            && lz4_flex::block::decompress_into(&self.packed, &mut self.raw).ok()
                == Some(self.raw.len());
        if !ok {
            self.bad += 1;
            self.raw.clear();
            // The rest of the run cannot be trusted to be in order with what came before.
            for _ in self.chunks.by_ref() {}
        }
        ok
    }
}

impl Iterator for RunReader {
    type Item = (Key, Row);

    fn next(&mut self) -> Option<(Key, Row)> {
        if self.at >= self.raw.len() && !self.load() {
            return None;
        }
        let record = decode(self.raw.get(self.at..self.at + RECORD_SIZE)?);
        self.at += RECORD_SIZE;
        record
    }
}
