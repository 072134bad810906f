//! Pacing for periodic background work on a blocking thread: it takes at most a share of one
//! core, so that it does not take the cores collection needs in bursts, unless someone is
//! waiting for it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Items between looks at the clock.
const CHECK_EVERY: u32 = 1024;
/// Work done before it pauses (shorter stretches are not worth a sleep).
const STRETCH: Duration = Duration::from_millis(20);

/// Keeps a loop to a share of one core: call [`Pacer::step`] once per item; after each stretch
/// of work it sleeps in proportion. The clock is wall time, so time the thread was preempted
/// counts as work and the pacing errs towards the gentle side.
pub struct Pacer {
    /// Sleep per unit of work: 1/share - 1.
    rest_per_work: f64,
    since: Instant,
    items: u32,
    slept: Duration,
    /// While this counts anyone, the work goes at full speed.
    waiting: Option<Arc<AtomicUsize>>,
}

/// One party waiting for paced work: counted in the shared count while it lives.
pub struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    /// Counts one more waiting in `count` until dropped.
    pub fn new(count: &Arc<AtomicUsize>) -> Waiting {
        count.fetch_add(1, Ordering::AcqRel);
        Waiting(count.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Pacer {
    /// A pacer keeping to `share` of a core (0.05 to 1; 1 never sleeps).
    pub fn new(share: f64) -> Pacer {
        let share = share.clamp(0.05, 1.0);
        Pacer {
            rest_per_work: 1.0 / share - 1.0,
            since: Instant::now(),
            items: 0,
            slept: Duration::ZERO,
            waiting: None,
        }
    }

    /// The same pacer, going at full speed while `waiting` counts anyone (see [`Waiting`]).
    pub fn hurried_by(mut self, waiting: Arc<AtomicUsize>) -> Pacer {
        self.waiting = Some(waiting);
        self
    }

    /// A pacer that never sleeps.
    pub fn unlimited() -> Pacer {
        Pacer::new(1.0)
    }

    /// Counts one item, sleeping when a stretch of work is done.
    pub fn step(&mut self) {
        self.items += 1;
        if self.items < CHECK_EVERY || self.rest_per_work <= 0.0 {
            return;
        }
        self.items = 0;
        let worked = self.since.elapsed();
        let hurried = self
            .waiting
            .as_ref()
            .is_some_and(|w| w.load(Ordering::Acquire) > 0);
        if hurried {
            self.since = Instant::now();
        } else if worked >= STRETCH {
            let asleep = Instant::now();
            std::thread::sleep(worked.mul_f64(self.rest_per_work));
            self.since = Instant::now();
            self.slept += self.since - asleep;
        }
    }

    /// Time spent asleep so far.
    pub fn slept(&self) -> Duration {
        self.slept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy(pacer: &mut Pacer, items: u32) -> Duration {
        let start = Instant::now();
        for i in 0..items {
            // A little work per item that the optimiser cannot drop.
            std::hint::black_box((0..200u64).fold(u64::from(i), |a, b| a.rotate_left(3) ^ b));
            pacer.step();
        }
        start.elapsed()
    }

    #[test]
    fn a_paced_loop_sleeps_in_proportion_to_its_work_and_an_unlimited_one_never() {
        let mut unlimited = Pacer::unlimited();
        busy(&mut unlimited, 50_000);
        assert_eq!(unlimited.slept(), Duration::ZERO);

        // A quarter of a core: at least three times as long asleep as at work, but for the
        // last stretch, which may end unslept. (Asleep longer than asked is the scheduler's
        // doing on a loaded machine; the bound above that is loose for it.)
        let mut paced = Pacer::new(0.25);
        let total = busy(&mut paced, 100_000);
        let slept = paced.slept().as_secs_f64();
        let worked = total.as_secs_f64() - slept;
        let tail = STRETCH.as_secs_f64() + 0.05;
        assert!(slept > 0.0, "never slept in {total:?}");
        assert!(
            slept >= 3.0 * (worked - tail),
            "slept {slept} s for {worked} s of work"
        );
        assert!(
            slept <= 10.0 * worked + 1.0,
            "slept {slept} s for {worked} s of work"
        );
    }

    #[test]
    fn a_paced_loop_goes_at_full_speed_while_someone_waits_for_it() {
        let count = Arc::new(AtomicUsize::new(0));
        let mut paced = Pacer::new(0.25).hurried_by(count.clone());
        let waiting = Waiting::new(&count);
        busy(&mut paced, 100_000);
        assert_eq!(paced.slept(), Duration::ZERO);
        // Nobody waits any more: it keeps its pace again.
        drop(waiting);
        assert_eq!(count.load(Ordering::Acquire), 0);
        busy(&mut paced, 100_000);
        assert!(paced.slept() > Duration::ZERO);
    }
}
