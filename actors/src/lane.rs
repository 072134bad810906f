//! A bounded lane in front of an actor: the sender reserves a slot before it sends, the message
//! carries the slot and frees it when handled. When the lane is full (in batches, or in the
//! items they hold: memory) the sender drops the whole batch and counts it, so a slow consumer
//! never blocks a socket reader nor makes the process grow.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// The shared counters of one lane.
#[derive(Debug, Default)]
pub struct LaneStats {
    in_flight: AtomicUsize,
    items_in_flight: AtomicUsize,
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
    max_items: usize,
    stats: Arc<LaneStats>,
}

/// A reserved slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    stats: Arc<LaneStats>,
    items: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.stats
            .items_in_flight
            .fetch_sub(self.items, Ordering::AcqRel);
    }
}

impl Lane {
    /// A lane holding at most `capacity` batches and `max_items` items in flight (at least one
    /// batch, whatever its size).
    pub fn new(capacity: usize, max_items: usize) -> Lane {
        Lane {
            capacity: capacity.max(1),
            max_items,
            stats: Arc::new(LaneStats::default()),
        }
    }

    /// Reserves a slot for a batch of `items`, or counts the batch as dropped and returns `None`.
    pub fn reserve(&self, items: usize) -> Option<Slot> {
        let s = &self.stats;
        let items_taken =
            s.items_in_flight
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n == 0 || n.saturating_add(items) <= self.max_items).then_some(n + items)
                });
        let taken = items_taken.is_ok()
            && s.in_flight
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < self.capacity).then_some(n + 1)
                })
                .is_ok();
        if taken {
            s.accepted_batches.fetch_add(1, Ordering::Relaxed);
            Some(Slot {
                stats: s.clone(),
                items,
            })
        } else {
            if items_taken.is_ok() {
                s.items_in_flight.fetch_sub(items, Ordering::AcqRel);
            }
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

    /// Items in the batches in flight now.
    pub fn items_in_flight(&self) -> usize {
        self.stats.items_in_flight.load(Ordering::Acquire)
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
        let lane = Lane::new(2, 1_000);
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

    #[test]
    fn a_lane_also_bounds_the_items_in_flight_but_always_takes_one_batch() {
        let lane = Lane::new(100, 50);
        let a = lane.reserve(30);
        assert!(a.is_some());
        // 30 + 30 > 50: dropped whole, and the items it would have held are not kept reserved.
        assert!(lane.reserve(30).is_none());
        assert_eq!(lane.items_in_flight(), 30);
        assert_eq!(lane.stats().dropped_items.load(Ordering::Relaxed), 30);
        let b = lane.reserve(20);
        assert!(b.is_some());
        assert_eq!((lane.in_flight(), lane.items_in_flight()), (2, 50));
        drop(a);
        drop(b);
        assert_eq!((lane.in_flight(), lane.items_in_flight()), (0, 0));
        // An empty lane takes a batch bigger than the bound, so no size of batch is refused
        // for ever; then nothing more until it is handled.
        let big = lane.reserve(80);
        assert!(big.is_some());
        assert!(lane.reserve(1).is_none());
        drop(big);
        assert!(lane.reserve(1).is_some());
    }

    #[test]
    fn a_batch_refused_for_want_of_slots_gives_its_items_back() {
        let lane = Lane::new(1, 1_000);
        let a = lane.reserve(10);
        assert!(a.is_some());
        assert!(lane.reserve(10).is_none());
        assert_eq!(lane.items_in_flight(), 10);
    }
}
