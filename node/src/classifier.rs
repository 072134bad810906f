//! The behavioural classifier: on the Raft leader, every `classification.interval`, it guesses
//! each active asset's role from the call graph ([`actors::analysis`]) and commits an
//! `AssetRoleInferred` event for each asset whose applied role changed: a new role at or above
//! `classification.min_confidence`, a confidence moved by 5 points or more, or a role no longer
//! confident enough. Assets seen for less than `classification.min_observation` are left alone;
//! a role set by a user wins over whatever is inferred (the projection keeps both).

use std::sync::Arc;

use proto::event::{Event, EventBatch, EventKind};
use proto::role::{InferredRole, RoleGuess};

use crate::analysis::AnalysisCache;
use crate::config::ClassificationSection;
use crate::pace::Pacer;
use crate::raft::EventLog;
use crate::store::Projection;

/// Most events in one committed batch.
const BATCH: usize = 500;

/// The role to apply from the guesses (most confident first): the best one if confident enough.
pub fn applied(guesses: &[RoleGuess], min_confidence: f64) -> Option<RoleGuess> {
    guesses
        .first()
        .filter(|g| f64::from(g.confidence_pct) >= (min_confidence * 100.0).round())
        .cloned()
}

/// Whether the applied role moved enough to commit.
fn changed(old: Option<&RoleGuess>, new: Option<&RoleGuess>) -> bool {
    match (old, new) {
        (None, None) => false,
        (Some(a), Some(b)) => a.role != b.role || a.confidence_pct.abs_diff(b.confidence_pct) >= 5,
        _ => true,
    }
}

/// One pass: the events that bring the projection's inferred roles up to date.
pub async fn pass(
    log: &EventLog,
    projection: &Projection,
    cache: &AnalysisCache,
    config: &ClassificationSection,
    now_ms: u64,
) -> Result<Vec<Event>, String> {
    let graph = cache.graph_once(projection, log.applied_index()).await?;
    let projection = projection.clone();
    let config = config.clone();
    tokio::task::spawn_blocking(move || {
        let min_seen = u64::try_from(config.min_observation.as_millis()).unwrap_or(u64::MAX);
        let mut events = Vec::new();
        let mut pacer = Pacer::new(crate::analysis::BACKGROUND_SHARE);
        for node in 0..graph.graph.len() as u32 {
            pacer.step();
            let ip = graph.graph.ip(node);
            let Some(asset) = projection.asset(ip).map_err(|e| e.to_string())? else {
                continue;
            };
            if now_ms.saturating_sub(asset.first_seen_ms) < min_seen {
                continue;
            }
            let guess = applied(&graph.graph.role_guesses(node), config.min_confidence);
            let record = projection.role(ip).map_err(|e| e.to_string())?;
            if changed(record.inferred.as_ref(), guess.as_ref()) {
                events.push(Event {
                    at_ms: now_ms,
                    kind: EventKind::AssetRoleInferred {
                        inferred: Box::new(InferredRole { ip, guess }),
                    },
                });
            }
        }
        Ok(events)
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Runs the classifier until aborted.
pub fn spawn(
    log: Arc<EventLog>,
    projection: Projection,
    cache: AnalysisCache,
    config: ClassificationSection,
    node_id: u64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(config.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if log.metrics().current_leader != Some(node_id) {
                continue;
            }
            let events = match pass(&log, &projection, &cache, &config, actors::now_ms()).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = %e, "classifier pass failed");
                    continue;
                }
            };
            let mut events = events.into_iter().peekable();
            while events.peek().is_some() {
                let batch = EventBatch::new(events.by_ref().take(BATCH).collect());
                if let Err(e) = log.append(&batch).await {
                    tracing::warn!(error = %e, "classifier could not commit its roles");
                    break;
                }
            }
        }
    })
}
