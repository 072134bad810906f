//! FlowLens actors (ractor): the collector reads UDP and decodes, the aggregator buckets flows and
//! infers who is client and who is server, the graph keeps the dependency map and emits change
//! events to the event log. Bounded lanes sit between them: ractor mailboxes are unbounded.

pub mod advisor;
pub mod aggregator;
pub mod analysis;
pub mod collector;
mod committer;
pub mod graph;
pub mod lane;
pub mod ports;
pub mod relay;
pub mod sequence;

use std::future::Future;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

use proto::event::{EdgeStats, EventBatch};
use proto::FlowRecord;

/// Where the graph actor commits its change events: the node's event log.
pub trait EventSink: Send + Sync + 'static {
    /// Commits a batch; resolves to its log index once applied, or an error saying why not. The
    /// batch is borrowed so that a refused one can be retried without a copy.
    fn commit<'a>(
        &'a self,
        batch: &'a EventBatch,
    ) -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send + 'a>>;
}

/// Where committed per-dependency traffic goes for the 1 min / 1 h / 1 d rollups (local to the
/// node, never replicated).
pub trait RollupSink: Send + Sync + 'static {
    /// Records one stats period's traffic, committed at `at_ms`; the edges are handed over.
    fn record(&self, at_ms: u64, edges: Vec<EdgeStats>);
}

/// Where aggregated flow records go to be kept raw on disk (local to the node, never
/// replicated). Must not block: a sink that falls behind drops and counts.
pub trait RawSink: Send + Sync + 'static {
    /// Hands over one batch of flow records, as decoded.
    fn record(&self, flows: Vec<FlowRecord>);
}

/// A hash map with foldhash: several times faster than the standard SipHash on the small keys
/// of the per-flow path, and seeded per process, so crafted flows cannot force collisions.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// A hash set with foldhash (see [`FastMap`]).
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Wall-clock time, UTC ms since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
