//! One subscriber's stream: replay from the store after `after`, then live.
//!
//! The seam: the hub registers the subscriber for live delivery and notes its
//! own position `P` in one step under its lock, so the live buffer holds
//! exactly the matching events after `P`. The replay reads the store from
//! `after` up to and including `P` (its tickets' streams or the log: see
//! [`replay`](crate::replay); building deliveries the same way and testing
//! them the same way as the hub), then the buffer is drained, dropping
//! anything at or before `after` (a cursor handed out by a process further
//! along than this one). Nothing is read twice, nothing is missed. When the
//! hub still holds every delivery after `after` in memory, the replay is
//! those deliveries, taken in the same step as the registration, and the
//! store is not read at all.

use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use futures::stream::{BoxStream, Stream, StreamExt};
use store::{Position, StoreError};
use tokio::sync::mpsc;

use crate::gate::Permit;
use crate::replay::Source;
use crate::{Delivery, Hub, Interest, Item, Predicate, Registry};

/// How often a replay tries again after the store was unavailable, and the
/// first wait (doubled each time), before it gives up with `Lagged`: a
/// moment of a busy store (a pool timeout) should not cost the client a
/// reconnect.
const REPLAY_RETRIES: u32 = 4;
const REPLAY_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(200);

/// The stream of one subscriber: [`Item::Event`]s in log order, possibly
/// ending with one [`Item::Lagged`]. Dropping it unregisters the subscriber.
pub struct Subscription {
    items: BoxStream<'static, Item>,
    registry: Weak<Mutex<Registry>>,
    id: u64,
}

impl Stream for Subscription {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        self.items.poll_next_unpin(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.upgrade() {
            Hub::unregister(&registry, self.id);
        }
    }
}

/// A stream that registers itself later (see [`Hub::subscribe`] before the
/// hub has started); the inner subscription unregisters itself on drop.
pub(crate) fn deferred(items: BoxStream<'static, Item>) -> Subscription {
    Subscription {
        items,
        registry: Weak::new(),
        id: u64::MAX,
    }
}

/// Where a replay (`after` to the hub's position at registration) comes from.
pub(crate) enum Replay {
    /// Nothing to replay: live from the hub's position.
    Nothing,
    /// The hub's recent deliveries after `after`, all of them.
    Recent(Vec<Arc<Delivery>>),
    /// The store, read and rebuilt for this subscriber, which holds one of
    /// the gate's slots (if it took one) until the replay is done.
    Store(Source, Option<Permit>),
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn open(
    hub: &Hub,
    id: u64,
    interest: Interest,
    predicate: Predicate,
    after: Option<Position>,
    live_after: Position,
    replay: Replay,
    mut live: mpsc::Receiver<Arc<Delivery>>,
) -> Subscription {
    let store = hub.store.clone();
    let gate = hub.gate.clone();
    let items = async_stream::stream! {
        let mut reached = after.unwrap_or(live_after);
        match replay {
            Replay::Nothing => {}
            Replay::Recent(backlog) => {
                for delivery in backlog {
                    if interest.touches(&delivery) && predicate(&delivery) {
                        reached = delivery.position();
                        yield Item::Event(delivery);
                    }
                }
            }
            Replay::Store(mut source, permit) => {
                let mut retries = 0;
                let mut delay = REPLAY_RETRY_FIRST;
                loop {
                    match source.next(&*store, &gate).await {
                        Ok(Some(delivery)) => {
                            retries = 0;
                            delay = REPLAY_RETRY_FIRST;
                            if interest.touches(&delivery) && predicate(&delivery) {
                                reached = delivery.position();
                                yield Item::Event(Arc::new(delivery));
                            }
                        }
                        Ok(None) => break,
                        // `next` kept its place: the same event is tried again.
                        Err(StoreError::Unavailable(e)) if retries < REPLAY_RETRIES => {
                            tracing::debug!(error = %e, retry_in = ?delay, "replay for a subscriber waits for the store");
                            retries += 1;
                            tokio::time::sleep(delay).await;
                            delay *= 2;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "replay for a subscriber failed");
                            yield Item::Lagged { position_reached: reached };
                            return;
                        }
                    }
                }
                drop(permit);
            }
        }
        let floor = after.unwrap_or(Position::START);
        while let Some(delivery) = live.recv().await {
            if delivery.position() <= floor {
                continue;
            }
            reached = delivery.position();
            yield Item::Event(delivery);
        }
        yield Item::Lagged { position_reached: reached };
    };
    Subscription {
        items: items.boxed(),
        registry: Arc::downgrade(&hub.registry),
        id,
    }
}
