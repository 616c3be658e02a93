//! One batch of the notifications projection, folded in memory and written
//! at its end: each ticket's and profile's row read once and written once,
//! the notifications inserted with multi-row statements, each inbox's count
//! raised once.
//!
//! Why this leaves what event-by-event writing leaves: the ticket and
//! profile rows are overwritten (profiles guarded by position, which the
//! batch checks the same way), so only the last write counts; a
//! notification is inserted `ON CONFLICT DO NOTHING` and counted only when
//! it was new, which the multi-row insert reports with `RETURNING`.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use domain::{Actor, Role, Ticket, TicketChange};
use sqlx::{PgConnection, Postgres, QueryBuilder, Sqlite};
use store::Position;
use uuid::Uuid;

use crate::bind::{any_id, fetch, AnyRow, Arg};
use crate::copy::CopyRows;
use crate::db::{ReadTx, RowPosition};
use crate::error::ApplyError;
use crate::runner::Load;
use crate::ticket_event::TicketRead;

/// A recipient's roles and teams as of the batch so far.
pub(super) struct KnownUser {
    pub roles: Vec<Role>,
    pub teams: Vec<String>,
    pub position: RowPosition,
    pub changed: bool,
}

/// A ticket's compact state as of the batch so far.
pub(super) struct KnownTicket {
    pub state: Ticket,
    pub position: RowPosition,
    pub changed: bool,
}

/// One notification to insert.
pub(super) struct NewRow {
    pub id: Uuid,
    pub recipient: String,
    pub event_id: Uuid,
    pub position: RowPosition,
    pub event_position: Position,
    pub ticket_id: Uuid,
    pub event_type: &'static str,
    pub title: String,
    pub body: String,
    pub require_interaction: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Default)]
pub(super) struct Batch {
    pub tickets: HashMap<Uuid, Option<KnownTicket>>,
    pub ticket_order: Vec<Uuid>,
    pub users: HashMap<String, Option<KnownUser>>,
    pub user_order: Vec<String>,
    pub rows: Vec<NewRow>,
}

/// Rows per multi-row insert: 11 values each, far below both databases'
/// parameter limits.
const ROWS_PER_INSERT: usize = 500;
/// Rows per multi-row upsert of the narrow tables (at most 4 values each).
const ROWS_PER_UPSERT: usize = 2_000;

impl Batch {
    /// Reads, in one query each, the tickets the batch's events name and the
    /// users they can notify (as the tickets stand and as the events name
    /// them) that are not known yet. Only a cache in front of
    /// [`Batch::ticket`] and [`Batch::user`], which read what this misses:
    /// every read sees the rows as they were before the batch either way.
    pub async fn preload(
        &mut self,
        tx: &mut ReadTx,
        records: &[TicketRead],
    ) -> Result<(), ApplyError> {
        let decoded = || records.iter().filter_map(|r| r.as_ref().ok()?.as_ref());
        let mut ids: Vec<Uuid> = decoded()
            .map(|r| r.ticket_id)
            .filter(|id| !self.tickets.contains_key(id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if !ids.is_empty() {
            let sql = format!(
                "SELECT ticket_id, state, position, prepare_offset FROM notification_tickets \
                 WHERE {}",
                any_id(tx, "ticket_id", 1)
            );
            for row in fetch(tx, &sql, &[Arg::Ids(&ids)]).await? {
                let ticket_id = row.id("ticket_id")?;
                let known = stored_ticket(&row, ticket_id)?;
                self.tickets.insert(ticket_id, Some(known));
            }
            for id in ids {
                self.tickets.entry(id).or_insert(None);
            }
        }
        let mut users: Vec<String> = Vec::new();
        for ticket in self.tickets.values().flatten() {
            users.push(ticket.state.created_by.clone());
            users.extend(ticket.state.assigned_to.clone());
            users.extend(ticket.state.watchers.iter().cloned());
        }
        for record in decoded() {
            users.push(record.event.actor.clone());
            match &record.event.change {
                TicketChange::Assigned { assignee_id, .. } => users.push(assignee_id.clone()),
                TicketChange::WatcherAdded { user_id }
                | TicketChange::WatcherRemoved { user_id } => users.push(user_id.clone()),
                _ => {}
            }
        }
        users.retain(|u| !self.users.contains_key(u));
        users.sort_unstable();
        users.dedup();
        if users.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT id, roles, teams, position, prepare_offset FROM notification_users WHERE {}",
            any_id(tx, "id", 1)
        );
        for row in fetch(tx, &sql, &[Arg::Texts(&users)]).await? {
            let id = row.text("id")?;
            let known = stored_user(&row)?;
            self.users.insert(id, Some(known));
        }
        for user in users {
            self.users.entry(user).or_insert(None);
        }
        Ok(())
    }

    /// The ticket's state, read from `notification_tickets` unless known.
    // Not `entry()`: the read awaits between the lookup and the insert.
    #[allow(clippy::map_entry)]
    pub async fn ticket(
        &mut self,
        tx: &mut ReadTx,
        ticket_id: Uuid,
    ) -> Result<Option<&KnownTicket>, ApplyError> {
        if !self.tickets.contains_key(&ticket_id) {
            let rows = fetch(
                tx,
                "SELECT state, position, prepare_offset FROM notification_tickets \
                 WHERE ticket_id = $1",
                &[Arg::Id(ticket_id)],
            )
            .await?;
            let known = match rows.first() {
                None => None,
                Some(row) => Some(stored_ticket(row, ticket_id)?),
            };
            self.tickets.insert(ticket_id, known);
        }
        Ok(self.tickets.get(&ticket_id).and_then(Option::as_ref))
    }

    /// Records the ticket's new state.
    pub fn set_ticket(&mut self, ticket_id: Uuid, state: Ticket, position: RowPosition) {
        let was_changed = matches!(self.tickets.get(&ticket_id), Some(Some(t)) if t.changed);
        if !was_changed {
            self.ticket_order.push(ticket_id);
        }
        self.tickets.insert(
            ticket_id,
            Some(KnownTicket {
                state,
                position,
                changed: true,
            }),
        );
    }

    /// The user's profile, read from `notification_users` unless known.
    #[allow(clippy::map_entry)]
    pub async fn user(
        &mut self,
        tx: &mut ReadTx,
        user: &str,
    ) -> Result<Option<&KnownUser>, ApplyError> {
        if !self.users.contains_key(user) {
            let rows = fetch(
                tx,
                "SELECT roles, teams, position, prepare_offset FROM notification_users \
                 WHERE id = $1",
                &[Arg::Text(user)],
            )
            .await?;
            let known = match rows.first() {
                None => None,
                Some(row) => Some(stored_user(row)?),
            };
            self.users.insert(user.to_string(), known);
        }
        Ok(self.users.get(user).and_then(Option::as_ref))
    }

    /// The recipient as `may_receive` needs them; unknown users are requesters.
    pub async fn actor(&mut self, tx: &mut ReadTx, user: &str) -> Result<Actor, ApplyError> {
        Ok(match self.user(tx, user).await? {
            None => Actor::new(user, vec![Role::Requester], vec![]),
            Some(known) => Actor::new(user, known.roles.clone(), known.teams.clone()),
        })
    }

    /// A profile as of `position`, unless the one known is as recent.
    pub async fn set_user(
        &mut self,
        tx: &mut ReadTx,
        user: &str,
        roles: Vec<Role>,
        teams: Vec<String>,
        position: RowPosition,
    ) -> Result<(), ApplyError> {
        let (newer, was_changed) = match self.user(tx, user).await? {
            None => (true, false),
            Some(known) => (known.position < position, known.changed),
        };
        if !newer {
            return Ok(());
        }
        if !was_changed {
            self.user_order.push(user.to_string());
        }
        self.users.insert(
            user.to_string(),
            Some(KnownUser {
                roles,
                teams,
                position,
                changed: true,
            }),
        );
        Ok(())
    }

    /// Writes the ticket and profile rows, then the notifications and their
    /// counts; returns the notifications that were new, in log order.
    pub async fn flush(self, tx: &mut ReadTx, load: Load) -> Result<Vec<NewRow>, ApplyError> {
        let mut tickets = Vec::with_capacity(self.ticket_order.len());
        for ticket_id in &self.ticket_order {
            let Some(Some(t)) = self.tickets.get(ticket_id) else {
                continue;
            };
            let state = serde_json::to_value(&t.state).map_err(|e| {
                ApplyError::Poison(format!("cannot serialise ticket {ticket_id}: {e}"))
            })?;
            tickets.push((*ticket_id, state, t.position));
        }
        for chunk in tickets.chunks(ROWS_PER_UPSERT) {
            upsert_tickets(tx, chunk).await?;
        }
        for user in &self.user_order {
            let Some(Some(u)) = self.users.get(user) else {
                continue;
            };
            super::save_profile(tx, user, &u.roles, &u.teams, u.position).await?;
        }
        let fresh: Vec<NewRow> = match (&mut *tx, load) {
            // No notification is there yet: every one is new, so none is
            // checked (PostgreSQL: nor inserted, but copied).
            (ReadTx::Postgres(pg), Load::Bulk) => {
                copy(pg, &self.rows).await?;
                self.rows
            }
            (tx, Load::Bulk) => {
                for chunk in self.rows.chunks(ROWS_PER_INSERT) {
                    insert(tx, chunk, Inserted::Unasked).await?;
                }
                self.rows
            }
            (tx, Load::Apply) => {
                let mut inserted = HashSet::new();
                for chunk in self.rows.chunks(ROWS_PER_INSERT) {
                    inserted.extend(insert(tx, chunk, Inserted::Returned).await?);
                }
                self.rows
                    .into_iter()
                    .filter(|row| inserted.contains(&row.id))
                    .collect()
            }
        };
        // In the order recipients first appear; found by a map, since a
        // rebuild's batch has tens of thousands of rows.
        let mut counts: Vec<(&str, i64)> = vec![];
        let mut slot: HashMap<&str, usize> = HashMap::new();
        for row in &fresh {
            match slot.entry(&row.recipient) {
                Entry::Occupied(at) => counts[*at.get()].1 += 1,
                Entry::Vacant(at) => {
                    at.insert(counts.len());
                    counts.push((&row.recipient, 1));
                }
            }
        }
        // One row per recipient, so a multi-row upsert touches each once.
        for chunk in counts.chunks(ROWS_PER_UPSERT) {
            raise_counts(tx, chunk).await?;
        }
        Ok(fresh)
    }
}

/// A `notification_tickets` row as stored.
fn stored_ticket(row: &AnyRow, ticket_id: Uuid) -> Result<KnownTicket, ApplyError> {
    Ok(KnownTicket {
        position: RowPosition {
            position: row.int("position")?,
            prepare_offset: row.int("prepare_offset")?,
        },
        state: serde_json::from_value(row.json("state")?).map_err(|e| {
            ApplyError::Poison(format!(
                "stored state of ticket {ticket_id} is unreadable: {e}"
            ))
        })?,
        changed: false,
    })
}

/// A `notification_users` row as stored.
fn stored_user(row: &AnyRow) -> Result<KnownUser, ApplyError> {
    Ok(KnownUser {
        roles: serde_json::from_value(row.json("roles")?).unwrap_or_default(),
        teams: serde_json::from_value(row.json("teams")?).unwrap_or_default(),
        position: RowPosition {
            position: row.int("position")?,
            prepare_offset: row.int("prepare_offset")?,
        },
        changed: false,
    })
}

const UPSERT_TICKETS_HEAD: &str =
    "INSERT INTO notification_tickets (ticket_id, state, position, prepare_offset) ";
const UPSERT_TICKETS_TAIL: &str = " ON CONFLICT (ticket_id) DO UPDATE SET \
    state = excluded.state, position = excluded.position, \
    prepare_offset = excluded.prepare_offset";

/// Each ticket's compact state, in one statement.
async fn upsert_tickets(
    tx: &mut ReadTx,
    rows: &[(Uuid, serde_json::Value, RowPosition)],
) -> Result<(), sqlx::Error> {
    match tx {
        ReadTx::Sqlite(tx) => {
            let mut builder = QueryBuilder::<Sqlite>::new(UPSERT_TICKETS_HEAD);
            builder.push_values(rows, |mut b, (id, state, at)| {
                b.push_bind(id.to_string())
                    .push_bind(state.to_string())
                    .push_bind(at.position)
                    .push_bind(at.prepare_offset);
            });
            builder.push(UPSERT_TICKETS_TAIL);
            builder.build().execute(&mut **tx).await?;
        }
        ReadTx::Postgres(tx) => {
            let mut builder = QueryBuilder::<Postgres>::new(UPSERT_TICKETS_HEAD);
            builder.push_values(rows, |mut b, (id, state, at)| {
                b.push_bind(*id)
                    .push_bind(state.clone())
                    .push_bind(at.position)
                    .push_bind(at.prepare_offset);
            });
            builder.push(UPSERT_TICKETS_TAIL);
            builder.build().execute(&mut **tx).await?;
        }
    }
    Ok(())
}

const RAISE_COUNTS_HEAD: &str = "INSERT INTO notification_counts (recipient, total) ";
const RAISE_COUNTS_TAIL: &str = " ON CONFLICT (recipient) DO UPDATE \
    SET total = notification_counts.total + excluded.total";

/// Raises each recipient's count (each recipient once in `counts`).
async fn raise_counts(tx: &mut ReadTx, counts: &[(&str, i64)]) -> Result<(), sqlx::Error> {
    match tx {
        ReadTx::Sqlite(tx) => {
            let mut builder = QueryBuilder::<Sqlite>::new(RAISE_COUNTS_HEAD);
            builder.push_values(counts, |mut b, (recipient, n)| {
                b.push_bind(recipient.to_string()).push_bind(*n);
            });
            builder.push(RAISE_COUNTS_TAIL);
            builder.build().execute(&mut **tx).await?;
        }
        ReadTx::Postgres(tx) => {
            let mut builder = QueryBuilder::<Postgres>::new(RAISE_COUNTS_HEAD);
            builder.push_values(counts, |mut b, (recipient, n)| {
                b.push_bind(recipient.to_string()).push_bind(*n);
            });
            builder.push(RAISE_COUNTS_TAIL);
            builder.build().execute(&mut **tx).await?;
        }
    }
    Ok(())
}

const INSERT_HEAD: &str = "INSERT INTO notifications (id, recipient, event_id, position, \
    ticket_id, event_type, title, body, require_interaction, created_at, prepare_offset) ";
/// No conflict target: a notification already there conflicts on both its id
/// and its (recipient, position) (the id is made of the event's id and the
/// recipient), and a rebuild loads the table before building either index
/// ([`crate::BulkLoad::insert_only_tables`]), which a named target would
/// need.
const INSERT_TAIL: &str = " ON CONFLICT DO NOTHING";

/// Whether [`insert`] asks which rows were new.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Inserted {
    /// `RETURNING id`: the ids of the rows that were not there yet.
    Returned,
    /// Nothing returned (a load into an empty table: every row is new).
    Unasked,
}

/// [`Load::Bulk`]: the columns in `INSERT_HEAD`'s order.
const COPY: &str = "COPY notifications (id, recipient, event_id, position, ticket_id, \
    event_type, title, body, require_interaction, created_at, prepare_offset) \
    FROM STDIN (FORMAT binary)";

/// Copies `rows` in, as `insert` would insert them into an empty table.
async fn copy(conn: &mut PgConnection, rows: &[NewRow]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut copy = CopyRows::new(11);
    for r in rows {
        copy.row()
            .uuid(r.id)
            .text(&r.recipient)?
            .uuid(r.event_id)
            .int8(r.position.position)
            .uuid(r.ticket_id)
            .text(r.event_type)?
            .text(&r.title)?
            .text(&r.body)?
            .bool(r.require_interaction)
            .time(r.created_at)?
            .int8(r.position.prepare_offset);
    }
    copy.copy(conn, COPY).await?;
    Ok(())
}

/// Inserts `rows`; the ids of those that were not there yet, if asked
/// (otherwise none).
async fn insert(
    tx: &mut ReadTx,
    rows: &[NewRow],
    asked: Inserted,
) -> Result<Vec<Uuid>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(vec![]);
    }
    match tx {
        ReadTx::Sqlite(tx) => {
            // Times as the other SQLite writers store them (nine digits).
            let mut builder = QueryBuilder::<Sqlite>::new(INSERT_HEAD);
            builder.push_values(rows, |mut b, r| {
                b.push_bind(r.id.to_string())
                    .push_bind(r.recipient.clone())
                    .push_bind(r.event_id.to_string())
                    .push_bind(r.position.position)
                    .push_bind(r.ticket_id.to_string())
                    .push_bind(r.event_type)
                    .push_bind(r.title.clone())
                    .push_bind(r.body.clone())
                    .push_bind(r.require_interaction)
                    .push_bind(crate::bind::sqlite_time(r.created_at))
                    .push_bind(r.position.prepare_offset);
            });
            builder.push(INSERT_TAIL);
            if asked == Inserted::Unasked {
                builder.build().execute(&mut **tx).await?;
                return Ok(vec![]);
            }
            builder.push(" RETURNING id");
            let ids: Vec<String> = builder.build_query_scalar().fetch_all(&mut **tx).await?;
            ids.iter()
                .map(|id| {
                    Uuid::parse_str(id).map_err(|e| sqlx::Error::ColumnDecode {
                        index: "id".into(),
                        source: e.into(),
                    })
                })
                .collect()
        }
        ReadTx::Postgres(tx) => {
            let mut builder = QueryBuilder::<Postgres>::new(INSERT_HEAD);
            builder.push_values(rows, |mut b, r| {
                b.push_bind(r.id)
                    .push_bind(r.recipient.clone())
                    .push_bind(r.event_id)
                    .push_bind(r.position.position)
                    .push_bind(r.ticket_id)
                    .push_bind(r.event_type)
                    .push_bind(r.title.clone())
                    .push_bind(r.body.clone())
                    .push_bind(r.require_interaction)
                    .push_bind(r.created_at)
                    .push_bind(r.position.prepare_offset);
            });
            builder.push(INSERT_TAIL);
            if asked == Inserted::Unasked {
                builder.build().execute(&mut **tx).await?;
                return Ok(vec![]);
            }
            builder.push(" RETURNING id");
            builder.build_query_scalar().fetch_all(&mut **tx).await
        }
    }
}
