//! # Layout
//! The live fan-out: one worker per server process tails the log, turns each
//! ticket event into a [`Delivery`] (the event with the ticket right before
//! and right after it and its field changes, built once and shared) and hands
//! it to the [`Hub`], which passes it to the subscribers it concerns. It sits
//! between the store, whose log it tails, and the API, whose GraphQL
//! subscriptions are its subscribers; it is no projection and writes nothing.
//!
//! - [`interest`]: what a subscriber registers for ([`Interest`], [`Key`]) and
//!   the index that finds the interested subscribers of an event by key, so an
//!   event costs in proportion to the subscribers it concerns, not to those
//!   connected.
//! - [`states`]: building deliveries, with an LRU cache of recent ticket states.
//! - [`worker`]: the task that tails the log into the hub.
//! - [`subscription`]: one subscriber's stream: replay after a cursor, then live,
//!   without gap or duplicate at the seam.
//! - [`memo`]: [`Memo`], a slot on each delivery where its consumer keeps what
//!   it works out once per delivery (the API keeps its renderings there); the
//!   hub never looks inside.
//!
//! Outside `src/`: `tests/hub` runs the hub against real stores (interest
//! indexing, slow subscribers, the seam between replay and live, a store that
//! fails); the `bench` crate's `fanout` and `resume` scenarios measure it
//! through the server.
//!
//! The hub keeps the last [`HubConfig::recent`] deliveries it dispatched: a
//! subscriber resuming with an `after` among them (the usual case: a client
//! that reconnects or lagged a moment ago, or subscribes at the cursor it
//! just got) is served its replay from memory, taken under the same lock as
//! its registration, instead of reading and rebuilding the log on its own;
//! thousands resubscribing at once otherwise swamp the store's pool.
//!
//! Each subscriber has a bounded buffer. The hub never waits for one: a
//! subscriber whose buffer is full is dropped, and its stream ends with
//! [`Item::Lagged`] naming the last position it received, from which it can
//! resume with `after`. Nobody else slows down and memory stays bounded.
//!
//! An event that cannot become a delivery (undecodable; see
//! [`states::BuildError::Unreadable`]) is logged and left out of live and replay
//! alike; the projections stop on it, so it shows in their status.

pub mod interest;
pub mod memo;
pub mod states;
pub mod subscription;
pub mod worker;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use domain::{FieldChange, Ticket, TicketEvent};
use store::{EventStore, Position, RecordedEvent, StoreError};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use interest::{Interest, Key};
pub use memo::Memo;
pub use subscription::Subscription;

use interest::Index;

/// One ticket event as subscribers receive it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub recorded: RecordedEvent,
    pub event: TicketEvent,
    /// The ticket right before the event (`None` for its creation).
    pub before: Option<Ticket>,
    pub after: Ticket,
    /// `domain::diff(before, after)`.
    pub changes: Vec<FieldChange>,
    /// What the consumer works out once for this delivery and shares among
    /// its subscribers (the API: renderings; see [`memo`]).
    pub memo: Memo,
}

impl Delivery {
    pub fn position(&self) -> Position {
        self.recorded.position
    }
}

/// The final say on a delivery the subscriber's interest let through: the API
/// applies `domain::may_receive` and the subscription's filter here. It runs
/// on the fan-out worker, under the hub's lock: keep it quick and pure.
pub type Predicate = Arc<dyn Fn(&Delivery) -> bool + Send + Sync>;

/// What a subscription's stream yields.
#[derive(Debug, Clone)]
pub enum Item {
    Event(Arc<Delivery>),
    /// The last item: the subscriber fell too far behind (or the hub stopped,
    /// or the log could not be read during replay). It has received every
    /// matching event up to `position_reached` (the last one it received, or
    /// where it started) and resumes without gap with `after: position_reached`.
    Lagged {
        position_reached: Position,
    },
}

/// Tunables of the hub.
#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    /// Deliveries buffered per subscriber before it counts as lagging.
    pub buffer: usize,
    /// Tickets whose latest state the worker keeps in memory.
    pub cached_tickets: usize,
    /// Latest deliveries kept for replays (see the module's doc).
    pub recent: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            buffer: 256,
            cached_tickets: 10_000,
            recent: 2_048,
        }
    }
}

/// The registry of subscribers, fed by one [`worker`]. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    registry: Arc<Mutex<Registry>>,
    store: Arc<dyn EventStore>,
    config: HubConfig,
    /// Woken when the hub learns the head of the log (or closes).
    started: Arc<Notify>,
}

pub(crate) struct Registry {
    next_id: u64,
    /// The last event the hub has dispatched (or skipped): a subscriber
    /// registered now receives live exactly the events after it.
    position: Position,
    index: Index,
    subscribers: HashMap<u64, Subscriber>,
    /// Every delivery dispatched after `recent_floor`, in log order (at most
    /// `HubConfig::recent`).
    recent: VecDeque<Arc<Delivery>>,
    recent_floor: Position,
    closed: bool,
    /// False until the head of the log is known: a server whose log is
    /// unreachable at start still starts, and its hub begins at the head
    /// once the log answers (see [`Hub::start_joinable`]).
    started: bool,
    /// The head the hub began at: where a subscription opened "live from
    /// now" before the head was known begins, whenever it is first polled.
    began_at: Position,
}

struct Subscriber {
    interest: Interest,
    predicate: Predicate,
    sender: mpsc::Sender<Arc<Delivery>>,
}

impl Registry {
    fn remove(&mut self, id: u64) {
        if let Some(subscriber) = self.subscribers.remove(&id) {
            self.index.remove(id, &subscriber.interest);
        }
    }
}

/// How long the server's start waits for the log's head before starting the
/// hub without it.
const HEAD_AT_START: std::time::Duration = std::time::Duration::from_secs(2);

impl Hub {
    /// Starts the hub at the current head of the log and spawns its worker,
    /// which runs until `shutdown` (then every stream ends with `Lagged`).
    pub async fn start(
        store: Arc<dyn EventStore>,
        config: HubConfig,
        shutdown: CancellationToken,
    ) -> Result<Hub, StoreError> {
        Ok(Hub::start_joinable(store, config, shutdown).await?.0)
    }

    /// [`Hub::start`], also returning the worker's handle, so a server's
    /// shutdown can wait until the hub has closed every stream.
    #[tracing::instrument(name = "fanout_start", skip_all, err)]
    pub async fn start_joinable(
        store: Arc<dyn EventStore>,
        config: HubConfig,
        shutdown: CancellationToken,
    ) -> Result<(Hub, JoinHandle<()>), StoreError> {
        // The head now if the log answers promptly; otherwise the worker
        // keeps asking, and subscriptions opened meanwhile wait for it.
        let head = match tokio::time::timeout(HEAD_AT_START, store.head()).await {
            Ok(Ok(head)) => Some(head),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the log's head is unknown; the fan-out starts when the log answers");
                None
            }
            Err(_) => {
                tracing::warn!("the log did not answer in time; the fan-out starts when it does");
                None
            }
        };
        let hub = Hub {
            registry: Arc::new(Mutex::new(Registry {
                next_id: 0,
                position: head.unwrap_or_default(),
                index: Index::default(),
                subscribers: HashMap::new(),
                recent: VecDeque::new(),
                recent_floor: head.unwrap_or_default(),
                closed: false,
                started: head.is_some(),
                began_at: head.unwrap_or_default(),
            })),
            store,
            config,
            started: Arc::new(Notify::new()),
        };
        let worker = tokio::spawn(worker::tail(hub.clone(), shutdown));
        Ok((hub, worker))
    }

    /// Whether the hub knows where the log's head was when it started.
    pub(crate) fn is_started(&self) -> bool {
        self.lock().started
    }

    /// Records the head the worker read (once), waking waiting subscriptions.
    pub(crate) fn begin_at(&self, head: Position) {
        {
            let mut registry = self.lock();
            registry.position = head;
            registry.recent_floor = head;
            registry.began_at = head;
            registry.started = true;
        }
        self.started.notify_waiters();
    }

    /// Waits until the hub has started or closed.
    async fn wait_started(&self) {
        loop {
            let notified = self.started.notified();
            {
                let registry = self.lock();
                if registry.started || registry.closed {
                    return;
                }
            }
            notified.await;
        }
    }

    /// The last position the hub has dispatched.
    pub fn position(&self) -> Position {
        self.lock().position
    }

    /// Subscribers currently registered.
    pub fn subscribers(&self) -> usize {
        self.lock().subscribers.len()
    }

    /// Registers a subscriber now and returns its stream: with `after`, every
    /// matching event after it read from the log, then live; without, live
    /// from now. "Matching" is the same test both ways: `interest` touches
    /// the event and `predicate` accepts it. Dropping the stream unregisters.
    pub fn subscribe(
        &self,
        interest: Interest,
        predicate: Predicate,
        after: Option<Position>,
    ) -> Subscription {
        if !self.is_started() {
            // Registered once the head is known: "live from now" then means
            // from that head, the first position this hub can vouch for, even
            // when the stream is first polled after later events went by (it
            // replays them, as a resume from that head would).
            let hub = self.clone();
            let items = async_stream::stream! {
                hub.wait_started().await;
                let from = after.or_else(|| {
                    let registry = hub.lock();
                    registry.started.then_some(registry.began_at)
                });
                let mut inner = hub.subscribe(interest, predicate, from);
                while let Some(item) = futures::StreamExt::next(&mut inner).await {
                    yield item;
                }
            };
            return subscription::deferred(Box::pin(items));
        }
        let (sender, receiver) = mpsc::channel(self.config.buffer.max(1));
        let (id, live_after, backlog) = {
            let mut registry = self.lock();
            let id = registry.next_id;
            registry.next_id += 1;
            if !registry.closed {
                registry.index.insert(id, &interest);
                registry.subscribers.insert(
                    id,
                    Subscriber {
                        interest: interest.clone(),
                        predicate: predicate.clone(),
                        sender,
                    },
                );
            }
            // The replay from memory when it covers `after`.
            let backlog = after
                .filter(|after| *after >= registry.recent_floor)
                .map(|after| {
                    let start = registry.recent.partition_point(|d| d.position() <= after);
                    registry.recent.range(start..).cloned().collect::<Vec<_>>()
                });
            (id, registry.position, backlog)
        };
        let replay = match backlog {
            Some(backlog) => subscription::Replay::Recent(backlog),
            None => subscription::Replay::Log,
        };
        subscription::open(
            self, id, interest, predicate, after, live_after, replay, receiver,
        )
    }

    /// Passes `delivery` to every interested subscriber whose predicate takes
    /// it, dropping those that cannot keep up.
    pub(crate) fn dispatch(&self, delivery: Arc<Delivery>) {
        let mut registry = self.lock();
        let mut dropped = Vec::new();
        for id in registry.index.interested(&delivery) {
            let Some(subscriber) = registry.subscribers.get(&id) else {
                continue;
            };
            if !(subscriber.predicate)(&delivery) {
                continue;
            }
            if subscriber.sender.try_send(delivery.clone()).is_err() {
                // Full: too far behind. Closed: the stream is gone.
                dropped.push(id);
            }
        }
        for id in dropped {
            tracing::debug!(subscriber = id, position = %delivery.position(), "subscriber dropped");
            registry.remove(id);
        }
        registry.position = delivery.position();
        registry.recent.push_back(delivery);
        while registry.recent.len() > self.config.recent {
            if let Some(oldest) = registry.recent.pop_front() {
                registry.recent_floor = oldest.position();
            }
        }
    }

    /// Moves past an event that concerns no subscriber.
    pub(crate) fn skip(&self, position: Position) {
        self.lock().position = position;
    }

    /// Ends every stream (with `Lagged`) and refuses new live registrations.
    pub(crate) fn close(&self) {
        let mut registry = self.lock();
        registry.closed = true;
        registry.subscribers.clear();
        registry.index = Index::default();
        drop(registry);
        self.started.notify_waiters();
    }

    pub(crate) fn unregister(registry: &Mutex<Registry>, id: u64) {
        if let Ok(mut registry) = registry.lock() {
            registry.remove(id);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic in a predicate poisons the lock; the registry itself is
        // still consistent (every change to it is one statement).
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }
}
