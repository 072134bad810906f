//! Rollups of dependency traffic per minute, hour and day in local files under
//! `<data_dir>/rollups` (never replicated), with TTL retention. The graph hands each committed
//! stats batch over a bounded channel to a writer thread (a full channel drops it and counts it:
//! nothing upstream waits on disk). The writer gathers a minute's traffic, sorts it by dependency
//! and appends it as a run to the minute tier's file for that hour; once an hour is over it sums
//! the hour's runs into one hour run by a k-way merge, and days likewise from hours, so no tier is
//! held in memory and stored rows cost no memory at all. How far hours and days are folded is
//! recorded, so a restart folds what it missed, and retention (whole files) never deletes what
//! the next tier has not folded yet.

mod file;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use actors::RollupSink;
use proto::event::{DependencyKey, EdgeStats, TrafficDelta};

use super::StoreError;
use file::{Appender, Key, RunReader};

/// Stats batches that may wait for the writer (each at most `max_edges_per_event` edges).
const QUEUE_PERIODS: usize = 64;
/// How long after an hour ends its minute runs are folded (periods committed just before the
/// hour ended may still be on their way).
const FOLD_GRACE_MS: u64 = 60_000;
/// Records gathered for one minute before they are written as a run (bounds the writer's
/// memory: about 6 MB).
const MAX_BUFFERED: usize = 65_536;
/// Buffered records are written when no batch came for this long.
const IDLE_WRITE: Duration = Duration::from_secs(5);
/// The file recording how far hours and days are folded.
const FOLDED_FILE: &str = "folded";
const EXTENSION: &str = "rlp";

/// The rollup tiers: directory, bucket width, file width (all ms).
pub const TIERS: [(&str, u64, u64); 3] = [
    ("1m", 60_000, 3_600_000),
    ("1h", 3_600_000, 86_400_000),
    ("1d", 86_400_000, 86_400_000),
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
    fn from_traffic(t: &TrafficDelta) -> Row {
        Row {
            bytes_to_server: t.bytes_to_server,
            bytes_to_client: t.bytes_to_client,
            packets_to_server: t.packets_to_server,
            packets_to_client: t.packets_to_client,
            flows: t.flows,
        }
    }

    fn merge(&mut self, o: &Row) {
        self.bytes_to_server = self.bytes_to_server.saturating_add(o.bytes_to_server);
        self.bytes_to_client = self.bytes_to_client.saturating_add(o.bytes_to_client);
        self.packets_to_server = self.packets_to_server.saturating_add(o.packets_to_server);
        self.packets_to_client = self.packets_to_client.saturating_add(o.packets_to_client);
        self.flows = self.flows.saturating_add(o.flows);
    }
}

/// What the writer is asked to do.
enum Command {
    /// A committed stats batch: its time (UTC ms) and edges.
    Period(u64, Vec<EdgeStats>),
    /// Write what is buffered, then answer.
    Flush(SyncSender<()>),
}

/// The rollup store and its writer thread.
pub struct Rollups {
    dir: PathBuf,
    tx: SyncSender<Command>,
    dropped: Arc<AtomicU64>,
}

impl Rollups {
    /// Opens (creates) the tier directories under `dir` and starts the writer.
    pub fn open(dir: &Path, retention: Retention) -> Result<Arc<Rollups>, StoreError> {
        let io = |what: &str, e: io::Error| StoreError::Rollups {
            path: dir.to_path_buf(),
            why: format!("{what}: {e}"),
        };
        for (name, _, _) in TIERS {
            fs::create_dir_all(dir.join(name)).map_err(|e| io("cannot create", e))?;
        }
        let tiers = Tiers::open(dir).map_err(|e| io("cannot read fold progress", e))?;
        let (tx, rx) = mpsc::sync_channel(QUEUE_PERIODS);
        std::thread::Builder::new()
            .name("rollups".into())
            .spawn(move || writer(tiers, rx, retention))
            .map_err(|e| io("cannot start the writer", e))?;
        Ok(Arc::new(Rollups {
            dir: dir.to_path_buf(),
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        }))
    }

    /// Stats batches dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Has the writer write out what it has gathered, waiting at most `timeout`; false when it
    /// is too busy to ask or did not answer in time. Blocks: call it from a blocking context.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (ack, done) = mpsc::sync_channel(1);
        self.tx.try_send(Command::Flush(ack)).is_ok() && done.recv_timeout(timeout).is_ok()
    }

    /// One dependency's rows of one tier with buckets from `from_ms` to `to_ms` (inclusive),
    /// oldest first. Reads files: call it from a blocking context.
    pub fn series(
        &self,
        tier: usize,
        dep: &DependencyKey,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<(u64, Row)>, StoreError> {
        series(&self.dir, tier, dep, from_ms, to_ms)
    }
}

/// [`Rollups::series`] over the tiers in `dir`.
fn series(
    dir: &Path,
    tier: usize,
    dep: &DependencyKey,
    from_ms: u64,
    to_ms: u64,
) -> Result<Vec<(u64, Row)>, StoreError> {
    let Some(&(name, _, file_width)) = TIERS.get(tier) else {
        return Ok(Vec::new());
    };
    let want = file::key(dep);
    let mut sums: BTreeMap<u64, Row> = BTreeMap::new();
    let first_file = from_ms - from_ms % file_width;
    for start in list(&dir.join(name)).unwrap_or_default() {
        if start < first_file || start > to_ms {
            continue;
        }
        let path = file_path(dir, tier, start);
        let runs = file::runs(&path).map_err(|e| StoreError::Rollups {
            path: path.clone(),
            why: e.to_string(),
        })?;
        let Ok(f) = File::open(&path) else { continue };
        let f = Arc::new(f);
        for (bucket, chunks) in runs {
            if !(from_ms..=to_ms).contains(&bucket) {
                continue;
            }
            let hit = RunReader::new(f.clone(), chunks)
                .take_while(|(k, _)| *k <= want)
                .find(|(k, _)| *k == want);
            if let Some((_, row)) = hit {
                sums.entry(bucket).or_default().merge(&row);
            }
        }
    }
    Ok(sums.into_iter().collect())
}

impl RollupSink for Rollups {
    fn record(&self, at_ms: u64, edges: Vec<EdgeStats>) {
        match self.tx.try_send(Command::Period(at_ms, edges)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn file_path(dir: &Path, tier: usize, start_ms: u64) -> PathBuf {
    let name = TIERS.get(tier).map_or("?", |t| t.0);
    dir.join(name).join(format!("{start_ms:015}.{EXTENSION}"))
}

/// The start times of a tier directory's files, oldest first; other files are left alone.
fn list(tier_dir: &Path) -> io::Result<Vec<u64>> {
    let mut out: Vec<u64> = fs::read_dir(tier_dir)?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name();
            name.to_str()?
                .strip_suffix(EXTENSION)?
                .strip_suffix('.')?
                .parse()
                .ok()
        })
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// The writer's state: the directory, fold progress and the minute being gathered.
struct Tiers {
    dir: PathBuf,
    /// Start of the first hour (index 0) and day (index 1) not folded yet.
    folded: [Option<u64>; 2],
    minute: u64,
    buffer: Vec<(Key, Row)>,
    /// The minute tier's file of the current hour, kept open between runs (opening one scans
    /// its chunk headers).
    appending: Option<(PathBuf, Appender)>,
    /// Chunks skipped while folding because they did not check out.
    bad_chunks: u64,
}

impl Tiers {
    fn open(dir: &Path) -> io::Result<Tiers> {
        let mut folded = [None; 2];
        match fs::read_to_string(dir.join(FOLDED_FILE)) {
            Ok(text) => {
                for line in text.lines() {
                    let Some((name, v)) = line.split_once('=') else {
                        continue;
                    };
                    let slot = match name {
                        "hour" => 0,
                        "day" => 1,
                        _ => continue,
                    };
                    folded[slot] = v.trim().parse().ok();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Tiers {
            dir: dir.to_path_buf(),
            folded,
            minute: 0,
            buffer: Vec::new(),
            appending: None,
            bad_chunks: 0,
        })
    }

    /// The start of the first hour (tier 1) or day (tier 2) not folded yet.
    fn folded(&self, tier: usize) -> Option<u64> {
        self.folded.get(tier.wrapping_sub(1)).copied().flatten()
    }

    fn set_folded(&mut self, tier: usize, next: u64) {
        if let Some(slot) = self.folded.get_mut(tier.wrapping_sub(1)) {
            *slot = Some(next);
        }
        let mut text = String::new();
        for (name, v) in [("hour", self.folded[0]), ("day", self.folded[1])] {
            if let Some(v) = v {
                text.push_str(&format!("{name}={v}\n"));
            }
        }
        let tmp = self.dir.join(format!("{FOLDED_FILE}.tmp"));
        let saved =
            fs::write(&tmp, text).and_then(|()| fs::rename(&tmp, self.dir.join(FOLDED_FILE)));
        if let Err(e) = saved {
            tracing::warn!(error = %e, "rollup fold progress not saved");
        }
    }

    /// Gathers one stats batch into its minute (writing out the minute gathered before).
    fn add_period(&mut self, at: u64, edges: &[EdgeStats]) {
        let minute = at - at % TIERS[0].1;
        if minute != self.minute {
            self.write_buffer();
            self.minute = minute;
        }
        self.buffer.extend(
            edges
                .iter()
                .map(|e| (file::key(&e.dependency), Row::from_traffic(&e.traffic))),
        );
        if self.buffer.len() >= MAX_BUFFERED {
            self.write_buffer();
        }
    }

    /// Writes the gathered minute as a run of its hour's minute file; a minute whose hour (or
    /// day) was folded already is added as a run to that hour (and day) as well.
    fn write_buffer(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        self.buffer.sort_unstable_by_key(|r| r.0);
        self.buffer.dedup_by(|later, first| {
            if later.0 == first.0 {
                first.1.merge(&later.1);
                true
            } else {
                false
            }
        });
        let minute = self.minute;
        let late: Vec<usize> = (1..3)
            .filter(|&t| self.folded(t).is_some_and(|next| minute < next))
            .collect();
        let mut buffer = std::mem::take(&mut self.buffer);
        for tier in std::iter::once(0).chain(late) {
            let bucket = minute - minute % TIERS[tier].1;
            let path = file_path(&self.dir, tier, bucket - bucket % TIERS[tier].2);
            let records = buffer.iter().copied();
            let written = if tier == 0 {
                self.append_minutes(&path, bucket, records)
            } else {
                Appender::open(&path)
                    .and_then(|mut a| a.run(bucket, records))
                    .map(drop)
            };
            if let Err(e) = written {
                tracing::warn!(path = %path.display(), error = %e, "rollup write failed");
            }
        }
        buffer.clear();
        if buffer.capacity() > MAX_BUFFERED {
            buffer.shrink_to(MAX_BUFFERED);
        }
        self.buffer = buffer;
    }

    /// Appends a minute run to `path` through the appender kept open for it (opened anew for
    /// another file, or after a failed write).
    fn append_minutes(
        &mut self,
        path: &Path,
        bucket: u64,
        records: impl IntoIterator<Item = (Key, Row)>,
    ) -> io::Result<()> {
        let mut appender = match self.appending.take() {
            Some((open, a)) if open == path => a,
            _ => Appender::open(path)?,
        };
        appender.run(bucket, records)?;
        self.appending = Some((path.to_path_buf(), appender));
        Ok(())
    }

    /// Folds every finished hour into an hour run and every finished day into a day run.
    fn fold(&mut self, now: u64, retention: &Retention) {
        if self.minute + TIERS[0].1 <= now {
            self.write_buffer();
        }
        for (tier, &(_, width, _)) in TIERS.iter().enumerate().skip(1) {
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
                self.merge(tier, next);
                next += width;
            }
            if self.folded(tier) != Some(next) {
                self.set_folded(tier, next);
            }
        }
    }

    /// Sums the source tier's runs for the bucket of `tier` starting at `at` into one run:
    /// each run is in key order, so a k-way merge visits every dependency once, in order, with
    /// one chunk per run in memory.
    fn merge(&mut self, tier: usize, at: u64) {
        let source = tier - 1;
        let (width, source_file) = (TIERS[tier].1, TIERS[source].2);
        let mut readers = Vec::new();
        let mut file_start = at - at % source_file;
        while file_start < at + width {
            let path = file_path(&self.dir, source, file_start);
            if let (Ok(runs), Ok(f)) = (file::runs(&path), File::open(&path)) {
                let f = Arc::new(f);
                readers.extend(
                    runs.into_iter()
                        .filter(|(bucket, _)| (at..at + width).contains(bucket))
                        .map(|(_, chunks)| RunReader::new(f.clone(), chunks)),
                );
            }
            file_start += source_file;
        }
        if readers.is_empty() {
            return;
        }
        let path = file_path(&self.dir, tier, at - at % TIERS[tier].2);
        let merged = Merge::new(&mut readers);
        let written = Appender::open(&path).and_then(|mut a| a.run(at, merged));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "rollup fold failed");
        }
        let bad: u64 = readers.iter().map(|r| r.bad).sum();
        if bad > 0 {
            self.bad_chunks += bad;
            tracing::warn!(
                chunks = bad,
                total = self.bad_chunks,
                "rollup chunks failed their check and were skipped"
            );
        }
    }

    /// Deletes files past their tier's retention, but never files the next tier has not folded.
    fn prune(&mut self, retention: &Retention, now: u64) {
        for (tier, keep) in retention.0.iter().enumerate() {
            let (name, _, file_width) = TIERS[tier];
            let mut cutoff = now.saturating_sub(keep.as_millis() as u64);
            if tier < 2 {
                cutoff = cutoff.min(self.folded(tier + 1).unwrap_or(0));
            }
            for start in list(&self.dir.join(name)).unwrap_or_default() {
                if start + file_width > cutoff {
                    break;
                }
                let path = file_path(&self.dir, tier, start);
                if self
                    .appending
                    .as_ref()
                    .is_some_and(|(open, _)| *open == path)
                {
                    self.appending = None;
                }
                if let Err(e) = fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "rollup file not pruned");
                }
            }
        }
    }
}

/// A k-way merge of sorted runs summing equal keys.
struct Merge<'a> {
    readers: &'a mut [RunReader],
    heads: Vec<Option<(Key, Row)>>,
}

impl<'a> Merge<'a> {
    fn new(readers: &'a mut [RunReader]) -> Merge<'a> {
        let heads = readers.iter_mut().map(Iterator::next).collect();
        Merge { readers, heads }
    }
}

impl Iterator for Merge<'_> {
    type Item = (Key, Row);

    fn next(&mut self) -> Option<(Key, Row)> {
        // Runs per fold are a few hundred at most; a linear scan for the least key is cheap
        // next to inflating the chunks.
        let least = self.heads.iter().flatten().map(|(k, _)| *k).min()?;
        let mut sum = Row::default();
        for (head, reader) in self.heads.iter_mut().zip(self.readers.iter_mut()) {
            while let Some((k, row)) = head {
                if *k != least {
                    break;
                }
                sum.merge(row);
                *head = reader.next();
            }
        }
        Some((least, sum))
    }
}

fn writer(mut tiers: Tiers, rx: Receiver<Command>, retention: Retention) {
    let mut last_housekeeping = 0u64;
    loop {
        match rx.recv_timeout(IDLE_WRITE) {
            Ok(Command::Period(at, edges)) => tiers.add_period(at, &edges),
            Ok(Command::Flush(ack)) => {
                tiers.write_buffer();
                let _ = ack.send(());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => tiers.write_buffer(),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                tiers.write_buffer();
                return;
            }
        }
        let now = actors::now_ms();
        if now.saturating_sub(last_housekeeping) > 60_000 {
            last_housekeeping = now;
            tiers.fold(now, &retention);
            tiers.prune(&retention, now);
        }
    }
}
