//! Turning a recorded event into a [`Delivery`]: the ticket right before and
//! right after it, and the field changes between them.
//!
//! The state after each event is kept in a bounded LRU cache by ticket, so the
//! next event of a recently active ticket costs one `evolve` and one `diff`. On
//! a miss (a ticket quiet for long, or the first event seen of it) the stream is
//! read up to the event's version and folded by `ticket_stream`: the same
//! states as `domain::history` gives for that stream, never a guess.

use std::num::NonZeroUsize;

use domain::{Ticket, TicketEvent};
use lru::LruCache;
use store::{EventStore, RecordedEvent, StoreError};
use ticket_stream::LoadError;
use uuid::Uuid;

use crate::{Delivery, Memo};

/// Why an event could not become a delivery.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Reading the ticket's stream failed: retry later.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The event or its stream does not make a ticket (undecodable, or out of
    /// order). Retrying cannot help; the event is left out of every stream.
    #[error("event {event_id} cannot be delivered: {reason}")]
    Unreadable { event_id: Uuid, reason: String },
}

/// Recent ticket states, at most `capacity` tickets and `max_bytes` of them
/// (`Ticket::approx_bytes`).
///
/// The cache grows as tickets are seen instead of reserving room for
/// `capacity` up front: every subscription that resumes with `after` has one
/// (most replay a few events, or none), and a map reserved for `capacity`
/// tickets would cost each of them that memory from the start.
pub struct TicketStates {
    /// Each state with its size.
    cache: LruCache<Uuid, (Ticket, usize)>,
    capacity: NonZeroUsize,
    max_bytes: usize,
    bytes: usize,
}

impl TicketStates {
    pub fn new(capacity: usize, max_bytes: usize) -> TicketStates {
        TicketStates {
            cache: LruCache::unbounded(),
            capacity: NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            max_bytes,
            bytes: 0,
        }
    }

    /// Keeps `ticket` as the latest state of `id`, then forgets the least
    /// recently used states while over either bound (the newest stays).
    fn keep(&mut self, id: Uuid, ticket: Ticket) {
        let size = ticket.approx_bytes();
        if let Some((_, replaced)) = self.cache.put(id, (ticket, size)) {
            self.bytes -= replaced;
        }
        self.bytes += size;
        while self.cache.len() > self.capacity.get()
            || (self.bytes > self.max_bytes && self.cache.len() > 1)
        {
            let Some((_, (_, size))) = self.cache.pop_lru() else {
                break;
            };
            self.bytes -= size;
        }
    }

    /// The delivery of `recorded`, or `None` for an event outside the ticket
    /// streams.
    pub async fn delivery(
        &mut self,
        store: &dyn EventStore,
        recorded: RecordedEvent,
    ) -> Result<Option<Delivery>, BuildError> {
        let Some(id) = recorded.stream_id.strip_prefix(domain::STREAM_PREFIX) else {
            return Ok(None);
        };
        let unreadable = |reason: String| BuildError::Unreadable {
            event_id: recorded.id,
            reason,
        };
        let id = Uuid::parse_str(id).map_err(|e| unreadable(format!("stream name: {e}")))?;
        let event = decode(&recorded).map_err(&unreadable)?;
        let before = match recorded.version.checked_sub(1) {
            None => None,
            Some(previous) => match self.cache.get(&id) {
                Some((ticket, _)) if ticket.version == previous => Some(ticket.clone()),
                _ => Some(load(store, id, previous).await?.ok_or_else(|| {
                    unreadable(format!("ticket {id} has no state at version {previous}"))
                })?),
            },
        };
        let after = domain::evolve(before.clone(), &event)
            .ok_or_else(|| unreadable(format!("ticket {id} has no TicketCreated event")))?;
        if after.version != recorded.version {
            return Err(unreadable(format!(
                "ticket {id} reached version {} at stream version {}",
                after.version, recorded.version
            )));
        }
        let changes = domain::diff(before.as_ref(), &after);
        self.keep(id, after.clone());
        Ok(Some(Delivery {
            recorded,
            event,
            before,
            after,
            changes,
            memo: Memo::default(),
        }))
    }
}

fn decode(recorded: &RecordedEvent) -> Result<TicketEvent, String> {
    ticket_stream::decode(recorded)
        .map_err(|e| format!("cannot decode {}: {e}", recorded.event_type))
}

/// The ticket at `version`, folded from its stream.
async fn load(
    store: &dyn EventStore,
    id: Uuid,
    version: u64,
) -> Result<Option<Ticket>, BuildError> {
    let loaded = ticket_stream::load_through(store, id, version)
        .await
        .map_err(|e| match e {
            LoadError::Store(e) => BuildError::Store(e),
            LoadError::Undecodable {
                event_id,
                event_type,
                error,
                ..
            } => BuildError::Unreadable {
                event_id,
                reason: format!("cannot decode {event_type}: {error}"),
            },
        })?;
    Ok(domain::as_of_version(&loaded.decoded, version))
}
