//! The raw tier's on-disk layout: a 16-byte segment header, then blocks of up to 256 fixed-size
//! 136-byte little-endian flow records, each block LZ4-compressed (`lz4_flex` block format)
//! behind a 12-byte block header; encoded and decoded without allocating.
//!
//! Segment header (16 bytes): magic `FLWR`, format version (u16), record size (u16), the UTC
//! minute the segment holds (u64 ms).
//!
//! Block header (12 bytes): record count (u32, 1..=256), compressed length (u32), check (u32) of
//! the two; then the compressed bytes, which inflate to exactly count × 136 bytes. From version 3
//! those bytes are the records transposed by 4-byte words (word 0 of every record, then word 1
//! of every record, …): like fields sit side by side, so LZ4 runs about twice as fast and packs
//! about half again as tight. Version 2 blocks (records one after another) are still read.
//!
//! Record (136 bytes; addresses are 16 bytes, an IPv4 address in the first four, the rest zero):
//!
//! | offset | field | offset | field |
//! |---|---|---|---|
//! | 0 | src_addr \[16] | 112 | observation_domain u32 |
//! | 16 | dst_addr \[16] | 116 | sampling_rate u32 |
//! | 32 | next_hop \[16] | 120 | src_port u16 |
//! | 48 | exporter \[16] | 122 | dst_port u16 |
//! | 64 | bytes u64 | 124 | vlan u16 |
//! | 72 | packets u64 | 126 | protocol u8 |
//! | 80 | first_ms u64 | 127 | tcp_flags u8 |
//! | 88 | last_ms u64 | 128 | tos u8 |
//! | 96 | in_if u32 | 129 | flags u8 (see `FLAG_*`) |
//! | 100 | out_if u32 | 130 | direction u8 (0 uni, 1 forward, 2 reverse) |
//! | 104 | src_as u32 | 131 | source u8 (0 v5, 1 v9, 2 IPFIX, 3 sFlow) |
//! | 108 | dst_as u32 | 132 | check u32 over bytes 0..132 |

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proto::record::{BiflowDirection, FlowSource};
use proto::FlowRecord;

/// Bytes in one encoded flow record.
pub const RECORD_SIZE: usize = 136;
/// Bytes in a segment header.
pub const HEADER_SIZE: usize = 16;
/// The first four bytes of every segment.
pub const MAGIC: [u8; 4] = *b"FLWR";
/// The layout version written; a segment with another version is skipped.
pub const VERSION: u16 = 3;
/// The oldest layout version still read.
pub const OLDEST_READ: u16 = 2;
/// 4-byte words in a record.
const _: () = assert!(
    RECORD_SIZE.is_multiple_of(4),
    "records are transposed by 4-byte words"
);
/// Records in one compressed block at most.
pub const BLOCK_RECORDS: usize = 256;
/// Bytes in a block header.
pub const BLOCK_HEADER_SIZE: usize = 12;
/// Largest compressed size of a full block.
pub const MAX_PACKED: usize = lz4_flex::block::get_maximum_output_size(BLOCK_RECORDS * RECORD_SIZE);

const FLAG_SRC_V6: u8 = 1;
const FLAG_DST_V6: u8 = 1 << 1;
const FLAG_NEXT_HOP: u8 = 1 << 2;
const FLAG_NEXT_HOP_V6: u8 = 1 << 3;
const FLAG_VLAN: u8 = 1 << 4;
const FLAG_EXPORTER_V6: u8 = 1 << 5;
const FLAGS_KNOWN: u8 = (1 << 6) - 1;
const CHECK_AT: usize = RECORD_SIZE - 4;

/// The header of a segment holding the flows received in the minute starting at `minute_ms`.
pub fn header(minute_ms: u64) -> [u8; HEADER_SIZE] {
    let mut h = [0u8; HEADER_SIZE];
    h[..4].copy_from_slice(&MAGIC);
    h[4..6].copy_from_slice(&VERSION.to_le_bytes());
    h[6..8].copy_from_slice(&(RECORD_SIZE as u16).to_le_bytes());
    h[8..16].copy_from_slice(&minute_ms.to_le_bytes());
    h
}

/// What a segment header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The UTC minute (ms) the segment holds.
    pub minute_ms: u64,
    /// Its layout version ([`OLDEST_READ`]..=[`VERSION`]).
    pub version: u16,
}

impl SegmentHeader {
    /// Whether its blocks hold records transposed by words (version 3 on).
    pub fn transposed(&self) -> bool {
        self.version >= 3
    }
}

/// Checks a segment header; `Err` says what is wrong with it.
pub fn check_header(h: &[u8]) -> Result<SegmentHeader, String> {
    if h.len() < HEADER_SIZE {
        return Err(format!("header is {} bytes, not {HEADER_SIZE}", h.len()));
    }
    if h[..4] != MAGIC {
        return Err(format!("bad magic {:02x?}", &h[..4]));
    }
    let version = u16::from_le_bytes([h[4], h[5]]);
    if !(OLDEST_READ..=VERSION).contains(&version) {
        return Err(format!(
            "layout version {version}, this build reads {OLDEST_READ} to {VERSION}"
        ));
    }
    let size = u16::from_le_bytes([h[6], h[7]]);
    if usize::from(size) != RECORD_SIZE {
        return Err(format!("record size {size}, expected {RECORD_SIZE}"));
    }
    Ok(SegmentHeader {
        minute_ms: u64_at(h, 8),
        version,
    })
}

/// Transposes whole records (`rows`, one after another) by 4-byte words into `out`.
pub fn transpose(rows: &[u8], out: &mut Vec<u8>) {
    let count = rows.len() / RECORD_SIZE;
    out.clear();
    out.resize(count * RECORD_SIZE, 0);
    for (r, record) in rows.chunks_exact(RECORD_SIZE).enumerate() {
        for (w, word) in record.chunks_exact(4).enumerate() {
            let at = (w * count + r) * 4;
            if let Some(slot) = out.get_mut(at..at + 4) {
                slot.copy_from_slice(word);
            }
        }
    }
}

/// Undoes [`transpose`]: `columns` holds `count` records by words; `rows` gets them back one
/// after another (both `count` × [`RECORD_SIZE`] bytes).
pub fn untranspose(columns: &[u8], rows: &mut [u8]) {
    let count = rows.len() / RECORD_SIZE;
    for (r, record) in rows.chunks_exact_mut(RECORD_SIZE).enumerate() {
        for (w, word) in record.chunks_exact_mut(4).enumerate() {
            let at = (w * count + r) * 4;
            if let Some(src) = columns.get(at..at + 4) {
                word.copy_from_slice(src);
            }
        }
    }
}

/// The header of a block of `count` records compressed to `packed_len` bytes.
pub fn block_header(count: u32, packed_len: u32) -> [u8; BLOCK_HEADER_SIZE] {
    let mut h = [0u8; BLOCK_HEADER_SIZE];
    h[..4].copy_from_slice(&count.to_le_bytes());
    h[4..8].copy_from_slice(&packed_len.to_le_bytes());
    h[8..].copy_from_slice(&block_check(count, packed_len).to_le_bytes());
    h
}

/// A block header's record count and compressed length; `None` when it is not one (a torn,
/// zeroed or corrupted header).
pub fn check_block_header(h: &[u8; BLOCK_HEADER_SIZE]) -> Option<(usize, usize)> {
    let count = u32_at(h, 0);
    let packed = u32_at(h, 4);
    let (c, p) = (count as usize, packed as usize);
    let plausible = (1..=BLOCK_RECORDS).contains(&c)
        && p <= lz4_flex::block::get_maximum_output_size(c * RECORD_SIZE);
    (plausible && u32_at(h, 8) == block_check(count, packed)).then_some((c, p))
}

fn block_check(count: u32, packed_len: u32) -> u32 {
    let h = ((u64::from(count) << 32) | (u64::from(packed_len) ^ 0x5bd1_e995))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 32) as u32
}

/// A cheap word-wise hash of a record's first 132 bytes: catches torn and zero-filled records.
fn check(b: &[u8; RECORD_SIZE]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for w in b[..CHECK_AT].chunks_exact(4) {
        h = (h ^ u64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]])))
            .wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h ^ (h >> 32)) as u32
}

fn put_addr(out: &mut [u8], addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => {
            out[..4].copy_from_slice(&a.octets());
            out[4..16].fill(0);
            false
        }
        IpAddr::V6(a) => {
            out[..16].copy_from_slice(&a.octets());
            true
        }
    }
}

fn get_addr(b: &[u8], v6: bool) -> IpAddr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[..16]);
    if v6 {
        IpAddr::V6(Ipv6Addr::from(o))
    } else {
        IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3]))
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Encodes one flow into `out` (every byte is written).
pub fn encode(f: &FlowRecord, out: &mut [u8; RECORD_SIZE]) {
    let mut flags = 0u8;
    if put_addr(&mut out[0..16], f.src_addr) {
        flags |= FLAG_SRC_V6;
    }
    if put_addr(&mut out[16..32], f.dst_addr) {
        flags |= FLAG_DST_V6;
    }
    match f.next_hop {
        Some(nh) => {
            flags |= FLAG_NEXT_HOP;
            if put_addr(&mut out[32..48], nh) {
                flags |= FLAG_NEXT_HOP_V6;
            }
        }
        None => out[32..48].fill(0),
    }
    if put_addr(&mut out[48..64], f.exporter) {
        flags |= FLAG_EXPORTER_V6;
    }
    for (at, v) in [
        (64, f.bytes),
        (72, f.packets),
        (80, f.first_ms),
        (88, f.last_ms),
    ] {
        out[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    for (at, v) in [
        (96, f.in_if),
        (100, f.out_if),
        (104, f.src_as),
        (108, f.dst_as),
        (112, f.observation_domain),
        (116, f.sampling_rate),
    ] {
        out[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    if f.vlan.is_some() {
        flags |= FLAG_VLAN;
    }
    for (at, v) in [
        (120, f.src_port),
        (122, f.dst_port),
        (124, f.vlan.unwrap_or(0)),
    ] {
        out[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
    out[126] = f.protocol;
    out[127] = f.tcp_flags;
    out[128] = f.tos;
    out[129] = flags;
    out[130] = match f.direction {
        BiflowDirection::Unidirectional => 0,
        BiflowDirection::Forward => 1,
        BiflowDirection::Reverse => 2,
    };
    out[131] = match f.source {
        FlowSource::NetflowV5 => 0,
        FlowSource::NetflowV9 => 1,
        FlowSource::Ipfix => 2,
        FlowSource::Sflow => 3,
    };
    let c = check(out);
    out[CHECK_AT..].copy_from_slice(&c.to_le_bytes());
}

/// Decodes one record; `None` when its check word, flags or enum bytes are wrong (a torn or
/// corrupted record: never turned into a flow).
pub fn decode(b: &[u8; RECORD_SIZE]) -> Option<FlowRecord> {
    if u32_at(b, CHECK_AT) != check(b) {
        return None;
    }
    let flags = b[129];
    if flags & !FLAGS_KNOWN != 0 {
        return None;
    }
    let direction = match b[130] {
        0 => BiflowDirection::Unidirectional,
        1 => BiflowDirection::Forward,
        2 => BiflowDirection::Reverse,
        _ => return None,
    };
    let source = match b[131] {
        0 => FlowSource::NetflowV5,
        1 => FlowSource::NetflowV9,
        2 => FlowSource::Ipfix,
        3 => FlowSource::Sflow,
        _ => return None,
    };
    Some(FlowRecord {
        src_addr: get_addr(&b[0..16], flags & FLAG_SRC_V6 != 0),
        dst_addr: get_addr(&b[16..32], flags & FLAG_DST_V6 != 0),
        src_port: u16_at(b, 120),
        dst_port: u16_at(b, 122),
        protocol: b[126],
        tcp_flags: b[127],
        tos: b[128],
        bytes: u64_at(b, 64),
        packets: u64_at(b, 72),
        in_if: u32_at(b, 96),
        out_if: u32_at(b, 100),
        src_as: u32_at(b, 104),
        dst_as: u32_at(b, 108),
        next_hop: (flags & FLAG_NEXT_HOP != 0)
            .then(|| get_addr(&b[32..48], flags & FLAG_NEXT_HOP_V6 != 0)),
        vlan: (flags & FLAG_VLAN != 0).then(|| u16_at(b, 124)),
        first_ms: u64_at(b, 80),
        last_ms: u64_at(b, 88),
        exporter: get_addr(&b[48..64], flags & FLAG_EXPORTER_V6 != 0),
        observation_domain: u32_at(b, 112),
        sampling_rate: u32_at(b, 116),
        direction,
        source,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A v4 flow with every field set to something distinct.
    pub(crate) fn v4_flow(n: u64) -> FlowRecord {
        FlowRecord {
            src_addr: IpAddr::V4(Ipv4Addr::new(10, 0, (n >> 8) as u8, n as u8)),
            dst_addr: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20)),
            src_port: 40_000 + (n % 1000) as u16,
            dst_port: 443,
            protocol: 6,
            tcp_flags: 0x1b,
            tos: 0xb8,
            bytes: 1_000 + n,
            packets: 10 + n,
            in_if: 3,
            out_if: 7,
            src_as: 64_512,
            dst_as: 15_169,
            next_hop: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
            vlan: Some(42),
            first_ms: 1_700_000_000_000 + n,
            last_ms: 1_700_000_030_000 + n,
            exporter: IpAddr::V4(Ipv4Addr::new(172, 16, 0, 9)),
            observation_domain: 256,
            sampling_rate: 100,
            direction: BiflowDirection::Forward,
            source: FlowSource::Ipfix,
        }
    }

    /// A v6 flow with every field set, and the optional ones absent or v6.
    pub(crate) fn v6_flow(n: u64) -> FlowRecord {
        let a = |last: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, n as u16, last));
        FlowRecord {
            src_addr: a(1),
            dst_addr: a(2),
            src_port: 53,
            dst_port: 55_555,
            protocol: 17,
            tcp_flags: 0,
            tos: 3,
            bytes: u64::MAX - n,
            packets: u64::MAX / 3,
            in_if: u32::MAX,
            out_if: 0,
            src_as: 4_200_000_000,
            dst_as: 1,
            next_hop: Some(a(0xfe)),
            vlan: None,
            first_ms: n,
            last_ms: u64::MAX,
            exporter: a(0xff),
            observation_domain: u32::MAX,
            sampling_rate: 1,
            direction: BiflowDirection::Reverse,
            source: FlowSource::Sflow,
        }
    }

    fn round_trip(f: &FlowRecord) -> Option<FlowRecord> {
        let mut b = [0xaau8; RECORD_SIZE];
        encode(f, &mut b);
        decode(&b)
    }

    #[test]
    fn v4_and_v6_records_round_trip_every_field() {
        for f in [
            v4_flow(1),
            v6_flow(2),
            FlowRecord::default(),
            FlowRecord {
                next_hop: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
                vlan: Some(0),
                direction: BiflowDirection::Unidirectional,
                source: FlowSource::NetflowV9,
                ..v4_flow(3)
            },
        ] {
            assert_eq!(round_trip(&f), Some(f));
        }
    }

    #[test]
    fn a_damaged_or_zeroed_record_is_not_a_flow() {
        let mut b = [0u8; RECORD_SIZE];
        assert_eq!(decode(&b), None, "all zeros");
        encode(&v4_flow(9), &mut b);
        b[70] ^= 1;
        assert_eq!(decode(&b), None, "one flipped bit");
    }

    #[test]
    fn block_headers_refuse_zeros_and_implausible_sizes() {
        let h = block_header(256, 900);
        assert_eq!(check_block_header(&h), Some((256, 900)));
        assert_eq!(check_block_header(&[0u8; BLOCK_HEADER_SIZE]), None);
        assert_eq!(check_block_header(&block_header(0, 10)), None);
        assert_eq!(check_block_header(&block_header(257, 10)), None);
        assert_eq!(check_block_header(&block_header(1, 10_000)), None);
        let mut bad = h;
        bad[4] ^= 1;
        assert_eq!(check_block_header(&bad), None);
    }

    #[test]
    fn headers_say_what_is_wrong() {
        let h = header(60_000);
        assert_eq!(check_header(&h).map(|h| h.minute_ms), Ok(60_000));
        let mut bad = h;
        bad[0] = b'X';
        assert!(check_header(&bad).is_err_and(|e| e.contains("magic")));
        let mut newer = h;
        newer[4] = 9;
        assert!(check_header(&newer).is_err_and(|e| e.contains("version 9")));
        let mut older = h;
        older[4..6].copy_from_slice(&2u16.to_le_bytes());
        assert_eq!(check_header(&older).map(|h| h.transposed()), Ok(false));
        assert_eq!(check_header(&h).map(|h| h.transposed()), Ok(true));
        assert!(check_header(&h[..8]).is_err());
    }
}
