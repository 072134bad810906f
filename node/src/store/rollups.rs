//! Rollups of dependency traffic per minute, hour and day in local sled trees (never replicated),
//! with TTL retention. The aggregator hands each period's edges over a bounded channel to a
//! writer thread (a full channel drops the period and counts it: ingest never waits on disk);
//! the writer folds them into the current minute in memory, writes the minute when it closes and
//! merges it into the hour and day rows, and prunes rows older than their retention.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use actors::aggregator::RollupSink;
use proto::event::{DependencyKey, EdgeStats, TrafficDelta};

use super::{keys, StoreError};

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
        let (tx, rx) = mpsc::sync_channel(256);
        let writer_trees = trees.clone();
        std::thread::Builder::new()
            .name("rollups".into())
            .spawn(move || writer(writer_trees, rx, retention))
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
    fn record(&self, at_ms: u64, edges: &[EdgeStats]) {
        match self.tx.try_send((at_ms, edges.to_vec())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn writer(trees: [sled::Tree; 3], rx: Receiver<(u64, Vec<EdgeStats>)>, retention: Retention) {
    let mut minute: u64 = 0;
    let mut rows: HashMap<DependencyKey, Row> = HashMap::new();
    let mut last_prune = 0u64;
    loop {
        let got = rx.recv_timeout(Duration::from_secs(5));
        let now = actors::now_ms();
        let (at, edges) = match got {
            Ok(v) => v,
            Err(mpsc::RecvTimeoutError::Timeout) => (now, Vec::new()),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                close_minute(&trees, minute, &mut rows);
                return;
            }
        };
        let bucket = at - at % 60_000;
        if bucket != minute {
            close_minute(&trees, minute, &mut rows);
            minute = bucket;
        }
        for e in &edges {
            rows.entry(e.dependency).or_default().add(&e.traffic);
        }
        if now.saturating_sub(last_prune) > 60_000 {
            last_prune = now;
            prune(&trees, &retention, now);
        }
    }
}

fn close_minute(trees: &[sled::Tree; 3], minute: u64, rows: &mut HashMap<DependencyKey, Row>) {
    if rows.is_empty() {
        return;
    }
    for (tier, (tree, (_, width))) in trees.iter().zip(TIERS).enumerate() {
        let bucket = minute - minute % width;
        for (dep, row) in rows.iter() {
            let key = row_key(bucket, dep);
            let merged = if tier == 0 {
                *row
            } else {
                let mut old = tree
                    .get(&key)
                    .ok()
                    .flatten()
                    .map(|v| Row::from_bytes(&v))
                    .unwrap_or_default();
                old.merge(row);
                old
            };
            if let Err(e) = tree.insert(key, &merged.to_bytes()[..]) {
                tracing::warn!(error = %e, "rollup write failed");
            }
        }
    }
    rows.clear();
}

fn prune(trees: &[sled::Tree; 3], retention: &Retention, now: u64) {
    for (tree, keep) in trees.iter().zip(retention.0) {
        let cutoff = now.saturating_sub(keep.as_millis() as u64);
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

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use proto::event::ServiceKey;

    use super::*;

    #[test]
    fn periods_fold_into_minute_hour_and_day_rows_and_old_rows_are_pruned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("sled");
        let dep = DependencyKey {
            client: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            service: ServiceKey {
                ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                port: 443,
                protocol: 6,
            },
        };
        let edge = |bytes| EdgeStats {
            dependency: dep,
            traffic: TrafficDelta {
                bytes_to_server: bytes,
                flows: 1,
                ..TrafficDelta::default()
            },
        };
        let trees = [
            db.open_tree(TIERS[0].0).expect("tree"),
            db.open_tree(TIERS[1].0).expect("tree"),
            db.open_tree(TIERS[2].0).expect("tree"),
        ];
        let (tx, rx) = mpsc::sync_channel(16);
        let day = 86_400_000u64;
        let t0 = 100 * day;
        tx.send((t0 + 1_000, vec![edge(10)])).expect("send");
        tx.send((t0 + 2_000, vec![edge(5)])).expect("send");
        tx.send((t0 + 61_000, vec![edge(7)])).expect("send");
        drop(tx);
        let long = Duration::from_secs(1_000 * 86_400);
        writer(trees.clone(), rx, Retention([long, long, long]));
        let row = |tier: usize, at: u64| {
            trees[tier]
                .get(row_key(at, &dep))
                .expect("read")
                .map(|v| Row::from_bytes(&v).bytes_to_server)
        };
        assert_eq!(row(0, t0), Some(15));
        assert_eq!(row(0, t0 + 60_000), Some(7));
        assert_eq!(row(1, t0), Some(22));
        assert_eq!(row(2, t0), Some(22));
        prune(
            &trees,
            &Retention([Duration::from_secs(1); 3]),
            t0 + 2 * day,
        );
        assert!(trees.iter().all(|t| t.is_empty()));
    }
}
