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
//! Each table's columns and conflict rule are written once (`sql`); how a
//! batch's rows reach the database is each one's fast path:
//! `sqlite_values` (multi-row `VALUES`) and `postgres_unnest` (`UNNEST` of
//! arrays, binary `COPY` for a bulk load). The queries are in `query`.

mod postgres_unnest;
mod query;
mod sql;
mod sqlite_values;
mod writes;

use std::collections::hash_map::{Entry, HashMap};

use async_trait::async_trait;
use domain::Ticket;
use store::RecordedEvent;
use uuid::Uuid;

use crate::bind::{fetch, Arg};
use crate::db::{ReadTx, RowPosition};
use crate::error::ApplyError;
use crate::runner::{BulkLoad, Load, Projection};
use crate::ticket_event::{self, Reads, TicketRead, TicketRecord};
use writes::Writes;

pub use query::{encode_cursor, find_tickets, list_tickets, TicketFilter, TicketPage};

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
        self.apply_batch(tx, &[event]).await
    }

    /// The batch's tickets are read in one query, evolved in memory, and
    /// written at the end: each ticket's row once, activity and child rows
    /// a few multi-row statements per table.
    async fn apply_batch(
        &self,
        tx: &mut ReadTx,
        events: &[&RecordedEvent],
    ) -> Result<(), ApplyError> {
        let reads = ticket_event::read_each(events);
        apply_events(tx, events, &reads, Load::Apply).await
    }

    fn bulk_load(&self) -> Option<&dyn BulkLoad> {
        Some(self)
    }
}

#[async_trait]
impl BulkLoad for TicketsProjection {
    /// Activity rows are only inserted (`INSERT_ACTIVITY_*`, no conflict
    /// target): a PostgreSQL rebuild adds their primary key after the load.
    /// (On SQLite it is inline in the table, so it stays, and costs little:
    /// rows come in key order.)
    fn insert_only_tables(&self) -> &[&'static str] {
        &["ticket_activity"]
    }

    /// As `apply_batch`, the activity rows copied in on PostgreSQL.
    async fn load_batch(
        &self,
        tx: &mut ReadTx,
        events: &[&RecordedEvent],
        reads: Reads<'_>,
    ) -> Result<(), ApplyError> {
        apply_events(tx, events, reads.get(), Load::Bulk).await
    }
}

/// `reads`: what each of `events` decodes to.
async fn apply_events(
    tx: &mut ReadTx,
    events: &[&RecordedEvent],
    reads: &[TicketRead],
    load: Load,
) -> Result<(), ApplyError> {
    let mut tickets = Tickets::default();
    tickets.preload(tx, events).await?;
    for (event, read) in events.iter().zip(reads) {
        tickets
            .apply(tx, event, ticket_event::record(read)?)
            .await?;
    }
    tickets.flush(tx, load).await
}

/// A ticket's row to write.
pub(crate) struct TicketRow<'a> {
    pub ticket: &'a Ticket,
    /// JSON text of the whole ticket.
    pub state: String,
    pub position: RowPosition,
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
    /// Activity and child rows of the events applied since the last flush.
    pending: Writes,
}

impl Tickets {
    /// Reads, in one query, every ticket the events name that is not known
    /// yet. Stream names that are no ticket id are left to [`Tickets::apply`]
    /// to report.
    async fn preload(
        &mut self,
        tx: &mut ReadTx,
        events: &[&RecordedEvent],
    ) -> Result<(), ApplyError> {
        let wanted = ticket_event::ids_to_load(events, |id| self.known.contains_key(id));
        if wanted.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT id, position, prepare_offset, CAST(state AS TEXT) AS state FROM tickets \
             WHERE {}",
            tx.dialect().any("id", 1)
        );
        let stored = fetch(tx, &sql, &[Arg::Ids(&wanted)]).await?;
        for id in wanted {
            self.known.insert(id, None);
        }
        for row in stored {
            let id = row.id("id")?;
            let position = RowPosition {
                position: row.int("position")?,
                prepare_offset: row.int("prepare_offset")?,
            };
            let ticket: Ticket = serde_json::from_str(&row.text("state")?).map_err(|e| {
                ApplyError::Poison(format!("stored state of ticket {id} is unreadable: {e}"))
            })?;
            self.known.insert(id, Some((position, ticket, false)));
        }
        Ok(())
    }

    /// `record`: what `event` decodes to.
    async fn apply(
        &mut self,
        tx: &mut ReadTx,
        event: &RecordedEvent,
        record: Option<&TicketRecord>,
    ) -> Result<(), ApplyError> {
        let Some(&TicketRecord {
            ticket_id,
            position,
            event: ref decoded,
        }) = record
        else {
            return Ok(());
        };
        if let Entry::Vacant(_) = self.known.entry(ticket_id) {
            // Preloaded for a batch; a single event reads its ticket here.
            self.preload(tx, &[event]).await?;
        }
        let Some(entry) = self.known.get_mut(&ticket_id) else {
            return Err(ApplyError::Poison(format!(
                "ticket {ticket_id} was not loaded"
            )));
        };
        if matches!(entry, Some((applied, _, _)) if *applied >= position) {
            return Ok(());
        }
        let before = entry.take();
        let before_ticket = before.as_ref().map(|(_, t, _)| t);
        let after = domain::evolve(before_ticket.cloned(), decoded).ok_or_else(|| {
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
        if let Err(e) = self
            .pending
            .record(event, position, decoded, before_ticket, &after)
        {
            *entry = before;
            return Err(e);
        }
        if !before.as_ref().is_some_and(|(_, _, changed)| *changed) {
            self.changed.push(ticket_id);
        }
        *entry = Some((position, after, true));
        Ok(())
    }

    /// Writes the row of every ticket changed since the last flush, then the
    /// activity and child rows.
    async fn flush(&mut self, tx: &mut ReadTx, load: Load) -> Result<(), ApplyError> {
        let changed = std::mem::take(&mut self.changed);
        for ticket_id in &changed {
            if let Some(Some((_, _, changed))) = self.known.get_mut(ticket_id) {
                *changed = false;
            }
        }
        let mut rows = Vec::with_capacity(changed.len());
        for ticket_id in changed {
            let Some(Some((position, ticket, _))) = self.known.get(&ticket_id) else {
                continue;
            };
            // Through a `Value`, whose keys are sorted: every state SQLite
            // stores has its keys in that one order, whichever path wrote it.
            let state = serde_json::to_value(ticket)
                .map_err(|e| {
                    ApplyError::Poison(format!(
                        "cannot serialise the state of ticket {ticket_id}: {e}"
                    ))
                })?
                .to_string();
            rows.push(TicketRow {
                ticket,
                state,
                position: *position,
            });
        }
        let written = match tx {
            ReadTx::Sqlite(tx) => sqlite_values::write_tickets(tx, &rows).await,
            ReadTx::Postgres(tx) => postgres_unnest::write_tickets(tx, &rows).await,
        };
        written.map_err(|e| match e.as_database_error() {
            // Two tickets claiming one reference: the log is wrong, retrying
            // cannot help.
            Some(db) if db.is_unique_violation() => ApplyError::Poison(match &rows[..] {
                [one] => format!(
                    "ticket {} conflicts with another ticket: {db}",
                    one.ticket.id
                ),
                _ => format!("a ticket of the batch conflicts with another ticket: {db}"),
            }),
            _ => ApplyError::Database(e),
        })?;
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return Ok(());
        }
        match tx {
            ReadTx::Sqlite(tx) => sqlite_values::write(tx, &pending).await?,
            ReadTx::Postgres(tx) => postgres_unnest::write(tx, &pending, load).await?,
        }
        Ok(())
    }
}
