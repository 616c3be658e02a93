//! Where a replay that reads the store gets its events: [`TicketReplay`],
//! the streams of the subscriber's tickets when its interest names tickets
//! only (`ticketUpdated`, a filter on ticket ids), so its cost follows those
//! tickets; otherwise [`LogReplay`], the log read in position order.
//!
//! Both yield the deliveries after `after` up to and including the hub's
//! position at registration, in log order and built as the hub builds them
//! (the state before each event folded from its stream, the state after,
//! the field changes), so the seam with live delivery is the same for both.
//! Neither tests interest or predicate: the subscription does.

use std::collections::VecDeque;

use domain::Ticket;
use store::{EventStore, Position, RecordedEvent, StoreError};
use uuid::Uuid;

use crate::gate::Gate;
use crate::states::{BuildError, TicketStates};
use crate::{Delivery, Memo};

/// Events read from the log per replay query.
const REPLAY_PAGE: usize = 500;
/// Tickets whose state one log replay keeps in memory.
const REPLAY_CACHE: usize = 1_000;

/// Bytes of ticket states one replay keeps (`Ticket::approx_bytes`): a
/// replay's cache is its own, so this bounds each bounded replay.
const REPLAY_CACHE_BYTES: usize = 16 << 20;

/// A replay's source of deliveries.
pub(crate) enum Source {
    Log(LogReplay),
    Tickets(TicketReplay),
}

impl Source {
    /// The next delivery, `None` at the end. After an error the source has
    /// kept its place: calling again tries the same read once more.
    pub async fn next(
        &mut self,
        store: &dyn EventStore,
        gate: &Gate,
    ) -> Result<Option<Delivery>, StoreError> {
        match self {
            Source::Log(log) => log.next(store, gate).await,
            Source::Tickets(tickets) => tickets.next(store, gate).await,
        }
    }
}

/// The log between `after` (exclusive) and `until` (inclusive), as deliveries.
pub(crate) struct LogReplay {
    cursor: Position,
    until: Position,
    page: std::vec::IntoIter<RecordedEvent>,
    states: TicketStates,
}

impl LogReplay {
    pub fn new(after: Position, until: Position) -> LogReplay {
        LogReplay {
            cursor: after,
            until,
            page: Vec::new().into_iter(),
            states: TicketStates::new(REPLAY_CACHE, REPLAY_CACHE_BYTES),
        }
    }

    async fn next(
        &mut self,
        store: &dyn EventStore,
        gate: &Gate,
    ) -> Result<Option<Delivery>, StoreError> {
        loop {
            if self.cursor >= self.until {
                return Ok(None);
            }
            let Some(recorded) = self.page.next() else {
                let page = store.read_all(self.cursor, REPLAY_PAGE).await?;
                gate.read(page.len());
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

/// The streams of some tickets between `after` (exclusive) and `until`
/// (inclusive), merged in log order. Each stream is read whole (the events
/// at or before `after` give the state before the first one replayed), so
/// the cost is those streams, whatever the log holds besides.
pub(crate) struct TicketReplay {
    ids: Vec<Uuid>,
    after: Position,
    until: Position,
    /// Each ticket's events still to replay and its state before them;
    /// `None` until the streams are read.
    cursors: Option<Vec<TicketCursor>>,
}

struct TicketCursor {
    id: Uuid,
    pending: VecDeque<RecordedEvent>,
    state: Option<Ticket>,
}

impl TicketReplay {
    pub fn new(ids: Vec<Uuid>, after: Position, until: Position) -> TicketReplay {
        TicketReplay {
            ids,
            after,
            until,
            cursors: None,
        }
    }

    async fn next(
        &mut self,
        store: &dyn EventStore,
        gate: &Gate,
    ) -> Result<Option<Delivery>, StoreError> {
        if self.cursors.is_none() {
            let mut cursors = Vec::with_capacity(self.ids.len());
            for id in &self.ids {
                let events = store::read_whole_stream(store, &domain::stream_name(*id)).await?;
                gate.read(events.len());
                cursors.push(TicketCursor::new(*id, events, self.after, self.until));
            }
            self.cursors = Some(cursors);
        }
        let Some(cursors) = self.cursors.as_mut() else {
            return Ok(None);
        };
        loop {
            let Some(earliest) = cursors
                .iter_mut()
                .filter(|c| !c.pending.is_empty())
                .min_by_key(|c| c.pending.front().map(|e| e.position))
            else {
                return Ok(None);
            };
            if let Some(delivery) = earliest.next() {
                return Ok(Some(delivery));
            }
        }
    }
}

impl TicketCursor {
    /// The cursor over `events` (one stream, in version order) after
    /// `after` up to `until`, with the state they start from.
    fn new(id: Uuid, events: Vec<RecordedEvent>, after: Position, until: Position) -> TicketCursor {
        let mut cursor = TicketCursor {
            id,
            pending: events
                .into_iter()
                .take_while(|e| e.position <= until)
                .collect(),
            state: None,
        };
        while cursor.pending.front().is_some_and(|e| e.position <= after) {
            if cursor.next().is_none() && cursor.pending.is_empty() {
                break;
            }
        }
        cursor
    }

    /// The delivery of the next event. An event that does not make a ticket
    /// (undecodable, out of order) ends the cursor: the hub cannot build it
    /// nor any later event of the ticket, and leaves them all out.
    fn next(&mut self) -> Option<Delivery> {
        let recorded = self.pending.pop_front()?;
        let delivered = ticket_stream::decode(&recorded).ok().and_then(|event| {
            let before = self.state.take();
            let after = domain::evolve(before.clone(), &event)?;
            (after.version == recorded.version).then_some((event, before, after))
        });
        let Some((event, before, after)) = delivered else {
            tracing::error!(ticket = %self.id, position = %recorded.position, "replay skips a ticket from an event it cannot build");
            self.pending.clear();
            return None;
        };
        self.state = Some(after.clone());
        let changes = domain::diff(before.as_ref(), &after);
        Some(Delivery {
            recorded,
            event,
            before,
            after,
            changes,
            memo: Memo::default(),
        })
    }
}

/// The ticket ids an interest is made of, when it names tickets only.
pub(crate) fn tickets_only(interest: &crate::Interest) -> Option<Vec<Uuid>> {
    let crate::Interest::Keys(keys) = interest else {
        return None;
    };
    let mut ids = Vec::with_capacity(keys.len());
    for key in keys {
        let crate::Key::Ticket(id) = key else {
            return None;
        };
        if !ids.contains(id) {
            ids.push(*id);
        }
    }
    Some(ids)
}
