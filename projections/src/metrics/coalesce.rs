//! Coalescing queue updates for live subscribers: a burst of events on a queue
//! yields at most one push per queue per interval, so a subscriber sees a few
//! updates a second however busy the queue is, and never a stale last figure.
//!
//! The first change of a quiet queue goes out at once (leading edge); changes
//! within the interval after it are merged into one push at its end (trailing
//! edge), so the last change of a burst is always delivered. The figures
//! themselves are re-read from the `queue_metrics` read model by the caller:
//! an update only says *which* queues to re-read.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::Stream;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;

use super::QueueUpdate;

/// Which queues to re-read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    Queues(BTreeSet<String>),
    /// Updates were lost (the receiver lagged behind the broadcast): re-read all.
    All,
}

/// Coalesces `updates` to at most one [`Changed`] per queue per `interval`.
/// Ends when the broadcast closes.
pub fn coalesce(
    mut updates: broadcast::Receiver<QueueUpdate>,
    interval: Duration,
) -> impl Stream<Item = Changed> {
    async_stream::stream! {
        // When each queue last went out, and what waits for the trailing edge.
        let mut last_sent: BTreeMap<String, Instant> = BTreeMap::new();
        let mut pending: BTreeSet<String> = BTreeSet::new();
        let mut flush_at: Option<Instant> = None;
        loop {
            let received = match flush_at {
                Some(at) => tokio::select! {
                    r = updates.recv() => Some(r),
                    _ = tokio::time::sleep_until(at) => None,
                },
                None => Some(updates.recv().await),
            };
            let now = Instant::now();
            match received {
                None => {
                    flush_at = None;
                    if !pending.is_empty() {
                        for q in &pending {
                            last_sent.insert(q.clone(), now);
                        }
                        yield Changed::Queues(std::mem::take(&mut pending));
                    }
                }
                Some(Ok(update)) => {
                    let quiet = last_sent
                        .get(&update.queue)
                        .is_none_or(|at| now.duration_since(*at) >= interval);
                    if quiet && !pending.contains(&update.queue) {
                        last_sent.insert(update.queue.clone(), now);
                        yield Changed::Queues(BTreeSet::from([update.queue]));
                    } else {
                        pending.insert(update.queue);
                        flush_at.get_or_insert(now + interval);
                    }
                }
                Some(Err(RecvError::Lagged(_))) => {
                    pending.clear();
                    flush_at = None;
                    last_sent.clear();
                    yield Changed::All;
                }
                Some(Err(RecvError::Closed)) => {
                    if !pending.is_empty() {
                        yield Changed::Queues(std::mem::take(&mut pending));
                    }
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use store::Position;

    fn update(queue: &str, n: u64) -> QueueUpdate {
        QueueUpdate {
            queue: queue.into(),
            position: Position::from_sequence(n),
        }
    }

    fn queues(names: &[&str]) -> Changed {
        Changed::Queues(names.iter().map(|s| s.to_string()).collect())
    }

    /// A burst of 100 updates on one queue within the interval yields two pushes:
    /// the first at once and one merged push at the end of the interval.
    #[tokio::test(start_paused = true)]
    async fn a_burst_on_one_queue_yields_a_leading_and_a_trailing_push() {
        let (tx, rx) = broadcast::channel(1024);
        let stream = coalesce(rx, Duration::from_millis(250));
        tokio::pin!(stream);
        for n in 0..100 {
            tx.send(update("support", n)).unwrap();
        }
        assert_eq!(stream.next().await, Some(queues(&["support"])));
        let started = Instant::now();
        assert_eq!(stream.next().await, Some(queues(&["support"])));
        assert!(started.elapsed() >= Duration::from_millis(249));
        drop(tx);
        assert_eq!(stream.next().await, None);
    }

    /// Updates of different queues do not hold each other back.
    #[tokio::test(start_paused = true)]
    async fn quiet_queues_go_out_at_once() {
        let (tx, rx) = broadcast::channel(16);
        let stream = coalesce(rx, Duration::from_secs(1));
        tokio::pin!(stream);
        tx.send(update("support", 1)).unwrap();
        tx.send(update("billing", 2)).unwrap();
        assert_eq!(stream.next().await, Some(queues(&["support"])));
        assert_eq!(stream.next().await, Some(queues(&["billing"])));
    }

    /// A receiver that lagged cannot know which queues changed: it is told to
    /// re-read all of them.
    #[tokio::test(start_paused = true)]
    async fn a_lagging_receiver_is_told_to_reread_everything() {
        let (tx, rx) = broadcast::channel(2);
        let stream = coalesce(rx, Duration::from_secs(1));
        tokio::pin!(stream);
        for n in 0..5 {
            tx.send(update("support", n)).unwrap();
        }
        assert_eq!(stream.next().await, Some(Changed::All));
    }
}
