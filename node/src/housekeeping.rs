//! Housekeeping: the disk guard, the event history's retention and the data directory's usage.
//!
//! The guard reads the free space of the data directory's filesystem every few seconds; below
//! `retention.min_free_bytes` it holds raw flow writes (the map, rollups and events go on: they
//! are small) and raises a CRITICAL `disk_space` advisory, which alert rules on advisories turn
//! into notifications; once twice as much is free again it resumes writing and resolves the
//! advisory.
//!
//! Retention prunes the history older than `retention.events` on a schedule (a sixteenth of
//! it, between 1 s and 1 h): the newest checkpoint taken before the cutoff becomes the
//! history's base. To have one near every cutoff it keeps a checkpoint per sixteenth, and asks
//! Raft for a snapshot (which is one) when none was taken for that long.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::advisory::{Advisory, AdvisoryKind, AdvisoryResolution, Severity};
use proto::event::EventKind;

use crate::api::AppState;
use crate::store::raw::RawStore;

/// How often the guard looks.
const EVERY: Duration = Duration::from_secs(5);

/// Free bytes on the filesystem holding `path`, if it can be read.
pub fn free_bytes(path: &Path) -> Option<u64> {
    fs2::available_space(path).ok()
}

/// What the guard should do: `Some(true)` hold, `Some(false)` resume, `None` nothing.
pub fn verdict(free: u64, min_free: u64, held: bool) -> Option<bool> {
    if !held && free < min_free {
        Some(true)
    } else if held && free >= min_free.saturating_mul(2) {
        Some(false)
    } else {
        None
    }
}

/// Runs the guard until aborted. A hold is immediate; its advisory is committed as soon as
/// the log takes it (a node that starts short of space may not lead yet).
pub async fn disk_guard(s: AppState, data_dir: PathBuf, min_free: u64, raw: Arc<RawStore>) {
    let node = s.log.metrics().id;
    let id = format!("disk_space:node-{node}");
    let mut raised = false;
    let mut last_free = 0;
    loop {
        if let Some(free) = free_bytes(&data_dir) {
            last_free = free;
            match verdict(free, min_free, raw.is_held()) {
                Some(true) => {
                    raw.hold(true);
                    tracing::error!(free, min_free, "disk guard: raw flow writes held");
                }
                Some(false) => {
                    raw.hold(false);
                    tracing::info!(free, "disk guard: raw flow writes resumed");
                }
                None => {}
            }
        }
        let kind = match (raw.is_held(), raised) {
            (true, false) => Some(EventKind::AdvisoryRaised {
                advisory: Box::new(Advisory {
                    id: id.clone(),
                    kind: AdvisoryKind::DiskSpace,
                    severity: Severity::Critical,
                    subject: format!("node {node}"),
                    summary: format!(
                        "Node {node} has {} MB free on {} (below {} MB): raw flows are no longer \
                         written; the map, rollups and events go on.",
                        last_free >> 20,
                        data_dir.display(),
                        min_free >> 20
                    ),
                    action: "Free disk space, or lower retention.raw / raw_max_bytes; writing \
                             resumes at twice retention.min_free_bytes."
                        .into(),
                    evidence: "/metrics".into(),
                    first_ms: actors::now_ms(),
                }),
            }),
            (false, true) => Some(EventKind::AdvisoryResolved {
                resolution: Box::new(AdvisoryResolution {
                    id: id.clone(),
                    reason: format!("{} MB free again", last_free >> 20),
                }),
            }),
            _ => None,
        };
        if let Some(kind) = kind {
            match crate::api::rules::commit(&s, kind).await {
                Ok(()) => raised = !raised,
                Err(e) => tracing::debug!(error = ?e, "disk guard: advisory not committed yet"),
            }
        }
        tokio::time::sleep(if raised == raw.is_held() {
            EVERY
        } else {
            Duration::from_millis(500)
        })
        .await;
    }
}

/// What housekeeping measured and did, for `/metrics`.
#[derive(Debug, Default)]
pub struct Usage {
    /// Bytes under the data directory, by its top-level directory (`other` for its files).
    parts: Mutex<Vec<(String, u64)>>,
    /// When the oldest event the history holds may be from: its base's time (0: it holds
    /// every event since the cluster began).
    history_starts_ms: AtomicU64,
    /// Times retention moved the history's base.
    prunes: AtomicU64,
    /// History index entries removed by retention.
    pruned_index: AtomicU64,
}

impl Usage {
    /// Bytes under the data directory by part, as last measured.
    pub fn parts(&self) -> Vec<(String, u64)> {
        self.parts.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// The history's base time, UTC ms (0: none).
    pub fn history_starts_ms(&self) -> u64 {
        self.history_starts_ms.load(Ordering::Relaxed)
    }

    /// Times retention moved the history's base.
    pub fn prunes(&self) -> u64 {
        self.prunes.load(Ordering::Relaxed)
    }

    /// History index entries removed by retention.
    pub fn pruned_index(&self) -> u64 {
        self.pruned_index.load(Ordering::Relaxed)
    }
}

/// Bytes under `data_dir` by top-level directory, and `other` for the files beside them.
pub fn measure(data_dir: &Path) -> Vec<(String, u64)> {
    let mut parts = Vec::new();
    let mut other = 0;
    if let Ok(entries) = std::fs::read_dir(data_dir) {
        for entry in entries.filter_map(Result::ok) {
            match entry.file_type() {
                Ok(t) if t.is_dir() => parts.push((
                    entry.file_name().to_string_lossy().into_owned(),
                    crate::raft::history::dir_bytes(&entry.path()),
                )),
                Ok(_) => other += entry.metadata().map_or(0, |m| m.len()),
                Err(_) => {}
            }
        }
    }
    parts.sort();
    parts.push(("other".into(), other));
    parts
}

/// How often retention runs for a history kept `retention`: a sixteenth of it, between 1 s
/// and 1 h; also the spacing of the checkpoints it keeps.
pub fn retention_step(retention: Duration) -> (Duration, Duration) {
    let slot = (retention / 16).max(Duration::from_millis(1));
    (
        slot,
        slot.clamp(Duration::from_secs(1), Duration::from_secs(3600)),
    )
}

/// Runs the history's retention and measures the data directory until aborted.
pub async fn retention(s: AppState, data_dir: PathBuf, keep: Duration, usage: Arc<Usage>) {
    let (slot, every) = retention_step(keep);
    let slot_ms = u64::try_from(slot.as_millis()).unwrap_or(u64::MAX);
    let keep_ms = u64::try_from(keep.as_millis()).unwrap_or(u64::MAX);
    s.log.history().keep_checkpoints_every(slot_ms);
    loop {
        let (log, dir, u) = (s.log.clone(), data_dir.clone(), usage.clone());
        let round = tokio::task::spawn_blocking(move || {
            if let Ok(mut parts) = u.parts.lock() {
                *parts = measure(&dir);
            }
            let history = log.history();
            let cutoff = actors::now_ms().saturating_sub(keep_ms);
            if let Some((index, taken)) = history.prune_before(cutoff)? {
                let removed = log.projection().prune_history_index(index, taken)?;
                u.prunes.fetch_add(1, Ordering::Relaxed);
                u.pruned_index.fetch_add(removed, Ordering::Relaxed);
                tracing::info!(
                    through_index = index,
                    starts_ms = taken,
                    index_entries = removed,
                    "retention.events: history pruned"
                );
            }
            let base = history.base_point()?;
            u.history_starts_ms
                .store(base.map_or(0, |(_, t)| t), Ordering::Relaxed);
            // A snapshot (and so a checkpoint) is due when none was taken for a slot and
            // entries were applied since.
            let newest = history.newest_checkpoint()?;
            let since = newest.or(base).map_or(0, |(index, _)| index);
            let due = newest
                .is_none_or(|(_, taken)| actors::now_ms().saturating_sub(taken) >= slot_ms)
                && log.applied_index() > since;
            Ok::<_, crate::raft::LogError>(due)
        })
        .await;
        match round {
            Ok(Ok(true)) => {
                if let Err(e) = s.log.raft().trigger().snapshot().await {
                    tracing::warn!(error = %e, "retention: the snapshot for a checkpoint was refused");
                }
            }
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "retention: the history was not pruned"),
            Err(e) => tracing::warn!(error = %e, "retention: the round failed"),
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_holds_below_the_floor_and_resumes_at_twice_it() {
        let gb = 1 << 30;
        assert_eq!(verdict(gb / 2, gb, false), Some(true));
        assert_eq!(verdict(gb / 2, gb, true), None);
        assert_eq!(
            verdict(gb + 1, gb, true),
            None,
            "no flapping just above the floor"
        );
        assert_eq!(verdict(2 * gb, gb, true), Some(false));
        assert_eq!(verdict(2 * gb, gb, false), None);
        assert!(free_bytes(Path::new("/")).is_some_and(|f| f > 0));
    }
}
