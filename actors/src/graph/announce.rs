//! Announcing new dependencies at a pace: a cold start on a large network finds hundreds of
//! thousands in seconds, and announcing them all at once made the projection write them in a
//! burst that raised the node's memory by tens of megabytes. They wait in the dependency map
//! (a flag and a queued position each) and go to the log at the configured rate, in small
//! batches.

use std::time::Instant;

use proto::event::{Event, EventKind};

use super::{GraphState, MAX_BATCH_WEIGHT};

/// Most announcements in one batch: far fewer than other batches hold. The projection applies
/// a batch in one transaction, and a cold start's discoveries (each a new row, all over its
/// trees) in batches of 2,000 kept tens of megabytes more in memory than in batches this size
/// (sFlow bench, peak RSS: 152-185 MB with 2,000, 135-170 with 250, 138-146 with 50).
pub(super) const ANNOUNCE_BATCH: usize = 50;

/// A token bucket: `rate` announcements a second, up to a second's worth at once (so a
/// network that finds fewer than `rate` a second sees no delay at all).
pub(super) struct Pace {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Pace {
    /// A full bucket for `rate` a second (at least one).
    pub(super) fn new(rate: u32) -> Pace {
        let rate = f64::from(rate.max(1));
        Pace {
            rate,
            tokens: rate,
            at: Instant::now(),
        }
    }

    /// Announcements allowed now.
    fn allowed(&mut self, now: Instant) -> usize {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.tokens as usize
    }

    /// Counts `n` announcements made.
    fn spend(&mut self, n: usize) {
        self.tokens = (self.tokens - n as f64).max(0.0);
    }

    /// The most allowed at once: a second's worth.
    fn burst(&self) -> usize {
        self.rate as usize
    }
}

impl GraphState {
    /// Discovery events for at most `limit` of the dependencies waiting to be announced, in the
    /// order they were found, each stamped when it was found; those expired or announced
    /// meanwhile (another node committed them) are passed over.
    pub(super) fn announcements(&mut self, limit: usize) -> Vec<Event> {
        let mut events = Vec::new();
        while events.len() < limit {
            let Some((position, at)) = self.to_announce.pop_front() else {
                break;
            };
            let Some((key, dep)) = self.dependencies.get_index_mut(position as usize) else {
                continue;
            };
            if dep.active && !dep.announced {
                dep.announced = true;
                events.push(Event {
                    at_ms: at,
                    kind: EventKind::DependencyDiscovered { dependency: *key },
                });
            }
        }
        if self.to_announce.is_empty() {
            // A burst's queue is not kept once it is announced.
            self.to_announce.shrink_to(MAX_BATCH_WEIGHT);
        }
        events
    }

    /// Adds to `events` a batch of the announcements the pace allows now, if the committer has
    /// room and nothing else waits for it; whether it added any. It waits for a whole batch's
    /// worth (or for all there is, or a second's worth if that is less): each batch is a log
    /// entry, and announcing whatever the pace allowed at every turn made many tiny ones.
    pub(super) fn announce_into(&mut self, events: &mut Vec<Event>) -> bool {
        if self.to_announce.is_empty() || !self.pending.is_empty() || !self.committer.has_room() {
            return false;
        }
        let allowed = self.pace.allowed(Instant::now()).min(ANNOUNCE_BATCH);
        let worth = self
            .to_announce
            .len()
            .min(ANNOUNCE_BATCH)
            .min(self.pace.burst());
        if allowed < worth {
            return false;
        }
        let found = self.announcements(allowed);
        self.pace.spend(found.len());
        events.extend(found);
        true
    }

    /// Hands the committer the announcements the pace allows now, batch by batch.
    pub(super) fn announce(&mut self) {
        let mut events = Vec::new();
        while self.announce_into(&mut events) {
            self.commit(std::mem::take(&mut events));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_pace_allows_its_rate_a_second_and_at_most_a_second_of_it_at_once() {
        let start = Instant::now();
        let mut pace = Pace::new(1000);
        pace.at = start;
        assert_eq!(pace.allowed(start), 1000);
        pace.spend(1000);
        assert_eq!(pace.allowed(start), 0);
        assert_eq!(pace.allowed(start + Duration::from_millis(250)), 250);
        pace.spend(100);
        assert_eq!(pace.allowed(start + Duration::from_millis(250)), 150);
        // Idle for long: a second's worth, no more.
        assert_eq!(pace.allowed(start + Duration::from_secs(60)), 1000);
        // A zero rate still lets one a second through.
        let mut slow = Pace::new(0);
        slow.at = start;
        assert_eq!(slow.allowed(start), 1);
    }
}
