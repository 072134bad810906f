//! The graph's committer: a task that commits event batches to the event log in order, retrying
//! a refused batch until it goes through, and hands committed traffic on to the rollups. The
//! graph actor never waits on the log, so its mailbox keeps draining while a commit is slow;
//! the queue between them is short, and what does not fit waits in the graph (traffic merges
//! there per dependency, so a slow log costs no memory per period).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proto::event::{EventBatch, EventKind};
use tokio::sync::{mpsc, oneshot};

use crate::{EventSink, RollupSink};

/// Batches queued between the graph and the committer.
const QUEUE: usize = 4;
/// Wait after the log refused a batch, before trying it again.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// Work for the committer.
pub(crate) enum Job {
    /// Commit this batch (after everything queued before it).
    Batch(EventBatch),
    /// Reply once everything queued before it is committed.
    Barrier(oneshot::Sender<()>),
}

/// The graph's handle on its committer.
pub(crate) struct Committer {
    tx: mpsc::Sender<Job>,
    committed: Arc<AtomicU64>,
}

impl Committer {
    /// Starts the committer task; `wake` is called after each commit (the queue has room again).
    pub(crate) fn start(
        sink: Arc<dyn EventSink>,
        rollups: Option<Arc<dyn RollupSink>>,
        wake: impl Fn() + Send + 'static,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
        let committed = Arc::new(AtomicU64::new(0));
        let count = committed.clone();
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                match job {
                    Job::Barrier(done) => {
                        let _ = done.send(());
                    }
                    Job::Batch(batch) => {
                        commit(sink.as_ref(), &batch).await;
                        count.fetch_add(batch.events.len() as u64, Ordering::Relaxed);
                        if let Some(rollups) = &rollups {
                            hand_traffic(rollups.as_ref(), batch);
                        }
                        wake();
                    }
                }
            }
        });
        Committer { tx, committed }
    }

    /// Queues a batch if there is room; gives it back if not.
    pub(crate) fn try_queue(&self, batch: EventBatch) -> Result<(), EventBatch> {
        match self.tx.try_reserve() {
            Ok(permit) => {
                permit.send(Job::Batch(batch));
                Ok(())
            }
            Err(_) => Err(batch),
        }
    }

    /// Queues a batch, waiting for room.
    pub(crate) async fn queue(&self, batch: EventBatch) {
        if self.tx.send(Job::Batch(batch)).await.is_err() {
            tracing::error!("committer gone; batch dropped");
        }
    }

    /// Resolves once everything queued so far is committed.
    pub(crate) async fn barrier(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Job::Barrier(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Whether the queue has room for another batch.
    pub(crate) fn has_room(&self) -> bool {
        self.tx.capacity() > 0
    }

    /// Events committed since start.
    pub(crate) fn committed(&self) -> u64 {
        self.committed.load(Ordering::Relaxed)
    }
}

/// Commits one batch, retrying until the log takes it: batches go in order, and a log that
/// refuses (no leader yet, a full disk) is waited for rather than skipped.
async fn commit(sink: &dyn EventSink, batch: &EventBatch) {
    let mut attempts = 0u64;
    loop {
        match sink.commit(batch).await {
            Ok(_) => return,
            Err(e) => {
                attempts += 1;
                if attempts == 1 || attempts.is_power_of_two() {
                    tracing::warn!(error = %e, attempts, "event log refused a batch; retrying");
                }
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}

/// Hands a committed batch's traffic over to the rollups.
fn hand_traffic(rollups: &dyn RollupSink, batch: EventBatch) {
    for e in batch.events {
        if let EventKind::DependencyTraffic { edges } = e.kind {
            rollups.record(e.at_ms, edges);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Mutex;

    use proto::event::{EdgeStats, Event};

    use super::*;

    /// Refuses the first `refuse` commits, then records batch ids in order.
    struct Flaky {
        refuse: AtomicU64,
        got: Mutex<Vec<u64>>,
    }

    impl EventSink for Flaky {
        fn commit<'a>(
            &'a self,
            batch: &'a EventBatch,
        ) -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send + 'a>> {
            Box::pin(async move {
                if self.refuse.load(Ordering::SeqCst) > 0 {
                    self.refuse.fetch_sub(1, Ordering::SeqCst);
                    return Err("no leader".into());
                }
                let mut got = self.got.lock().map_err(|e| e.to_string())?;
                got.push(batch.events.first().map_or(0, |e| e.at_ms));
                Ok(got.len() as u64)
            })
        }
    }

    #[derive(Default)]
    struct Rollups(Mutex<Vec<u64>>);

    impl RollupSink for Rollups {
        fn record(&self, at_ms: u64, _edges: Vec<EdgeStats>) {
            if let Ok(mut v) = self.0.lock() {
                v.push(at_ms);
            }
        }
    }

    fn batch(at_ms: u64, traffic: bool) -> EventBatch {
        let kind = if traffic {
            EventKind::DependencyTraffic { edges: Vec::new() }
        } else {
            EventKind::AssetExpired {
                ip: std::net::IpAddr::from([10, 0, 0, 1]),
            }
        };
        EventBatch::new(vec![Event { at_ms, kind }])
    }

    #[tokio::test]
    async fn refused_batches_are_retried_in_order_and_traffic_reaches_the_rollups_once() {
        let sink = Arc::new(Flaky {
            refuse: AtomicU64::new(2),
            got: Mutex::new(Vec::new()),
        });
        let rollups = Arc::new(Rollups::default());
        let woken = Arc::new(AtomicU64::new(0));
        let w = woken.clone();
        let committer = Committer::start(sink.clone(), Some(rollups.clone()), move || {
            w.fetch_add(1, Ordering::SeqCst);
        });
        let mut refused_for_room = 0;
        for at in 1..=10 {
            if let Err(b) = committer.try_queue(batch(at, at % 2 == 0)) {
                refused_for_room += 1;
                committer.queue(b).await;
            }
        }
        committer.barrier().await;
        assert!(refused_for_room > 0, "a queue of {QUEUE} must fill up");
        let got = sink.got.lock().map(|g| g.clone()).unwrap_or_default();
        assert_eq!(got, (1..=10).collect::<Vec<_>>());
        assert_eq!(committer.committed(), 10);
        let rolled = rollups.0.lock().map(|g| g.clone()).unwrap_or_default();
        assert_eq!(rolled, vec![2, 4, 6, 8, 10]);
        assert_eq!(woken.load(Ordering::SeqCst), 10);
    }
}
