//! A bounded lane in front of an actor: the sender reserves a slot before it sends, the message
//! carries the slot and frees it when handled. When the lane is full the sender drops the whole
//! batch and counts it, so a slow consumer never blocks a socket reader.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// The shared counters of one lane.
#[derive(Debug, Default)]
pub struct LaneStats {
    in_flight: AtomicUsize,
    /// Batches dropped because the lane was full.
    pub dropped_batches: AtomicU64,
    /// Items (flows) in those batches.
    pub dropped_items: AtomicU64,
    /// Batches accepted.
    pub accepted_batches: AtomicU64,
}

/// A bounded lane; clones share the bound.
#[derive(Clone, Debug)]
pub struct Lane {
    capacity: usize,
    stats: Arc<LaneStats>,
}

/// A reserved slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    stats: Arc<LaneStats>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Lane {
    /// A lane holding at most `capacity` batches in flight (at least one).
    pub fn new(capacity: usize) -> Lane {
        Lane {
            capacity: capacity.max(1),
            stats: Arc::new(LaneStats::default()),
        }
    }

    /// Reserves a slot for a batch of `items`, or counts the batch as dropped and returns `None`.
    pub fn reserve(&self, items: usize) -> Option<Slot> {
        let taken = self
            .stats
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            });
        if taken.is_ok() {
            self.stats.accepted_batches.fetch_add(1, Ordering::Relaxed);
            Some(Slot {
                stats: self.stats.clone(),
            })
        } else {
            self.stats.dropped_batches.fetch_add(1, Ordering::Relaxed);
            self.stats
                .dropped_items
                .fetch_add(items as u64, Ordering::Relaxed);
            None
        }
    }

    /// Batches in flight now.
    pub fn in_flight(&self) -> usize {
        self.stats.in_flight.load(Ordering::Acquire)
    }

    /// The lane's counters.
    pub fn stats(&self) -> &LaneStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_lane_drops_and_counts_whole_batches_until_a_slot_frees() {
        let lane = Lane::new(2);
        let a = lane.reserve(10);
        let b = lane.reserve(10);
        assert!(a.is_some() && b.is_some());
        assert!(lane.reserve(7).is_none());
        assert_eq!(lane.stats().dropped_batches.load(Ordering::Relaxed), 1);
        assert_eq!(lane.stats().dropped_items.load(Ordering::Relaxed), 7);
        drop(a);
        assert!(lane.reserve(1).is_some());
        assert_eq!(lane.in_flight(), 1);
    }
}
