//! One subscriber's stream: replay from the log after `after`, then live.
//!
//! The seam: the hub registers the subscriber for live delivery and notes its
//! own position `P` in one step under its lock, so the live buffer holds
//! exactly the matching events after `P`. The replay reads the log from
//! `after` up to and including `P` (building deliveries the same way and
//! testing them the same way as the hub), then the buffer is drained, dropping
//! anything at or before `after` (a cursor handed out by a process further
//! along than this one). Nothing is read twice, nothing is missed. When the
//! hub still holds every delivery after `after` in memory, the replay is
//! those deliveries, taken in the same step as the registration, and the log
//! is not read at all.

use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use futures::stream::{BoxStream, Stream, StreamExt};
use store::{Position, StoreError};
use tokio::sync::mpsc;

use crate::states::{BuildError, TicketStates};
use crate::{Delivery, Hub, Interest, Item, Predicate, Registry};

/// Events read from the log per replay query.
const REPLAY_PAGE: usize = 500;
/// Tickets whose state one replay keeps in memory.
const REPLAY_CACHE: usize = 1_000;
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
    /// The hub's recent deliveries after `after`, all of them.
    Recent(Vec<Arc<Delivery>>),
    /// The log, read and rebuilt for this subscriber.
    Log,
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
    let items = async_stream::stream! {
        let mut reached = after.unwrap_or(live_after);
        let from_log = match replay {
            Replay::Recent(backlog) => {
                for delivery in backlog {
                    if interest.touches(&delivery) && predicate(&delivery) {
                        reached = delivery.position();
                        yield Item::Event(delivery);
                    }
                }
                false
            }
            Replay::Log => true,
        };
        // Nothing to replay from the head (or beyond): no replay state.
        if let Some(after) = after.filter(|after| from_log && *after < live_after) {
            let mut replay = LogReplay::new(after, live_after);
            let mut retries = 0;
            let mut delay = REPLAY_RETRY_FIRST;
            loop {
                match replay.next(&*store).await {
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

/// The log between `after` (exclusive) and `until` (inclusive), as deliveries.
struct LogReplay {
    cursor: Position,
    until: Position,
    page: std::vec::IntoIter<store::RecordedEvent>,
    states: TicketStates,
}

impl LogReplay {
    fn new(after: Position, until: Position) -> LogReplay {
        LogReplay {
            cursor: after,
            until,
            page: Vec::new().into_iter(),
            states: TicketStates::new(REPLAY_CACHE),
        }
    }

    async fn next(
        &mut self,
        store: &dyn store::EventStore,
    ) -> Result<Option<Delivery>, StoreError> {
        loop {
            if self.cursor >= self.until {
                return Ok(None);
            }
            let Some(recorded) = self.page.next() else {
                let page = store.read_all(self.cursor, REPLAY_PAGE).await?;
                if page.is_empty() {
                    return Ok(None);
                }
                self.page = page.into_iter();
                continue;
            };
            if recorded.position > self.until {
                self.cursor = self.until;
                return Ok(None);
            }
            let position = recorded.position;
            match self.states.delivery(store, recorded).await {
                Ok(Some(delivery)) => {
                    self.cursor = position;
                    return Ok(Some(delivery));
                }
                Ok(None) | Err(BuildError::Unreadable { .. }) => self.cursor = position,
                // The cursor stays before this event: the next call reads
                // the log again from there and tries it once more.
                Err(BuildError::Store(e)) => {
                    self.page = Vec::new().into_iter();
                    return Err(e);
                }
            }
        }
    }
}
