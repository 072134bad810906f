//! Housekeeping: the disk guard. Every few seconds it reads the free space of the data
//! directory's filesystem; below `retention.min_free_bytes` it holds raw flow writes (the map,
//! rollups and events go on: they are small) and raises a CRITICAL `disk_space` advisory, which
//! alert rules on advisories turn into notifications; once twice as much is free again it
//! resumes writing and resolves the advisory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
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
