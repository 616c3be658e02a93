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
//! - [`replay`]: where a replay that reads the store gets its events: the
//!   streams of its tickets when it names tickets only, otherwise the log.
//! - [`gate`]: the bound on such replays, per owner and in total, and the
//!   floor below which a replay of the whole log is refused ([`Refusal`]).
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
//! A replay that must read the store costs what it reads: a subscriber to
//! some tickets reads their streams, not the log; a subscriber to users,
//! queues or everything reads the log, and is refused when its `after` lies
//! more than [`HubConfig::max_replay_events`] behind. Through
//! [`Hub::subscribe_as`] such replays are bounded per owner and in total
//! ([`gate`]); a refused one opens nothing and reads nothing.
//!
//! Each subscriber has a bounded buffer. The hub never waits for one: a
//! subscriber whose buffer is full is dropped, and its stream ends with
//! [`Item::Lagged`] naming the last position it received, from which it can
//! resume with `after`. Nobody else slows down and memory stays bounded.
//!
//! An event that cannot become a delivery (undecodable; see
//! [`states::BuildError::Unreadable`]) is logged and left out of live and replay
//! alike; the projections stop on it, so it shows in their status.

pub mod gate;
pub mod interest;
pub mod memo;
pub mod replay;
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

pub use gate::{Refusal, ReplayStats};
pub use interest::{Interest, Key};
pub use memo::Memo;
pub use subscription::Subscription;

use gate::Gate;
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

    /// About how many bytes the delivery holds: both states, the changes
    /// and the stored event (see `Ticket::approx_bytes`).
    pub fn approx_bytes(&self) -> usize {
        let changes: usize = self
            .changes
            .iter()
            .map(|c| c.field.len() + json_bytes(&c.old_value) + json_bytes(&c.new_value))
            .sum();
        std::mem::size_of::<Delivery>()
            + self.before.as_ref().map_or(0, Ticket::approx_bytes)
            + self.after.approx_bytes()
            + changes
            + json_bytes(&self.recorded.data)
            + json_bytes(&self.recorded.metadata)
    }
}

/// About how many bytes a JSON value holds.
fn json_bytes(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    std::mem::size_of::<Value>()
        + match value {
            Value::String(s) => s.len(),
            Value::Array(items) => items.iter().map(json_bytes).sum(),
            Value::Object(map) => map.iter().map(|(k, v)| k.len() + json_bytes(v)).sum(),
            _ => 0,
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
    /// Latest deliveries kept for replays (see the module's doc), at most
    /// this many and at most `recent_bytes` of them
    /// ([`Delivery::approx_bytes`]); the latest one is always kept.
    pub recent: usize,
    pub recent_bytes: usize,
    /// Bytes of ticket states the worker's cache may hold
    /// (`Ticket::approx_bytes`), besides its count `cached_tickets`.
    pub cached_bytes: usize,
    /// Replays reading the store at once, in total and per owner
    /// ([`Hub::subscribe_as`]).
    pub max_replays: usize,
    pub max_replays_per_owner: usize,
    /// How far behind the head (in positions: events, on the SQL stores) a
    /// replay of the whole log may start ([`Hub::subscribe_as`]).
    pub max_replay_events: u64,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            buffer: 256,
            cached_tickets: 10_000,
            recent: 2_048,
            recent_bytes: 64 << 20,
            cached_bytes: 256 << 20,
            max_replays: 64,
            max_replays_per_owner: 4,
            max_replay_events: 100_000,
        }
    }
}

/// The registry of subscribers, fed by one [`worker`]. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    registry: Arc<Mutex<Registry>>,
    store: Arc<dyn EventStore>,
    config: HubConfig,
    gate: Arc<Gate>,
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
    /// `approx_bytes` of each of `recent`, and their sum.
    recent_sizes: VecDeque<usize>,
    recent_bytes: usize,
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

/// How a registration is bounded.
enum Admit<'a> {
    /// Not at all (the process's own subscriptions).
    Free,
    /// By the slots of this owner and of the process.
    Owner(&'a str),
    /// By a slot already taken.
    Held(gate::Permit),
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
                recent_sizes: VecDeque::new(),
                recent_bytes: 0,
                recent_floor: head.unwrap_or_default(),
                closed: false,
                started: head.is_some(),
                began_at: head.unwrap_or_default(),
            })),
            store,
            config,
            gate: Arc::new(Gate::new(config.max_replays, config.max_replays_per_owner)),
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
    /// The deliveries kept for replays from memory: how many, and about how
    /// many bytes ([`Delivery::approx_bytes`]).
    pub fn recent_window(&self) -> (usize, usize) {
        let registry = self.lock();
        (registry.recent.len(), registry.recent_bytes)
    }

    pub fn subscribers(&self) -> usize {
        self.lock().subscribers.len()
    }

    /// Replays so far, for an operator.
    pub fn replay_stats(&self) -> ReplayStats {
        self.gate.stats()
    }

    /// Registers a subscriber now and returns its stream: with `after`, every
    /// matching event after it read from the store, then live; without, live
    /// from now. "Matching" is the same test both ways: `interest` touches
    /// the event and `predicate` accepts it. Dropping the stream unregisters.
    /// Its replay is not bounded: for the process's own use; a client's
    /// subscription goes through [`Hub::subscribe_as`].
    pub fn subscribe(
        &self,
        interest: Interest,
        predicate: Predicate,
        after: Option<Position>,
    ) -> Subscription {
        match self.register(interest, predicate, after, Admit::Free) {
            Ok(subscription) => subscription,
            Err(refusal) => unreachable!("an unbounded subscription is never refused: {refusal}"),
        }
    }

    /// [`Hub::subscribe`] for `owner` (the API: a user), within the bounds of
    /// [`HubConfig`]: a replay that must read the store takes one of the
    /// owner's slots and one of the process's for as long as it reads, and a
    /// replay of the whole log may not start further behind the head than
    /// `max_replay_events`. Otherwise nothing is registered and nothing read.
    pub fn subscribe_as(
        &self,
        owner: &str,
        interest: Interest,
        predicate: Predicate,
        after: Option<Position>,
    ) -> Result<Subscription, Refusal> {
        self.register(interest, predicate, after, Admit::Owner(owner))
    }

    fn register(
        &self,
        interest: Interest,
        predicate: Predicate,
        after: Option<Position>,
        admit: Admit<'_>,
    ) -> Result<Subscription, Refusal> {
        if !self.is_started() {
            // Registered once the head is known: "live from now" then means
            // from that head, the first position this hub can vouch for, even
            // when the stream is first polled after later events went by (it
            // replays them, as a resume from that head would). A bounded
            // replay takes its slot now, the head being unknown.
            let admit = match admit {
                Admit::Owner(owner) if after.is_some() => {
                    Admit::Held(self.gate.admit(Some(owner))?)
                }
                Admit::Owner(_) | Admit::Free => Admit::Free,
                Admit::Held(permit) => Admit::Held(permit),
            };
            let hub = self.clone();
            let items = async_stream::stream! {
                hub.wait_started().await;
                let from = after.or_else(|| {
                    let registry = hub.lock();
                    registry.started.then_some(registry.began_at)
                });
                let Ok(mut inner) = hub.register(interest, predicate, from, admit) else {
                    return;
                };
                while let Some(item) = futures::StreamExt::next(&mut inner).await {
                    yield item;
                }
            };
            return Ok(subscription::deferred(Box::pin(items)));
        }
        let (sender, receiver) = mpsc::channel(self.config.buffer.max(1));
        let (id, live_after, replay) = {
            let mut registry = self.lock();
            let live_after = registry.position;
            let replay = match after {
                Some(after) if after < live_after => {
                    self.replay(&registry, &interest, after, live_after, admit)?
                }
                _ => subscription::Replay::Nothing,
            };
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
            (id, live_after, replay)
        };
        Ok(subscription::open(
            self, id, interest, predicate, after, live_after, replay, receiver,
        ))
    }

    /// Where the replay from `after` to `live_after` comes from, taking a
    /// slot of the gate when it reads the store; called under the lock, so
    /// the recent deliveries are those up to `live_after`.
    fn replay(
        &self,
        registry: &Registry,
        interest: &Interest,
        after: Position,
        live_after: Position,
        admit: Admit<'_>,
    ) -> Result<subscription::Replay, Refusal> {
        if after >= registry.recent_floor {
            let start = registry.recent.partition_point(|d| d.position() <= after);
            let backlog = registry.recent.range(start..).cloned().collect();
            return Ok(subscription::Replay::Recent(backlog));
        }
        let source = match replay::tickets_only(interest) {
            Some(ids) => replay::Source::Tickets(replay::TicketReplay::new(ids, after, live_after)),
            None => {
                let behind = live_after.commit.saturating_sub(after.commit);
                if matches!(admit, Admit::Owner(_)) && behind > self.config.max_replay_events {
                    self.gate.refuse();
                    return Err(Refusal::TooOld {
                        after,
                        head: live_after,
                        max_events: self.config.max_replay_events,
                    });
                }
                replay::Source::Log(replay::LogReplay::new(after, live_after))
            }
        };
        let permit = match admit {
            Admit::Free => None,
            Admit::Owner(owner) => Some(self.gate.admit(Some(owner))?),
            Admit::Held(permit) => Some(permit),
        };
        Ok(subscription::Replay::Store(source, permit))
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
        let size = delivery.approx_bytes();
        registry.recent.push_back(delivery);
        registry.recent_sizes.push_back(size);
        registry.recent_bytes += size;
        while registry.recent.len() > self.config.recent
            || (registry.recent_bytes > self.config.recent_bytes && registry.recent.len() > 1)
        {
            let (Some(oldest), Some(size)) = (
                registry.recent.pop_front(),
                registry.recent_sizes.pop_front(),
            ) else {
                break;
            };
            registry.recent_bytes -= size;
            registry.recent_floor = oldest.position();
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
