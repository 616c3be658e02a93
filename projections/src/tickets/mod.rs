//! The tickets projection: `tickets` (current state of each ticket), its child
//! tables (`ticket_comments`, `ticket_attachments`, `ticket_watchers`,
//! `ticket_tags`, `ticket_relations`) and `ticket_activity` (one row per event,
//! with the field changes it made).
//!
//! The state before an event is the `tickets.state` of the same transaction, so
//! applying an event is one row read and a few writes, never a stream re-read.
//! Activity belongs here rather than in a projection of its own because its
//! changes are `diff(before, after)`, and only this projection holds `before`
//! consistently with the log.
//!
//! Every write is guarded by position: an event at or before the ticket's
//! `(position, prepare_offset)` is a no-op, child rows are inserted `ON CONFLICT DO NOTHING`.
//! The SQL is shared; what differs per database is the column types, so
//! [`sqlite`] and [`postgres`] bind values in each database's native types.

mod postgres;
mod sqlite;

use std::collections::hash_map::{Entry, HashMap};

use async_trait::async_trait;
use domain::{Attachment, Comment, Ticket, TicketEvent};
use store::RecordedEvent;
use uuid::Uuid;

use crate::db::{ReadTx, RowPosition};
use crate::error::ApplyError;
use crate::runner::Projection;

/// The checkpoint name of [`TicketsProjection`].
pub const NAME: &str = "tickets";

/// Writes `tickets`, its child tables and `ticket_activity` from `ticket-*` streams.
#[derive(Debug, Clone, Copy, Default)]
pub struct TicketsProjection;

#[async_trait]
impl Projection for TicketsProjection {
    fn name(&self) -> &str {
        NAME
    }

    fn tables(&self) -> &[&'static str] {
        &[
            "tickets",
            "ticket_comments",
            "ticket_attachments",
            "ticket_watchers",
            "ticket_tags",
            "ticket_relations",
            "ticket_activity",
        ]
    }

    async fn apply(&self, tx: &mut ReadTx, event: &RecordedEvent) -> Result<(), ApplyError> {
        let mut tickets = Tickets::default();
        tickets.apply(tx, event).await?;
        tickets.flush(tx).await
    }

    /// Each ticket of the batch is read once and its row written once, at
    /// the end; activity and child rows are written event by event.
    async fn apply_batch(
        &self,
        tx: &mut ReadTx,
        events: &[&RecordedEvent],
    ) -> Result<(), ApplyError> {
        let mut tickets = Tickets::default();
        for event in events {
            tickets.apply(tx, event).await?;
        }
        tickets.flush(tx).await
    }
}

/// The tickets a batch touched: each as stored before the batch, then as
/// evolved by its events, until [`Tickets::flush`] writes the rows.
#[derive(Default)]
struct Tickets {
    /// `None`: not created yet. `Some((position, ticket, changed))`.
    known: HashMap<Uuid, Option<(RowPosition, Ticket, bool)>>,
    /// The order tickets were first changed in, so rows are written in a
    /// stable order.
    changed: Vec<Uuid>,
}

impl Tickets {
    async fn apply(&mut self, tx: &mut ReadTx, event: &RecordedEvent) -> Result<(), ApplyError> {
        let Some(stream_ticket) = event.stream_id.strip_prefix(domain::STREAM_PREFIX) else {
            return Ok(());
        };
        let ticket_id = Uuid::parse_str(stream_ticket).map_err(|e| {
            ApplyError::Poison(format!(
                "stream {} names no ticket id: {e}",
                event.stream_id
            ))
        })?;
        let position = RowPosition::of(event.position)?;
        let decoded = domain::decode(&event.event_type, event.schema_version, &event.data)
            .map_err(|e| ApplyError::Poison(format!("cannot decode {}: {e}", event.event_type)))?;
        let entry = match self.known.entry(ticket_id) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(unknown) => {
                let stored = load(tx, ticket_id).await?;
                unknown.insert(stored.map(|(at, ticket)| (at, ticket, false)))
            }
        };
        if matches!(entry, Some((applied, _, _)) if *applied >= position) {
            return Ok(());
        }
        let before = entry.take();
        let before_ticket = before.as_ref().map(|(_, t, _)| t);
        let after = domain::evolve(before_ticket.cloned(), &decoded).ok_or_else(|| {
            ApplyError::Poison(format!(
                "{} on ticket {ticket_id}, which has no TicketCreated event",
                event.event_type
            ))
        });
        let after = match after {
            Ok(after) => after,
            Err(e) => {
                *entry = before;
                return Err(e);
            }
        };
        if after.id != ticket_id || after.version != event.version {
            *entry = before;
            return Err(ApplyError::Poison(format!(
                "ticket {} at version {} does not match stream {} at version {}",
                after.id, after.version, event.stream_id, event.version
            )));
        }
        let write = TicketWrite::new(event, position, &decoded, before_ticket, &after)?;
        let written = match tx {
            ReadTx::Sqlite(tx) => sqlite::write_event(tx, &write).await,
            ReadTx::Postgres(tx) => postgres::write_event(tx, &write).await,
        };
        written.map_err(ApplyError::Database)?;
        if !before.as_ref().is_some_and(|(_, _, changed)| *changed) {
            self.changed.push(ticket_id);
        }
        *entry = Some((position, after, true));
        Ok(())
    }

    /// Writes the row of every ticket changed since the last flush.
    async fn flush(&mut self, tx: &mut ReadTx) -> Result<(), ApplyError> {
        for ticket_id in self.changed.drain(..) {
            let Some(Some((position, ticket, changed))) = self.known.get_mut(&ticket_id) else {
                continue;
            };
            *changed = false;
            let state = serde_json::to_value(&*ticket).map_err(|e| {
                ApplyError::Poison(format!(
                    "cannot serialise the state of ticket {ticket_id}: {e}"
                ))
            })?;
            let written = match tx {
                ReadTx::Sqlite(tx) => sqlite::write_ticket(tx, ticket, &state, *position).await,
                ReadTx::Postgres(tx) => postgres::write_ticket(tx, ticket, &state, *position).await,
            };
            written.map_err(|e| match e.as_database_error() {
                // Two tickets claiming one reference: the log is wrong, retrying
                // cannot help.
                Some(db) if db.is_unique_violation() => ApplyError::Poison(format!(
                    "ticket {ticket_id} conflicts with another ticket: {db}"
                )),
                _ => ApplyError::Database(e),
            })?;
        }
        Ok(())
    }
}

/// The ticket's row as stored: its position and state.
async fn load(
    tx: &mut ReadTx,
    ticket_id: Uuid,
) -> Result<Option<(RowPosition, Ticket)>, ApplyError> {
    let stored = match tx {
        ReadTx::Sqlite(tx) => sqlite::load(tx, ticket_id).await?,
        ReadTx::Postgres(tx) => postgres::load(tx, ticket_id).await?,
    };
    stored
        .map(|(at, state)| serde_json::from_value::<Ticket>(state).map(|t| (at, t)))
        .transpose()
        .map_err(|e| {
            ApplyError::Poison(format!(
                "stored state of ticket {ticket_id} is unreadable: {e}"
            ))
        })
}

/// Everything one event writes, in database-neutral values.
pub(crate) struct TicketWrite<'a> {
    pub position: RowPosition,
    pub event_id: Uuid,
    pub ticket: &'a Ticket,
    pub event_type: &'static str,
    pub actor: &'a str,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    pub changes: serde_json::Value,
    pub comments_added: Vec<&'a Comment>,
    pub attachments_added: Vec<&'a Attachment>,
    pub watchers_added: Vec<&'a str>,
    pub watchers_removed: Vec<&'a str>,
    pub tags_added: Vec<&'a str>,
    pub tags_removed: Vec<&'a str>,
    pub related_added: Vec<Uuid>,
    pub related_removed: Vec<Uuid>,
}

impl<'a> TicketWrite<'a> {
    fn new(
        event: &RecordedEvent,
        position: RowPosition,
        decoded: &'a TicketEvent,
        before: Option<&'a Ticket>,
        after: &'a Ticket,
    ) -> Result<Self, ApplyError> {
        let json = |what: &str, e: serde_json::Error| {
            ApplyError::Poison(format!(
                "cannot serialise the {what} of ticket {}: {e}",
                after.id
            ))
        };
        let changes =
            serde_json::to_value(domain::diff(before, after)).map_err(|e| json("changes", e))?;
        // Lists of the ticket before the event: empty before its creation.
        let comments = before.map_or(&[][..], |t| &t.comments[..]);
        let attachments = before.map_or(&[][..], |t| &t.attachments[..]);
        let watchers = before.map_or(&[][..], |t| &t.watchers[..]);
        let tags = before.map_or(&[][..], |t| &t.tags[..]);
        let related = before.map_or(&[][..], |t| &t.related[..]);
        Ok(TicketWrite {
            position,
            event_id: event.id,
            ticket: after,
            event_type: decoded.event_type().as_str(),
            actor: &decoded.actor,
            occurred_at: decoded.at,
            changes,
            comments_added: added_by_id(comments, &after.comments, |c| c.id),
            attachments_added: added_by_id(attachments, &after.attachments, |a| a.id),
            watchers_added: missing(&after.watchers, watchers),
            watchers_removed: missing(watchers, &after.watchers),
            tags_added: missing(&after.tags, tags),
            tags_removed: missing(tags, &after.tags),
            related_added: missing_ids(&after.related, related),
            related_removed: missing_ids(related, &after.related),
        })
    }
}

/// Items of `after` whose id is not in `before`.
fn added_by_id<'a, T>(before: &[T], after: &'a [T], id: impl Fn(&T) -> Uuid) -> Vec<&'a T> {
    after
        .iter()
        .filter(|item| !before.iter().any(|old| id(old) == id(item)))
        .collect()
}

/// Strings of `from` that are not in `other`.
fn missing<'a>(from: &'a [String], other: &[String]) -> Vec<&'a str> {
    from.iter()
        .filter(|s| !other.contains(s))
        .map(String::as_str)
        .collect()
}

fn missing_ids(from: &[Uuid], other: &[Uuid]) -> Vec<Uuid> {
    from.iter()
        .filter(|id| !other.contains(id))
        .copied()
        .collect()
}

/// The SQL both databases run; `$n` parameters work in both through sqlx.
pub(crate) mod sql {
    pub const LOAD: &str = "SELECT position, prepare_offset, state FROM tickets WHERE id = $1";

    pub const UPSERT_TICKET: &str = "INSERT INTO tickets (id, reference, request, description, \
        status, priority, queue, created_by, assigned_to, created_at, updated_at, \
        first_response_at, resolved_at, deleted, version, state, position, prepare_offset) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
        $18) \
        ON CONFLICT (id) DO UPDATE SET reference = excluded.reference, \
        request = excluded.request, description = excluded.description, \
        status = excluded.status, priority = excluded.priority, queue = excluded.queue, \
        created_by = excluded.created_by, assigned_to = excluded.assigned_to, \
        created_at = excluded.created_at, updated_at = excluded.updated_at, \
        first_response_at = excluded.first_response_at, resolved_at = excluded.resolved_at, \
        deleted = excluded.deleted, version = excluded.version, state = excluded.state, \
        position = excluded.position, prepare_offset = excluded.prepare_offset \
        WHERE (tickets.position, tickets.prepare_offset) \
        < (excluded.position, excluded.prepare_offset)";

    pub const INSERT_ACTIVITY: &str = "INSERT INTO ticket_activity (position, prepare_offset, \
        event_id, ticket_id, version, event_type, actor, occurred_at, changes) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
        ON CONFLICT (position, prepare_offset) DO NOTHING";

    pub const INSERT_COMMENT: &str = "INSERT INTO ticket_comments (ticket_id, id, body, \
        internal, author, created_at, position, prepare_offset) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
        ON CONFLICT (ticket_id, id) DO NOTHING";

    pub const INSERT_ATTACHMENT: &str = "INSERT INTO ticket_attachments (ticket_id, id, name, \
        url, mime_type, size, added_by, added_at, position, prepare_offset) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (ticket_id, id) DO NOTHING";

    pub const INSERT_WATCHER: &str = "INSERT INTO ticket_watchers (ticket_id, user_id) \
        VALUES ($1, $2) ON CONFLICT (ticket_id, user_id) DO NOTHING";
    pub const DELETE_WATCHER: &str =
        "DELETE FROM ticket_watchers WHERE ticket_id = $1 AND user_id = $2";

    pub const INSERT_TAG: &str = "INSERT INTO ticket_tags (ticket_id, tag) VALUES ($1, $2) \
        ON CONFLICT (ticket_id, tag) DO NOTHING";
    pub const DELETE_TAG: &str = "DELETE FROM ticket_tags WHERE ticket_id = $1 AND tag = $2";

    pub const INSERT_RELATION: &str = "INSERT INTO ticket_relations (ticket_id, related_id) \
        VALUES ($1, $2) ON CONFLICT (ticket_id, related_id) DO NOTHING";
    pub const DELETE_RELATION: &str =
        "DELETE FROM ticket_relations WHERE ticket_id = $1 AND related_id = $2";
}
