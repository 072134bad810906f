//! Traffic sweeps: once a stats interval the graph commits each dependency's traffic since the
//! last sweep, visiting the map in the projection's key order, batch by batch as the event log
//! takes them, spread over half the interval.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use proto::event::{DependencyKey, EdgeStats, Event, EventKind};

use super::{GraphState, MAX_BATCH_WEIGHT};

/// A traffic sweep under way: its time, when it started (for pacing), the map positions of the
/// dependencies it visits in (about) key order, and how many of them it has visited.
pub(super) struct Sweep {
    pub(super) at: u64,
    started: Instant,
    order: Vec<u32>,
    pub(super) next: usize,
}

/// A dependency's place in a sweep: client address (its leading 32 bits for IPv6, after all
/// IPv4), then roughly the server address, which is the order of the projection's keys up to
/// servers of one client.
pub(super) fn order_key(k: &DependencyKey) -> u64 {
    let client = match k.client {
        IpAddr::V4(v4) => u64::from(u32::from(v4)),
        IpAddr::V6(v6) => (1 << 32) | (v6.to_bits() >> 96) as u64,
    };
    let server = match k.service.ip {
        IpAddr::V4(v4) => u64::from(u32::from(v4) >> 2),
        IpAddr::V6(v6) => (1 << 30) | (v6.to_bits() >> 98) as u64,
    };
    (client << 31) | server
}

/// Positions of a sweep over `len` dependencies due `elapsed` into it, when it is spread over
/// `spread`: in proportion, but at least a batch's worth from the start.
fn due(len: usize, elapsed: Duration, spread: Duration) -> usize {
    if elapsed >= spread {
        return len;
    }
    let share = len as u128 * elapsed.as_millis() / spread.as_millis().max(1);
    (share as usize).max(MAX_BATCH_WEIGHT).min(len)
}

/// Whether a sweep at position `next` of `len`, with positions before `until` due, hands on a
/// batch now: a whole batch's worth, or the last of it. (A step's worth each time made many
/// small log entries: 114 k in a 30-minute soak against 3 k.) A sweep with nothing left, such as
/// one over an empty map, goes on to end.
fn ready(next: usize, len: usize, until: usize) -> bool {
    next >= len || until >= len || until.saturating_sub(next) >= MAX_BATCH_WEIGHT
}

impl GraphState {
    /// Starts a traffic sweep stamped `at`, unless one is under way.
    pub(super) fn start_sweep(&mut self, at: u64) {
        if self.sweep.is_none() {
            let mut order: Vec<(u64, u32)> = self
                .dependencies
                .keys()
                .enumerate()
                .map(|(i, k)| (order_key(k), i as u32))
                .collect();
            order.sort_unstable();
            self.sweep = Some(Sweep {
                at,
                started: Instant::now(),
                order: order.into_iter().map(|(_, i)| i).collect(),
                next: 0,
            });
        }
    }

    /// The sweep's next traffic, at most `limit` edges from the positions before `until`, as
    /// events of at most `max_edges_per_event` edges each, taken straight from the dependency
    /// map; the sweep ends after the last dependency it started with. Only what goes to the
    /// log now is ever copied, so a period's traffic never sits in memory twice, whatever the
    /// size of the map. Traffic a dependency sees after the sweep passed it (or a dependency
    /// found since the sweep started) goes with the next sweep.
    pub(super) fn sweep_events(&mut self, limit: usize, until: usize) -> Vec<Event> {
        let Some(sweep) = &mut self.sweep else {
            return Vec::new();
        };
        let at = sweep.at;
        let max = self.config.max_edges_per_event.max(1);
        let mut events = Vec::new();
        let mut edges = Vec::new();
        let mut taken = 0;
        while let Some(&position) = sweep.order.get(sweep.next) {
            if taken == limit || sweep.next >= until {
                break;
            }
            sweep.next += 1;
            let Some((key, dep)) = self.dependencies.get_index_mut(position as usize) else {
                continue;
            };
            // Traffic of a dependency not announced yet waits for the next sweep.
            if dep.traffic.flows == 0 || !dep.announced {
                continue;
            }
            edges.push(EdgeStats {
                dependency: *key,
                traffic: std::mem::take(&mut dep.traffic),
            });
            taken += 1;
            if edges.len() == max {
                events.push(Event {
                    at_ms: at,
                    kind: EventKind::DependencyTraffic {
                        edges: std::mem::take(&mut edges),
                    },
                });
            }
        }
        if !edges.is_empty() {
            events.push(Event {
                at_ms: at,
                kind: EventKind::DependencyTraffic { edges },
            });
        }
        if sweep.next >= sweep.order.len() {
            self.sweep = None;
        }
        events
    }

    /// Hands the committer the sweep's batches that are due, while it has room. A sweep is
    /// spread over half the stats interval: each dependency's traffic rewrites its row in the
    /// projection, and at 200 k dependencies committing them all at once took the projection
    /// several seconds of CPU in a burst each interval, which collection, sharing the cores,
    /// paid for in lost flows.
    pub(super) fn sweep(&mut self) {
        let spread = self.config.stats_interval / 2;
        while self.pending.is_empty() && self.committer.has_room() {
            let Some(sweep) = &self.sweep else { return };
            let until = due(sweep.order.len(), sweep.started.elapsed(), spread);
            if !ready(sweep.next, sweep.order.len(), until) {
                return;
            }
            let events = self.sweep_events(MAX_BATCH_WEIGHT, until);
            self.commit(events);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_is_due_in_proportion_to_its_time_and_at_least_a_batch_at_once() {
        let spread = Duration::from_secs(30);
        let secs = Duration::from_secs;
        assert_eq!(due(200_000, secs(0), spread), MAX_BATCH_WEIGHT);
        assert_eq!(due(200_000, secs(15), spread), 100_000);
        assert_eq!(due(200_000, secs(30), spread), 200_000);
        assert_eq!(due(200_000, secs(3600), spread), 200_000);
        // A small map goes at once; a zero spread does not divide by zero.
        assert_eq!(due(500, secs(0), spread), 500);
        assert_eq!(due(200_000, secs(0), Duration::ZERO), 200_000);
    }

    #[test]
    fn a_sweep_hands_on_whole_batches_but_for_the_last() {
        let batch = MAX_BATCH_WEIGHT;
        assert!(ready(0, 200_000, batch));
        assert!(!ready(batch, 200_000, batch));
        assert!(!ready(batch, 200_000, 2 * batch - 1));
        assert!(ready(batch, 200_000, 2 * batch));
        // The rest, however little, once all of it is due; an ended or empty sweep, to end.
        assert!(ready(199_999, 200_000, 200_000));
        assert!(ready(200_000, 200_000, 200_000));
        assert!(ready(0, 0, 0));
    }
}
