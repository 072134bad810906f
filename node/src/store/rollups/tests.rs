//! Rollup tiers on real files: periods into minutes, folding into hours and days, late periods,
//! retention, a torn tail, and the writer thread end to end.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proto::event::ServiceKey;

use super::*;

const DAY: u64 = 86_400_000;
const HOUR: u64 = 3_600_000;

fn dep(port: u16) -> DependencyKey {
    DependencyKey {
        client: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        service: ServiceKey {
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            port,
            protocol: 6,
        },
    }
}

fn edge(port: u16, bytes: u64) -> EdgeStats {
    EdgeStats {
        dependency: dep(port),
        traffic: TrafficDelta {
            bytes_to_server: bytes,
            flows: 1,
            ..TrafficDelta::default()
        },
    }
}

fn tiers(dir: &Path) -> Tiers {
    for (name, _, _) in TIERS {
        fs::create_dir_all(dir.join(name)).expect("mkdir");
    }
    Tiers::open(dir).expect("open")
}

/// Bytes to server of one dependency's row in one bucket (none: no row).
fn row(t: &mut Tiers, tier: usize, at: u64, port: u16) -> Option<u64> {
    t.write_buffer();
    let rows = series(&t.dir, tier, &dep(port), at, at).expect("series");
    assert!(rows.len() <= 1);
    rows.first().map(|(_, r)| r.bytes_to_server)
}

#[test]
fn keys_round_trip_and_order_records_by_dependency() {
    let v6 = DependencyKey {
        client: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 7)),
        service: ServiceKey {
            ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
            port: 8443,
            protocol: 17,
        },
    };
    for d in [dep(443), v6] {
        assert_eq!(file::dependency(&file::key(&d)), Some(d));
    }
    assert!(file::key(&dep(80)) < file::key(&dep(443)));
    assert_eq!(file::dependency(&[9u8; file::KEY_SIZE]), None);
}

#[test]
fn periods_add_into_minutes_finished_hours_and_days_fold_and_old_files_are_pruned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tiers = tiers(dir.path());
    let t0 = 100 * DAY;
    // As if the node had been running since t0.
    tiers.set_folded(1, t0);
    tiers.set_folded(2, t0);
    tiers.add_period(t0 + 1_000, &[edge(443, 10), edge(80, 1)]);
    tiers.add_period(t0 + 2_000, &[edge(443, 5)]);
    tiers.add_period(t0 + 61_000, &[edge(443, 7), edge(22, 2)]);
    tiers.add_period(t0 + HOUR + 5_000, &[edge(443, 100)]);
    assert_eq!(row(&mut tiers, 0, t0, 443), Some(15));
    assert_eq!(row(&mut tiers, 0, t0 + 60_000, 443), Some(7));
    assert_eq!(row(&mut tiers, 0, t0 + 60_000, 80), None);
    // Nothing is folded before its hour is over.
    let long = Retention([Duration::from_secs(1_000 * 86_400); 3]);
    tiers.fold(t0 + HOUR + 30_000, &long);
    assert_eq!(row(&mut tiers, 1, t0, 443), None);
    tiers.fold(t0 + HOUR + FOLD_GRACE_MS, &long);
    assert_eq!(row(&mut tiers, 1, t0, 443), Some(22));
    assert_eq!(row(&mut tiers, 1, t0, 80), Some(1));
    assert_eq!(row(&mut tiers, 1, t0, 22), Some(2));
    assert_eq!(row(&mut tiers, 2, t0, 443), None, "the day is not over");
    tiers.fold(t0 + 2 * DAY, &long);
    assert_eq!(row(&mut tiers, 1, t0 + HOUR, 443), Some(100));
    assert_eq!(row(&mut tiers, 2, t0, 443), Some(122));
    assert_eq!(row(&mut tiers, 2, t0, 22), Some(2));
    // Progress survives a restart.
    let reopened = Tiers::open(dir.path()).expect("reopen");
    assert_eq!(reopened.folded, tiers.folded);
    assert_eq!(reopened.folded, [Some(t0 + 2 * DAY - HOUR), Some(t0 + DAY)]);
    // A period arriving after its hour and day were folded still counts in them.
    tiers.add_period(t0 + 3_000, &[edge(443, 1)]);
    assert_eq!(row(&mut tiers, 0, t0, 443), Some(16));
    assert_eq!(row(&mut tiers, 1, t0, 443), Some(23));
    assert_eq!(row(&mut tiers, 2, t0, 443), Some(123));
    // Retention prunes, but never what the next tier has not folded.
    let short = Retention([Duration::from_secs(1); 3]);
    tiers.add_period(t0 + 2 * DAY - 10_000, &[edge(443, 1)]);
    tiers.write_buffer();
    tiers.prune(&short, t0 + 3 * DAY);
    assert_eq!(row(&mut tiers, 0, t0, 443), None);
    assert_eq!(
        row(&mut tiers, 0, t0 + 2 * DAY - 60_000, 443),
        Some(1),
        "its hour is not folded"
    );
    assert_eq!(row(&mut tiers, 1, t0, 443), None);
    assert_eq!(row(&mut tiers, 2, t0, 443), None);
}

#[test]
fn a_fold_merges_many_runs_of_many_dependencies_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tiers = tiers(dir.path());
    let t0 = 200 * DAY;
    tiers.set_folded(1, t0);
    // 60 minutes, each a different (overlapping) slice of 2,000 dependencies, so runs span
    // several chunks and keys interleave across runs.
    let mut truth: BTreeMap<u16, u64> = BTreeMap::new();
    for minute in 0..60u64 {
        let edges: Vec<EdgeStats> = (0..700u64)
            .map(|i| {
                let port = ((minute * 37 + i * 3) % 2_000) as u16 + 1;
                *truth.entry(port).or_default() += minute + i;
                edge(port, minute + i)
            })
            .collect();
        tiers.add_period(t0 + minute * 60_000 + 500, &edges);
    }
    tiers.fold(
        t0 + HOUR + FOLD_GRACE_MS,
        &Retention([Duration::from_secs(86_400); 3]),
    );
    let path = file_path(dir.path(), 1, t0 - t0 % DAY);
    let runs = file::runs(&path).expect("runs");
    assert_eq!(runs.len(), 1);
    let f = Arc::new(File::open(&path).expect("open"));
    let merged: Vec<(Key, Row)> = runs
        .into_iter()
        .flat_map(|(_, chunks)| RunReader::new(f.clone(), chunks))
        .collect();
    assert_eq!(merged.len(), truth.len());
    for ((key, row), (port, bytes)) in merged.iter().zip(&truth) {
        assert_eq!(file::dependency(key), Some(dep(*port)));
        assert_eq!(row.bytes_to_server, *bytes);
    }
}

#[test]
fn a_torn_tail_is_cut_and_appending_carries_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tiers = tiers(dir.path());
    let t0 = 300 * DAY;
    tiers.add_period(t0, &[edge(443, 10)]);
    tiers.write_buffer();
    let path = file_path(dir.path(), 0, t0);
    let whole = fs::metadata(&path).expect("meta").len();
    // A crash in the middle of the next append, then a restart.
    drop(tiers);
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    f.write_all(b"FLR1 half a header").expect("write");
    drop(f);
    assert_eq!(file::chunks(&path).expect("chunks").1, whole);
    let mut tiers = Tiers::open(dir.path()).expect("reopen");
    assert_eq!(row(&mut tiers, 0, t0, 443), Some(10));
    tiers.add_period(t0 + 1_000, &[edge(443, 5)]);
    assert_eq!(row(&mut tiers, 0, t0, 443), Some(15));
    assert_eq!(file::runs(&path).expect("runs").len(), 2);
    let runs_end = file::chunks(&path).expect("chunks").1;
    assert_eq!(
        fs::metadata(&path).expect("meta").len(),
        runs_end,
        "the torn tail was cut"
    );
    // A flipped byte inside a chunk fails its check: that run is skipped, not misread.
    let mut bytes = fs::read(&path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&path, bytes).expect("write");
    assert_eq!(row(&mut tiers, 0, t0, 443), Some(10));
}

#[test]
fn the_writer_thread_gathers_batches_and_flush_writes_them_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rollups =
        Rollups::open(dir.path(), Retention([Duration::from_secs(86_400); 3])).expect("open");
    let now = actors::now_ms();
    rollups.record(now, vec![edge(443, 10), edge(80, 3)]);
    rollups.record(now, vec![edge(443, 5)]);
    assert!(rollups.flush(Duration::from_secs(10)));
    let minute = now - now % 60_000;
    let rows = rollups
        .series(0, &dep(443), minute, minute)
        .expect("series");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1.bytes_to_server, 15);
    assert_eq!(rows[0].1.flows, 2);
    assert_eq!(rollups.dropped(), 0);
}
