//! The advisor: every window it runs the detectors ([`detect`]) over the dependency traffic the
//! aggregator flushed during it (which the graph sums per dependency and hands over), raises an
//! advisory for each new finding and resolves those not seen again for the expiry time,
//! committing both as events. One advisory per id is active at a time: a finding seen again
//! while active raises nothing. Events the log refuses are kept (up to a bound) and sent with
//! the next window's.

pub mod detect;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proto::advisory::AdvisoryResolution;
use proto::event::{Event, EventBatch, EventKind};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::aggregator::Asymmetry;
use crate::graph::GraphMsg;
use crate::{now_ms, EventSink};
use detect::{Baselines, Thresholds, Window};

/// Events kept while the log refuses them; beyond this the oldest go (and are counted).
const MAX_UNSENT: usize = 10_000;
/// Hand-offs the advisor may have waiting before the aggregator skips it.
pub const MAX_OBSERVE_IN_FLIGHT: usize = 4;
/// How long the advisor waits for the graph's window before it skips this one.
const WINDOW_TIMEOUT: Duration = Duration::from_secs(30);

/// The advisor's settings.
#[derive(Clone, Debug)]
pub struct AdvisorConfig {
    /// Detector thresholds and the window length.
    pub thresholds: Thresholds,
    /// An active advisory not found again for this long is resolved.
    pub expire: Duration,
}

/// Counters for metrics and tests.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct AdvisorTotals {
    /// Windows evaluated.
    pub windows: u64,
    /// Advisories raised.
    pub raised: u64,
    /// Advisories resolved.
    pub resolved: u64,
    /// Events dropped because the log refused them for too long.
    pub dropped_events: u64,
    /// Advisories active now.
    pub active: u64,
    /// Networks with a learned baseline.
    pub baselines: u64,
    /// Windows not evaluated because the graph did not hand over its traffic in time.
    pub windows_missed: u64,
}

/// Messages the advisor handles.
pub enum AdvisorMsg {
    /// The dependencies whose directions took different paths in one flush (the token counts
    /// hand-offs in flight).
    Asymmetric(Vec<Asymmetry>, Arc<()>),
    /// End of a window (timer).
    Tick,
    /// Counters.
    Totals(RpcReplyPort<AdvisorTotals>),
}

/// What the advisor starts with.
pub struct AdvisorArgs {
    /// Settings.
    pub config: AdvisorConfig,
    /// Where events go.
    pub sink: Arc<dyn EventSink>,
    /// Ids of the advisories active in the projection (so a restart raises nothing twice).
    pub active: Vec<String>,
    /// The graph, which keeps each window's traffic per dependency.
    pub graph: ActorRef<GraphMsg>,
}

/// The advisor's state.
pub struct AdvisorState {
    config: AdvisorConfig,
    /// None only in tests, which fill the window themselves.
    graph: Option<ActorRef<GraphMsg>>,
    sink: Arc<dyn EventSink>,
    window: Window,
    baselines: Baselines,
    /// Active advisory id → when it was last found, UTC ms.
    active: BTreeMap<String, u64>,
    unsent: Vec<Event>,
    totals: AdvisorTotals,
}

impl AdvisorState {
    /// Ends the window at `now`: the events it raises and resolves.
    fn close_window(&mut self, now: u64) -> Vec<Event> {
        let found = detect::detect(
            &self.window,
            &mut self.baselines,
            &self.config.thresholds,
            now,
        );
        self.window.reset(now);
        self.totals.windows += 1;
        let mut events = Vec::new();
        for advisory in found {
            if self.active.insert(advisory.id.clone(), now).is_none() {
                self.totals.raised += 1;
                events.push(Event {
                    at_ms: now,
                    kind: EventKind::AdvisoryRaised {
                        advisory: Box::new(advisory),
                    },
                });
            }
        }
        let expire = u64::try_from(self.config.expire.as_millis()).unwrap_or(u64::MAX);
        let stale: Vec<String> = self
            .active
            .iter()
            .filter(|(_, last)| now.saturating_sub(**last) >= expire)
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            self.active.remove(&id);
            self.totals.resolved += 1;
            events.push(Event {
                at_ms: now,
                kind: EventKind::AdvisoryResolved {
                    resolution: Box::new(AdvisoryResolution {
                        id,
                        reason: format!(
                            "not seen for {}",
                            humantime::format_duration(self.config.expire)
                        ),
                    }),
                },
            });
        }
        self.totals.active = self.active.len() as u64;
        self.totals.baselines = self.baselines.len() as u64;
        events
    }
}

/// The advisor actor.
pub struct Advisor;

impl Actor for Advisor {
    type Msg = AdvisorMsg;
    type State = AdvisorState;
    type Arguments = AdvisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: AdvisorArgs,
    ) -> Result<AdvisorState, ActorProcessingErr> {
        let every = args
            .config
            .thresholds
            .window
            .max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if myself.send_message(AdvisorMsg::Tick).is_err() {
                    return;
                }
            }
        });
        let now = now_ms();
        Ok(AdvisorState {
            active: args.active.into_iter().map(|id| (id, now)).collect(),
            config: args.config,
            graph: Some(args.graph),
            sink: args.sink,
            window: Window::new(now),
            baselines: Baselines::default(),
            unsent: Vec::new(),
            totals: AdvisorTotals::default(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: AdvisorMsg,
        state: &mut AdvisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AdvisorMsg::Asymmetric(asymmetric, _in_flight) => {
                state.window.add_asymmetric(&asymmetric);
            }
            AdvisorMsg::Tick => {
                if let Some(graph) = &state.graph {
                    match ractor::call_t!(
                        graph,
                        GraphMsg::TakeWindow,
                        WINDOW_TIMEOUT.as_millis() as u64
                    ) {
                        Ok(edges) => state.window.absorb_edges(edges),
                        Err(e) => {
                            // Half a window's traffic would look like a drop: skip it.
                            state.totals.windows_missed += 1;
                            tracing::warn!(
                                error = %e,
                                "advisor skipped a window: no traffic from the graph"
                            );
                            return Ok(());
                        }
                    }
                }
                let events = state.close_window(now_ms());
                state.unsent.extend(events);
                if state.unsent.len() > MAX_UNSENT {
                    let excess = state.unsent.len() - MAX_UNSENT;
                    state.unsent.drain(..excess);
                    state.totals.dropped_events += excess as u64;
                    tracing::warn!(dropped = excess, "advisor dropped events the log refused");
                }
                if !state.unsent.is_empty() {
                    let batch = EventBatch::new(std::mem::take(&mut state.unsent));
                    if let Err(e) = state.sink.commit(&batch).await {
                        tracing::warn!(error = %e, "advisor could not commit; retrying next window");
                        state.unsent = batch.events;
                    }
                }
            }
            AdvisorMsg::Totals(reply) => {
                let _ = reply.send(state.totals);
            }
        }
        Ok(())
    }
}
