//! Rollups of dependency traffic per minute, hour and day in local sled trees (never replicated),
//! with TTL retention. The graph hands each committed stats period over a bounded channel to a
//! writer thread (a full channel drops the period and counts it: nothing upstream waits on disk).
//! The writer adds each period into its minute rows; once an hour is over it sums the hour's
//! minute rows into hour rows by merging the sixty minutes' key-ordered runs, and days likewise
//! from hours, so no tier is held in memory. How far hours and days are folded is recorded, so a
//! restart folds what it missed, and retention never prunes rows that are not folded yet.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use actors::RollupSink;
use proto::event::{DependencyKey, EdgeStats, TrafficDelta};

use super::{keys, StoreError};

/// Periods that may wait for the writer (each at most `max_edges_per_event` edges).
const QUEUE_PERIODS: usize = 64;
/// How long after an hour ends its minute rows are folded (periods committed just before the
/// hour ended may still be on their way).
const FOLD_GRACE_MS: u64 = 60_000;
/// The tree recording how far hours and days are folded.
const META_TREE: &str = "rollup_meta";

/// The rollup tiers: tree name, bucket width in ms.
pub const TIERS: [(&str, u64); 3] = [
    ("rollup_1m", 60_000),
    ("rollup_1h", 3_600_000),
    ("rollup_1d", 86_400_000),
];

/// Retention per tier, in the order of [`TIERS`].
#[derive(Clone, Copy, Debug)]
pub struct Retention(pub [Duration; 3]);

/// One rollup row's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Row {
    /// Bytes client → server.
    pub bytes_to_server: u64,
    /// Bytes server → client.
    pub bytes_to_client: u64,
    /// Packets client → server.
    pub packets_to_server: u64,
    /// Packets server → client.
    pub packets_to_client: u64,
    /// Flow records.
    pub flows: u64,
}

impl Row {
    fn add(&mut self, t: &TrafficDelta) {
        self.bytes_to_server += t.bytes_to_server;
        self.bytes_to_client += t.bytes_to_client;
        self.packets_to_server += t.packets_to_server;
        self.packets_to_client += t.packets_to_client;
        self.flows += t.flows;
    }

    fn merge(&mut self, o: &Row) {
        self.bytes_to_server += o.bytes_to_server;
        self.bytes_to_client += o.bytes_to_client;
        self.packets_to_server += o.packets_to_server;
        self.packets_to_client += o.packets_to_client;
        self.flows += o.flows;
    }

    fn to_bytes(self) -> [u8; 40] {
        let mut out = [0u8; 40];
        let fields = [
            self.bytes_to_server,
            self.bytes_to_client,
            self.packets_to_server,
            self.packets_to_client,
            self.flows,
        ];
        for (chunk, v) in out.chunks_exact_mut(8).zip(fields) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    fn from_bytes(b: &[u8]) -> Row {
        let f = |i: usize| {
            b.get(i * 8..i * 8 + 8)
                .and_then(|s| <[u8; 8]>::try_from(s).ok())
                .map_or(0, u64::from_le_bytes)
        };
        Row {
            bytes_to_server: f(0),
            bytes_to_client: f(1),
            packets_to_server: f(2),
            packets_to_client: f(3),
            flows: f(4),
        }
    }
}

fn row_key(bucket_ms: u64, dep: &DependencyKey) -> Vec<u8> {
    let mut k = bucket_ms.to_be_bytes().to_vec();
    k.extend_from_slice(&keys::dependency(dep));
    k
}

/// The rollup store and its writer thread.
pub struct Rollups {
    trees: [sled::Tree; 3],
    tx: SyncSender<(u64, Vec<EdgeStats>)>,
    dropped: Arc<AtomicU64>,
}

impl Rollups {
    /// Opens the tiers in `db` and starts the writer.
    pub fn open(db: &sled::Db, retention: Retention) -> Result<Arc<Rollups>, StoreError> {
        let trees = [
            db.open_tree(TIERS[0].0)?,
            db.open_tree(TIERS[1].0)?,
            db.open_tree(TIERS[2].0)?,
        ];
        let meta = db.open_tree(META_TREE)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE_PERIODS);
        let writer_trees = trees.clone();
        std::thread::Builder::new()
            .name("rollups".into())
            .spawn(move || writer(writer_trees, meta, rx, retention))
            .map_err(|e| StoreError::BadSnapshot(format!("cannot start rollup writer: {e}")))?;
        Ok(Arc::new(Rollups {
            trees,
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        }))
    }

    /// Periods dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The rows of one tier for one dependency between two times.
    pub fn series(
        &self,
        tier: usize,
        dep: &DependencyKey,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<(u64, Row)>, StoreError> {
        let Some(tree) = self.trees.get(tier) else {
            return Ok(Vec::new());
        };
        let want = keys::dependency(dep);
        let mut out = Vec::new();
        let end = to_ms.saturating_add(1).to_be_bytes();
        for item in tree.range(from_ms.to_be_bytes()..end) {
            let (k, v) = item?;
            if k.get(8..) == Some(want.as_slice()) {
                let at = k
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u64::from_be_bytes);
                out.push((at, Row::from_bytes(&v)));
            }
        }
        Ok(out)
    }
}

impl RollupSink for Rollups {
    fn record(&self, at_ms: u64, edges: Vec<EdgeStats>) {
        match self.tx.try_send((at_ms, edges)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The writer's view of the trees: the three tiers and how far hours and days are folded.
struct Tiers {
    trees: [sled::Tree; 3],
    meta: sled::Tree,
}

impl Tiers {
    /// The start of the first hour (tier 1) or day (tier 2) not folded yet.
    fn folded(&self, tier: usize) -> Option<u64> {
        let v = self.meta.get(TIERS[tier].0).ok().flatten()?;
        <[u8; 8]>::try_from(v.as_ref()).ok().map(u64::from_be_bytes)
    }

    fn set_folded(&self, tier: usize, next: u64) {
        if let Err(e) = self.meta.insert(TIERS[tier].0, &next.to_be_bytes()) {
            tracing::warn!(error = %e, "rollup progress not saved");
        }
    }

    /// Adds one period's traffic to its minute rows; a period that arrives after its hour (or
    /// day) was folded is added to that hour's (and day's) rows too.
    fn add_period(&self, at: u64, edges: &[EdgeStats]) {
        let minute = at - at % TIERS[0].1;
        let late: Vec<usize> = (1..3)
            .filter(|&t| self.folded(t).is_some_and(|next| minute < next))
            .collect();
        for tier in std::iter::once(0).chain(late) {
            let tree = &self.trees[tier];
            let bucket = minute - minute % TIERS[tier].1;
            let mut batch = sled::Batch::default();
            for e in edges {
                let key = row_key(bucket, &e.dependency);
                let mut row = tree
                    .get(&key)
                    .ok()
                    .flatten()
                    .map(|v| Row::from_bytes(&v))
                    .unwrap_or_default();
                row.add(&e.traffic);
                batch.insert(key, &row.to_bytes()[..]);
            }
            if let Err(e) = tree.apply_batch(batch) {
                tracing::warn!(error = %e, "rollup write failed");
            }
        }
    }

    /// Folds every finished hour into hour rows and every finished day into day rows.
    fn fold(&self, now: u64, retention: &Retention) {
        for tier in 1..3 {
            let width = TIERS[tier].1;
            let source_width = TIERS[tier - 1].1;
            // The source tier must be folded past the whole unit (hours: just time).
            let ready_until = if tier == 1 {
                now.saturating_sub(FOLD_GRACE_MS)
            } else {
                self.folded(1).unwrap_or(0)
            };
            let oldest = now.saturating_sub(retention.0[tier - 1].as_millis() as u64);
            let mut next = match self.folded(tier) {
                Some(n) => n.max(oldest - oldest % width),
                // First start: nothing older to fold.
                None => now - now % width,
            };
            while next + width <= ready_until {
                let runs: Vec<u64> = (0..width / source_width)
                    .map(|i| next + i * source_width)
                    .collect();
                merge_runs(&self.trees[tier - 1], &self.trees[tier], next, &runs);
                next += width;
            }
            self.set_folded(tier, next);
        }
    }

    /// Drops rows past their retention, but never rows the next tier has not folded yet.
    fn prune(&self, retention: &Retention, now: u64) {
        for (tier, (tree, keep)) in self.trees.iter().zip(retention.0).enumerate() {
            let mut cutoff = now.saturating_sub(keep.as_millis() as u64);
            if tier < 2 {
                cutoff = cutoff.min(self.folded(tier + 1).unwrap_or(0));
            }
            let old: Vec<sled::IVec> = tree
                .range(..cutoff.to_be_bytes())
                .keys()
                .filter_map(Result::ok)
                .collect();
            for k in old {
                let _ = tree.remove(k);
            }
        }
    }
}

/// Sums the rows of the source buckets `runs` into rows of bucket `at` in `target`: each bucket's
/// rows are ordered by dependency key, so a k-way merge visits every dependency once, in order,
/// with one row per run in memory.
fn merge_runs(source: &sled::Tree, target: &sled::Tree, at: u64, runs: &[u64]) {
    let mut iters: Vec<sled::Iter> = runs
        .iter()
        .map(|b| source.scan_prefix(b.to_be_bytes()))
        .collect();
    let mut heap = BinaryHeap::new();
    let mut rows: Vec<Row> = vec![Row::default(); iters.len()];
    let mut advance =
        |i: usize, heap: &mut BinaryHeap<Reverse<(Vec<u8>, usize)>>, rows: &mut Vec<Row>| {
            if let Some(Ok((k, v))) = iters.get_mut(i).and_then(Iterator::next) {
                if let (Some(dep), Some(slot)) = (k.get(8..), rows.get_mut(i)) {
                    *slot = Row::from_bytes(&v);
                    heap.push(Reverse((dep.to_vec(), i)));
                }
            }
        };
    for i in 0..runs.len() {
        advance(i, &mut heap, &mut rows);
    }
    let mut batch = sled::Batch::default();
    let mut pending = 0usize;
    while let Some(Reverse((dep, i))) = heap.pop() {
        let mut sum = rows.get(i).copied().unwrap_or_default();
        advance(i, &mut heap, &mut rows);
        while let Some(Reverse((next, _))) = heap.peek() {
            if *next != dep {
                break;
            }
            if let Some(Reverse((_, j))) = heap.pop() {
                sum.merge(&rows.get(j).copied().unwrap_or_default());
                advance(j, &mut heap, &mut rows);
            }
        }
        let mut key = at.to_be_bytes().to_vec();
        key.extend_from_slice(&dep);
        batch.insert(key, &sum.to_bytes()[..]);
        pending += 1;
        if pending == 4096 {
            if let Err(e) = target.apply_batch(std::mem::take(&mut batch)) {
                tracing::warn!(error = %e, "rollup write failed");
            }
            pending = 0;
        }
    }
    if let Err(e) = target.apply_batch(batch) {
        tracing::warn!(error = %e, "rollup write failed");
    }
}

fn writer(
    trees: [sled::Tree; 3],
    meta: sled::Tree,
    rx: Receiver<(u64, Vec<EdgeStats>)>,
    retention: Retention,
) {
    let tiers = Tiers { trees, meta };
    let mut last_housekeeping = 0u64;
    loop {
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok((at, edges)) => tiers.add_period(at, &edges),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let now = actors::now_ms();
        if now.saturating_sub(last_housekeeping) > 60_000 {
            last_housekeeping = now;
            tiers.fold(now, &retention);
            tiers.prune(&retention, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use proto::event::ServiceKey;

    use super::*;

    #[test]
    fn periods_add_into_minutes_finished_hours_and_days_fold_and_old_rows_are_pruned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("sled");
        let dep = |port| DependencyKey {
            client: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            service: ServiceKey {
                ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                port,
                protocol: 6,
            },
        };
        let edge = |port, bytes| EdgeStats {
            dependency: dep(port),
            traffic: TrafficDelta {
                bytes_to_server: bytes,
                flows: 1,
                ..TrafficDelta::default()
            },
        };
        let tiers = Tiers {
            trees: [
                db.open_tree(TIERS[0].0).expect("tree"),
                db.open_tree(TIERS[1].0).expect("tree"),
                db.open_tree(TIERS[2].0).expect("tree"),
            ],
            meta: db.open_tree(META_TREE).expect("tree"),
        };
        let day = 86_400_000u64;
        let hour = 3_600_000u64;
        let t0 = 100 * day;
        // As if the node had been running since t0.
        tiers.set_folded(1, t0);
        tiers.set_folded(2, t0);
        tiers.add_period(t0 + 1_000, &[edge(443, 10), edge(80, 1)]);
        tiers.add_period(t0 + 2_000, &[edge(443, 5)]);
        tiers.add_period(t0 + 61_000, &[edge(443, 7), edge(22, 2)]);
        tiers.add_period(t0 + hour + 5_000, &[edge(443, 100)]);
        let row = |tier: usize, at: u64, port| {
            tiers.trees[tier]
                .get(row_key(at, &dep(port)))
                .expect("read")
                .map(|v| Row::from_bytes(&v).bytes_to_server)
        };
        assert_eq!(row(0, t0, 443), Some(15));
        assert_eq!(row(0, t0 + 60_000, 443), Some(7));
        // Nothing is folded before its hour is over.
        let long = Duration::from_secs(1_000 * 86_400);
        tiers.fold(t0 + hour + 30_000, &Retention([long; 3]));
        assert_eq!(row(1, t0, 443), None);
        tiers.fold(t0 + hour + FOLD_GRACE_MS, &Retention([long; 3]));
        assert_eq!(row(1, t0, 443), Some(22));
        assert_eq!(row(1, t0, 80), Some(1));
        assert_eq!(row(1, t0, 22), Some(2));
        assert_eq!(row(2, t0, 443), None, "the day is not over");
        tiers.fold(t0 + 2 * day, &Retention([long; 3]));
        assert_eq!(row(1, t0 + hour, 443), Some(100));
        assert_eq!(row(2, t0, 443), Some(122));
        assert_eq!(row(2, t0, 22), Some(2));
        // A period arriving after its hour and day were folded still counts in them.
        tiers.add_period(t0 + 3_000, &[edge(443, 1)]);
        assert_eq!(row(0, t0, 443), Some(16));
        assert_eq!(row(1, t0, 443), Some(23));
        assert_eq!(row(2, t0, 443), Some(123));
        // Retention prunes, but never what the next tier has not folded.
        let short = Retention([Duration::from_secs(1); 3]);
        tiers.add_period(t0 + 2 * day - 10_000, &[edge(443, 1)]);
        tiers.prune(&short, t0 + 3 * day);
        assert_eq!(row(0, t0, 443), None);
        assert_eq!(
            row(0, t0 + 2 * day - 60_000, 443),
            Some(1),
            "its hour is not folded"
        );
        assert_eq!(row(1, t0, 443), None);
        assert_eq!(row(2, t0, 443), None);
    }
}
