//! The raw tier on real files: layout round trips through compressed blocks, minute rotation,
//! crash leftovers, damaged blocks, retention, paging with a bounded scan, and a sink that drops
//! rather than waits.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use actors::aggregator::FlowQuery;
use actors::RawSink;
use proto::FlowRecord;

use super::record::tests::{v4_flow, v6_flow};
use super::record::{self, BLOCK_RECORDS, RECORD_SIZE};
use super::scan::{self, scan};
use super::segment::{self, segment_path, SegmentWriter, MINUTE_MS};
use super::{RawConfig, RawStore, QUEUE_FLOWS};

/// A receipt minute just after the test flows end (`v4_flow(n)` ends at 1_700_000_030_000 + n).
const T0: u64 = 28_333_334 * MINUTE_MS;

fn all() -> FlowQuery {
    FlowQuery {
        limit: usize::MAX,
        ..FlowQuery::default()
    }
}

fn read_all(dir: &Path) -> Vec<FlowRecord> {
    scan(dir, &all(), u64::MAX, &mut HashSet::new()).items
}

fn sizes(dir: &Path) -> Vec<u64> {
    segment::list(dir)
        .expect("list")
        .iter()
        .map(|s| s.len)
        .collect()
}

fn write(dir: &Path, at: u64, flows: &[FlowRecord]) {
    let mut w = SegmentWriter::new(dir).expect("writer");
    w.append(at, flows).expect("append");
    w.close().expect("close");
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[test]
fn records_round_trip_through_compressed_blocks_exactly_v4_and_v6() {
    let dir = tempdir();
    // Three blocks: two full, one partial.
    let flows: Vec<FlowRecord> = (0..2 * BLOCK_RECORDS as u64 + 50)
        .map(|n| if n % 2 == 0 { v4_flow(n) } else { v6_flow(n) })
        .collect();
    write(dir.path(), T0 + 1, &flows);
    let mut back = read_all(dir.path());
    back.reverse();
    assert_eq!(back, flows, "every field of every record, v4 and v6");
    let len = fs::metadata(segment_path(dir.path(), T0))
        .expect("segment")
        .len();
    let raw = (flows.len() * RECORD_SIZE) as u64;
    assert!(
        len < raw / 2,
        "{len} bytes on disk for {raw} bytes of records"
    );
    assert_eq!(RECORD_SIZE, 136);
}

#[test]
fn each_minute_of_receipt_gets_its_own_segment_read_newest_first() {
    let dir = tempdir();
    let mut w = SegmentWriter::new(dir.path()).expect("writer");
    w.append(T0 + 5_000, &[v4_flow(1)]).expect("append");
    w.append(T0 + MINUTE_MS - 1, &[v4_flow(2)])
        .expect("same minute");
    w.append(T0 + MINUTE_MS, &[v4_flow(3)])
        .expect("next minute");
    w.append(T0 + 3 * MINUTE_MS + 7, &[v6_flow(4)])
        .expect("later");
    w.close().expect("close");
    let minutes: Vec<u64> = segment::list(dir.path())
        .expect("list")
        .iter()
        .map(|s| s.minute_ms)
        .collect();
    assert_eq!(minutes, [T0, T0 + MINUTE_MS, T0 + 3 * MINUTE_MS]);
    let head = fs::read(segment_path(dir.path(), T0 + MINUTE_MS)).expect("read");
    assert_eq!(
        record::check_header(&head).map(|h| h.minute_ms),
        Ok(T0 + MINUTE_MS)
    );
    assert_eq!(
        read_all(dir.path()),
        [v6_flow(4), v4_flow(3), v4_flow(2), v4_flow(1)]
    );
}

#[test]
fn a_truncated_last_block_is_ignored_then_cut_before_appending() {
    let dir = tempdir();
    let mut w = SegmentWriter::new(dir.path()).expect("writer");
    w.append(T0, &[v4_flow(1), v4_flow(2)]).expect("append");
    w.flush().expect("first block");
    w.append(T0 + 1, &[v4_flow(3)]).expect("append");
    w.close().expect("second block");
    let path = segment_path(dir.path(), T0);
    let full = fs::metadata(&path).expect("meta").len();
    let file = OpenOptions::new().write(true).open(&path).expect("open");
    file.set_len(full - 5).expect("crash mid-block");
    assert_eq!(read_all(dir.path()), [v4_flow(2), v4_flow(1)]);
    // A restart within the same minute appends after the last whole block.
    write(dir.path(), T0 + 10, &[v4_flow(4)]);
    assert_eq!(read_all(dir.path()), [v4_flow(4), v4_flow(2), v4_flow(1)]);
    let len = fs::metadata(&path).expect("meta").len();
    let blocks = scan::blocks(&mut fs::File::open(&path).expect("open"), len).expect("blocks");
    assert_eq!((blocks.list.len(), blocks.end), (2, len));
}

#[test]
fn a_zeroed_tail_left_by_a_power_loss_is_not_read_as_flows() {
    let dir = tempdir();
    write(dir.path(), T0, &[v4_flow(1)]);
    let mut file = OpenOptions::new()
        .append(true)
        .open(segment_path(dir.path(), T0))
        .expect("open");
    file.write_all(&[0u8; 2 * RECORD_SIZE]).expect("zeros");
    let scan = scan(dir.path(), &all(), u64::MAX, &mut HashSet::new());
    assert_eq!(scan.items, [v4_flow(1)]);
    assert_eq!((scan.scanned, scan.damaged), (1, 0));
}

#[test]
fn a_block_that_does_not_inflate_is_skipped_and_counted_the_others_read() {
    let dir = tempdir();
    let mut w = SegmentWriter::new(dir.path()).expect("writer");
    w.append(T0, &[v4_flow(1)]).expect("append");
    w.flush().expect("first block");
    w.append(T0, &[v4_flow(2), v4_flow(3)]).expect("append");
    w.flush().expect("second block");
    w.append(T0, &[v4_flow(4)]).expect("append");
    w.close().expect("third block");
    let path = segment_path(dir.path(), T0);
    let mut bytes = fs::read(&path).expect("read");
    let len = bytes.len() as u64;
    let blocks = scan::blocks(&mut fs::File::open(&path).expect("open"), len).expect("blocks");
    let second = blocks.list[1];
    bytes[second.at as usize..second.at as usize + second.packed_len].fill(0xff);
    fs::write(&path, &bytes).expect("write");
    let scan = scan(dir.path(), &all(), u64::MAX, &mut HashSet::new());
    assert_eq!(scan.items, [v4_flow(4), v4_flow(1)]);
    assert_eq!((scan.scanned, scan.damaged), (4, 2));
}

#[test]
fn segments_with_a_bad_magic_version_or_header_are_skipped() {
    let dir = tempdir();
    write(dir.path(), T0, &[v4_flow(1)]);
    for (minute, bytes) in [
        (T0 + MINUTE_MS, {
            let mut h = record::header(T0 + MINUTE_MS).to_vec();
            h[..4].copy_from_slice(b"NOPE");
            h
        }),
        (T0 + 2 * MINUTE_MS, {
            let mut h = record::header(T0 + 2 * MINUTE_MS).to_vec();
            h[4] = 1;
            let mut rec = [0u8; RECORD_SIZE];
            record::encode(&v4_flow(9), &mut rec);
            h.extend_from_slice(&rec);
            h
        }),
        (T0 + 3 * MINUTE_MS, b"FLW".to_vec()),
    ] {
        fs::write(segment_path(dir.path(), minute), bytes).expect("write");
    }
    fs::write(dir.path().join("notes.txt"), "not a segment").expect("write");
    let mut warned = HashSet::new();
    let scan = scan(dir.path(), &all(), u64::MAX, &mut warned);
    assert_eq!(scan.items, [v4_flow(1)]);
    assert_eq!(warned.len(), 3, "each bad segment warned about once");
}

/// Segments for minutes `0..n` after T0, each holding `per` flows.
fn segments(dir: &Path, n: u64, per: u64) {
    for m in 0..n {
        let flows: Vec<FlowRecord> = (0..per).map(|i| v4_flow(m * 1000 + i)).collect();
        write(dir, T0 + m * MINUTE_MS, &flows);
    }
}

#[test]
fn retention_by_age_deletes_only_segments_older_than_it() {
    let dir = tempdir();
    segments(dir.path(), 10, 2);
    let now = T0 + 10 * MINUTE_MS + 30_000;
    let kept =
        segment::prune(dir.path(), now, Duration::from_secs(180), u64::MAX, None).expect("prune");
    let left: Vec<u64> = segment::list(dir.path())
        .expect("list")
        .iter()
        .map(|s| (s.minute_ms - T0) / MINUTE_MS)
        .collect();
    // Minute 7 ended at 8:00, 2.5 min before now: kept; minute 6 ended 3.5 min before.
    assert_eq!(left, [7, 8, 9]);
    let left: u64 = sizes(dir.path()).iter().sum();
    assert_eq!((kept.files, kept.bytes, kept.deleted), (3, left, 7));
}

#[test]
fn retention_by_size_deletes_oldest_first_but_never_the_open_segment() {
    let dir = tempdir();
    segments(dir.path(), 5, 10);
    let all_sizes = sizes(dir.path());
    let newest_three: u64 = all_sizes[2..].iter().sum();
    let keep = Duration::from_secs(86_400);
    let kept = segment::prune(dir.path(), T0, keep, newest_three, None).expect("prune");
    assert_eq!((kept.files, kept.bytes, kept.deleted), (3, newest_three, 2));
    let oldest = segment::list(dir.path()).expect("list")[0].minute_ms;
    assert_eq!(oldest, T0 + 2 * MINUTE_MS);
    // Only the open segment is left when the bound is smaller than it.
    let open = Some(T0 + 2 * MINUTE_MS);
    let kept = segment::prune(dir.path(), T0, keep, 1, open).expect("prune");
    assert_eq!((kept.files, kept.bytes), (1, all_sizes[2]));
    assert_eq!(
        segment::list(dir.path()).expect("list")[0].minute_ms,
        T0 + 2 * MINUTE_MS
    );
}

#[test]
fn scans_page_filter_and_stop_at_their_budget() {
    let dir = tempdir();
    segments(dir.path(), 3, 40);
    let newest_first: Vec<FlowRecord> = read_all(dir.path());
    assert_eq!(newest_first.first(), Some(&v4_flow(2039)));
    let page = |q: FlowQuery, budget| scan(dir.path(), &q, budget, &mut HashSet::new());

    let p = page(
        FlowQuery {
            offset: 35,
            limit: 10,
            ..all()
        },
        u64::MAX,
    );
    assert_eq!(p.items, newest_first[35..45]);
    assert_eq!((p.total, p.scanned, p.truncated), (120, 120, false));

    let p = page(
        FlowQuery {
            offset: 0,
            limit: 5,
            ..all()
        },
        50,
    );
    assert_eq!(p.items, newest_first[..5]);
    assert_eq!((p.total, p.scanned, p.truncated), (50, 50, true));

    // A port, a time range: v4_flow(n) ends at 1_700_000_030_000 + n.
    let base = 1_700_000_030_000;
    let q = FlowQuery {
        port: Some(40_005),
        from_ms: Some(base + 1000),
        to_ms: Some(base + 1039),
        ..all()
    };
    let p = page(q, u64::MAX);
    assert_eq!(p.items, [v4_flow(1005)]);
    assert_eq!(p.total, 1);
}

#[test]
fn a_scan_from_a_time_stops_before_segments_received_too_early_to_match() {
    let dir = tempdir();
    write(dir.path(), T0, &[v4_flow(1)]);
    write(dir.path(), T0 + 100 * MINUTE_MS, &[v4_flow(2)]);
    let q = FlowQuery {
        from_ms: Some(T0 + 100 * MINUTE_MS),
        ..all()
    };
    let scan = scan(dir.path(), &q, u64::MAX, &mut HashSet::new());
    assert_eq!((scan.scanned, scan.truncated), (1, false));
}

#[test]
fn a_full_queue_drops_whole_batches_and_counts_them() {
    let dir = tempdir();
    let (store, _rx) = RawStore::with_channel(dir.path(), 2);
    for n in 0..5 {
        store.record(vec![v4_flow(n); 3]);
    }
    store.record(Vec::new());
    let stats = store.stats();
    assert_eq!((stats.dropped_batches, stats.dropped_flows), (3, 9));
    assert!(!store.flush(Duration::from_millis(10)), "no room to ask");
}

#[test]
fn the_writer_queue_is_bounded_in_flows_too() {
    let dir = tempdir();
    let (store, _rx) = RawStore::with_channel(dir.path(), 1_000);
    // A batch bigger than the bound is taken by an empty queue; then nothing more fits.
    store.record(vec![v4_flow(1); QUEUE_FLOWS + 1]);
    store.record(vec![v4_flow(2); 1]);
    let stats = store.stats();
    assert_eq!((stats.dropped_batches, stats.dropped_flows), (1, 1));
}

#[test]
fn the_store_writes_flushes_on_request_prunes_on_open_and_counts() {
    let dir = tempdir();
    let flows = dir.path().join("flows");
    segments(&flows, 1, 5); // received in 2023: past any 72 h retention
    let store = RawStore::open(RawConfig {
        dir: flows.clone(),
        keep: Duration::from_secs(72 * 3600),
        max_bytes: 1 << 30,
    })
    .expect("open");
    assert_eq!(store.stats().files, 0, "the old segment was pruned on open");
    assert!(store.query(&all(), u64::MAX).items.is_empty());
    let batch: Vec<FlowRecord> = (0..100).map(v6_flow).collect();
    store.record(batch.clone());
    store.record(vec![v4_flow(7)]);
    assert!(store.flush(Duration::from_secs(10)));
    let mut want = batch;
    want.push(v4_flow(7));
    want.reverse();
    assert_eq!(store.query(&all(), u64::MAX).items, want);
    let stats = store.stats();
    assert_eq!(stats.flows_written, 101);
    assert!(stats.files >= 1, "{stats:?}");
    assert_eq!(stats.bytes, sizes(&flows).iter().sum::<u64>());
    assert_eq!((stats.dropped_batches, stats.write_errors), (0, 0));
}

#[test]
fn transposed_blocks_round_trip_and_version_2_segments_are_still_read() {
    let flows: Vec<FlowRecord> = (0..5).map(v4_flow).collect();
    let mut rows = Vec::new();
    for f in &flows {
        let mut buf = [0u8; RECORD_SIZE];
        record::encode(f, &mut buf);
        rows.extend_from_slice(&buf);
    }
    let mut columns = Vec::new();
    record::transpose(&rows, &mut columns);
    assert_ne!(columns, rows);
    let mut back = vec![0u8; rows.len()];
    record::untranspose(&columns, &mut back);
    assert_eq!(back, rows);

    // A segment as version 2 wrote it: the records one after another in the block.
    let dir = tempdir();
    let mut head = record::header(T0);
    head[4..6].copy_from_slice(&2u16.to_le_bytes());
    let packed = lz4_flex::block::compress(&rows);
    let mut file = head.to_vec();
    file.extend_from_slice(&record::block_header(5, packed.len() as u32));
    file.extend_from_slice(&packed);
    fs::write(segment_path(dir.path(), T0), &file).expect("write");
    let mut newest_first = flows.clone();
    newest_first.reverse();
    assert_eq!(read_all(dir.path()), newest_first);
    // Appending in that minute starts the segment over in the current layout.
    write(dir.path(), T0 + 1, &flows[..2]);
    assert_eq!(read_all(dir.path()), vec![flows[1], flows[0]]);
}
