//! The on-disk raw flow tier (local, never replicated): every aggregated flow batch is handed
//! over a bounded channel to a writer thread that appends it to the segment of its minute of
//! receipt under `<data_dir>/flows/`, in LZ4-compressed blocks of fixed-size records (a full
//! channel drops the batch and counts it: the aggregator never waits on disk). The writer
//! writes its pending block out at least every second and when a segment closes, and prunes
//! segments past `retention.raw` or beyond `retention.raw_max_bytes` on start and every
//! minute. The flow explorer reads it newest first, with a bounded scan.

mod record;
mod scan;
mod segment;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actors::aggregator::FlowQuery;
use actors::{now_ms, RawSink};
use proto::FlowRecord;

pub use record::RECORD_SIZE;
pub use scan::Scan;

use super::StoreError;
use segment::{SegmentWriter, Written};

/// Batches that may wait for the writer before new ones are dropped.
pub const QUEUE_BATCHES: usize = 256;
/// Flows those batches may hold (144 bytes each: about 19 MB) before new ones are dropped;
/// a batch finding the queue empty is always taken.
pub const QUEUE_FLOWS: usize = 131_072;
/// Most time buffered records wait before they are written to their file.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often retention runs (also whenever the size bound is exceeded, at most once a second).
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// At most one write-error warning per this long.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Where the raw tier lives and how long it keeps flows.
#[derive(Clone, Debug)]
pub struct RawConfig {
    /// The segment directory (`<data_dir>/flows`).
    pub dir: PathBuf,
    /// Segments whose minute ended longer ago than this are deleted.
    pub keep: Duration,
    /// Oldest segments are deleted while all of them together are larger than this.
    pub max_bytes: u64,
}

/// The raw tier's counters, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawStats {
    /// Bytes in segment files.
    pub bytes: u64,
    /// Segment files.
    pub files: u64,
    /// Flows written since start (in blocks on disk).
    pub flows_written: u64,
    /// Batches dropped because the writer fell behind.
    pub dropped_batches: u64,
    /// Flows in them.
    pub dropped_flows: u64,
    /// Flows lost to write errors (disk full, I/O).
    pub write_errors: u64,
    /// Flows not written because the disk guard holds raw writes (too little free space).
    pub guarded_flows: u64,
}

#[derive(Default)]
struct Counters {
    bytes: AtomicU64,
    files: AtomicU64,
    flows_written: AtomicU64,
    dropped_batches: AtomicU64,
    dropped_flows: AtomicU64,
    write_errors: AtomicU64,
    guarded_flows: AtomicU64,
    /// Flows waiting for the writer.
    queued_flows: std::sync::atomic::AtomicUsize,
}

/// What the writer thread is asked to do.
enum Command {
    /// Append flows received at this time (UTC ms).
    Batch(u64, Vec<FlowRecord>),
    /// Write buffered records out, then answer.
    Flush(SyncSender<()>),
}

/// The raw flow tier: the aggregator's [`RawSink`] and the flow explorer's disk reader.
pub struct RawStore {
    dir: PathBuf,
    tx: SyncSender<Command>,
    counters: Arc<Counters>,
    warned: Mutex<HashSet<PathBuf>>,
    /// Set by the disk guard: raw flows are not written while free space is low.
    held: std::sync::atomic::AtomicBool,
}

impl RawStore {
    /// Opens (creates) the segment directory, applies retention, and starts the writer.
    pub fn open(config: RawConfig) -> Result<Arc<RawStore>, StoreError> {
        let dir = config.dir.clone();
        let io = |what: &str, e: std::io::Error| StoreError::Raw {
            path: dir.clone(),
            why: format!("{what}: {e}"),
        };
        let segments = SegmentWriter::new(&config.dir).map_err(|e| io("cannot create", e))?;
        let (store, rx) = RawStore::with_channel(&config.dir, QUEUE_BATCHES);
        let kept = segment::prune(&config.dir, now_ms(), config.keep, config.max_bytes, None)
            .map_err(|e| io("cannot apply retention", e))?;
        store.counters.files.store(kept.files, Ordering::Relaxed);
        store.counters.bytes.store(kept.bytes, Ordering::Relaxed);
        let counters = store.counters.clone();
        std::thread::Builder::new()
            .name("raw-flows".into())
            .spawn(move || writer(segments, rx, config, counters))
            .map_err(|e| io("cannot start the writer", e))?;
        Ok(Arc::new(store))
    }

    /// A store whose writer end is `rx`, not started.
    fn with_channel(dir: &Path, queue: usize) -> (RawStore, Receiver<Command>) {
        let (tx, rx) = mpsc::sync_channel(queue);
        let store = RawStore {
            dir: dir.to_path_buf(),
            tx,
            counters: Arc::default(),
            warned: Mutex::default(),
            held: std::sync::atomic::AtomicBool::new(false),
        };
        (store, rx)
    }

    /// The counters.
    pub fn stats(&self) -> RawStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RawStats {
            bytes: get(&c.bytes),
            files: get(&c.files),
            flows_written: get(&c.flows_written),
            dropped_batches: get(&c.dropped_batches),
            dropped_flows: get(&c.dropped_flows),
            write_errors: get(&c.write_errors),
            guarded_flows: get(&c.guarded_flows),
        }
    }

    /// The segment directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Holds (or resumes) raw writes: the disk guard's switch.
    pub fn hold(&self, held: bool) {
        self.held.store(held, Ordering::Relaxed);
    }

    /// Whether raw writes are held.
    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::Relaxed)
    }

    /// Has the writer write out what it has buffered, waiting at most `timeout`; false when it
    /// is too busy to ask (its queue is full) or did not answer in time. Blocks: call it from a
    /// blocking context.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (ack, done) = mpsc::sync_channel(1);
        self.tx.try_send(Command::Flush(ack)).is_ok() && done.recv_timeout(timeout).is_ok()
    }

    /// Flows matching `q` newest first (by receipt), the page `q.offset .. q.offset + q.limit`,
    /// reading at most `budget` records. Reads files: call it from a blocking context.
    pub fn query(&self, q: &FlowQuery, budget: u64) -> Scan {
        let mut warned = match self.warned.lock() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        };
        scan::scan(&self.dir, q, budget, &mut warned)
    }
}

impl RawSink for RawStore {
    fn record(&self, flows: Vec<FlowRecord>) {
        if flows.is_empty() {
            return;
        }
        if self.held.load(Ordering::Relaxed) {
            self.counters
                .guarded_flows
                .fetch_add(flows.len() as u64, Ordering::Relaxed);
            return;
        }
        let c = &self.counters;
        let n = flows.len();
        let drop = || {
            c.dropped_batches.fetch_add(1, Ordering::Relaxed);
            c.dropped_flows.fetch_add(n as u64, Ordering::Relaxed);
        };
        let room = c
            .queued_flows
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q == 0 || q.saturating_add(n) <= QUEUE_FLOWS).then_some(q + n)
            });
        if room.is_err() {
            return drop();
        }
        if self.tx.try_send(Command::Batch(now_ms(), flows)).is_err() {
            c.queued_flows.fetch_sub(n, Ordering::AcqRel);
            drop();
        }
    }
}

/// The writer thread: appends batches, flushes every second, prunes every minute (and sooner
/// when the size bound is exceeded); flushes and ends when the store is dropped.
fn writer(
    mut segments: SegmentWriter,
    rx: Receiver<Command>,
    config: RawConfig,
    counters: Arc<Counters>,
) {
    let mut last_flush = Instant::now();
    let mut last_prune = Instant::now();
    let mut last_warning: Option<Instant> = None;
    let mut warn = |what: &str, e: &std::io::Error| {
        if last_warning.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            last_warning = Some(Instant::now());
            tracing::warn!(dir = %config.dir.display(), error = %e, "raw flows: {what}");
        }
    };
    let count = |w: Written| {
        counters.bytes.fetch_add(w.bytes, Ordering::Relaxed);
        counters.files.fetch_add(w.segments, Ordering::Relaxed);
        counters
            .flows_written
            .fetch_add(w.records, Ordering::Relaxed);
        counters.write_errors.fetch_add(w.lost, Ordering::Relaxed);
    };
    loop {
        match rx.recv_timeout(FLUSH_EVERY) {
            Ok(Command::Batch(at, flows)) => {
                if let Err(e) = segments.append(at, &flows) {
                    warn("cannot write", &e);
                }
                counters
                    .queued_flows
                    .fetch_sub(flows.len(), Ordering::AcqRel);
            }
            Ok(Command::Flush(ack)) => {
                if let Err(e) = segments.flush() {
                    warn("cannot flush", &e);
                }
                last_flush = Instant::now();
                count(segments.take_written());
                let _ = ack.send(());
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if let Err(e) = segments.close() {
                    warn("cannot flush", &e);
                }
                count(segments.take_written());
                return;
            }
        }
        if last_flush.elapsed() >= FLUSH_EVERY {
            if let Err(e) = segments.flush() {
                warn("cannot flush", &e);
            }
            last_flush = Instant::now();
        }
        count(segments.take_written());
        let over = counters.bytes.load(Ordering::Relaxed) > config.max_bytes;
        let due = last_prune.elapsed() >= PRUNE_EVERY;
        if due || (over && last_prune.elapsed() >= FLUSH_EVERY) {
            last_prune = Instant::now();
            let open = segments.open_minute();
            match segment::prune(&config.dir, now_ms(), config.keep, config.max_bytes, open) {
                Ok(kept) => {
                    counters.files.store(kept.files, Ordering::Relaxed);
                    counters.bytes.store(kept.bytes, Ordering::Relaxed);
                }
                Err(e) => warn("cannot apply retention", &e),
            }
        }
    }
}

#[cfg(test)]
mod tests;
