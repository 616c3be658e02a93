//! `queue_ticket_facts`: one row per ticket, and what each row adds to its
//! queue's figures.

use chrono::{DateTime, Duration, Utc};
use domain::sla::{clock_runs, SlaTarget};
use domain::{SlaPolicy, Ticket, TicketPriority, TicketStatus};
use uuid::Uuid;

use super::ms;
use crate::bind::{any_id, execute_values, fetch, AnyRow, Arg};
use crate::db::{ReadTx, RowPosition};

/// What the queue figures need of one ticket.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Facts {
    pub queue: String,
    pub status: TicketStatus,
    pub priority: TicketPriority,
    pub assigned_to: Option<String>,
    pub created_at: DateTime<Utc>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub deleted: bool,
    /// First-response clock time run up to `response_running_since` (or
    /// for good, when the clock is stopped), as [`domain::sla`] counts it.
    pub response_elapsed_ms: i64,
    pub response_running_since: Option<DateTime<Utc>>,
    /// When the running clock reaches the target; `None` when stopped or
    /// already breached.
    pub response_due_at: Option<DateTime<Utc>>,
    /// The first-response clock reached the priority's target.
    pub breached: bool,
}

impl Facts {
    /// The facts after an event at `at` left the ticket in `ticket`.
    pub fn after(
        before: Option<&Facts>,
        ticket: &Ticket,
        policy: &SlaPolicy,
        at: DateTime<Utc>,
    ) -> Facts {
        let mut elapsed = before.map_or(0, |b| b.response_elapsed_ms);
        if let Some(since) = before.and_then(|b| b.response_running_since) {
            elapsed += ms(at - since).max(0);
        }
        let target = ms(policy.targets(ticket.priority).first_response);
        let breached = elapsed >= target;
        let running = clock_runs(ticket, SlaTarget::FirstResponse);
        Facts {
            queue: ticket.queue.clone(),
            status: ticket.status,
            priority: ticket.priority,
            assigned_to: ticket.assigned_to.clone(),
            created_at: ticket.created_at,
            first_response_at: ticket.first_response_at,
            resolved_at: ticket.resolved_at,
            deleted: ticket.deleted,
            response_elapsed_ms: elapsed,
            response_running_since: running.then_some(at),
            response_due_at: (running && !breached)
                .then(|| at + Duration::milliseconds(target - elapsed)),
            breached,
        }
    }

    fn is_done(&self) -> bool {
        matches!(self.status, TicketStatus::Resolved | TicketStatus::Closed)
    }

    /// What this ticket adds to its queue's figures.
    pub fn contribution(&self) -> Contribution {
        if self.deleted {
            return Contribution::default();
        }
        let one = |b: bool| i64::from(b);
        let not_closed = self.status != TicketStatus::Closed;
        let first_response_ms = self.first_response_at.map(|at| ms(at - self.created_at));
        let resolution_ms = self.resolved_at.map(|at| ms(at - self.created_at));
        Contribution([
            one(self.status == TicketStatus::Open),
            one(self.status == TicketStatus::InProgress),
            one(self.status == TicketStatus::OnHold),
            one(self.status == TicketStatus::Resolved),
            one(self.status == TicketStatus::Closed),
            one(self.assigned_to.is_none() && !self.is_done()),
            one(not_closed && self.priority == TicketPriority::Low),
            one(not_closed && self.priority == TicketPriority::Medium),
            one(not_closed && self.priority == TicketPriority::High),
            one(not_closed && self.priority == TicketPriority::Critical),
            one(first_response_ms.is_some()),
            first_response_ms.unwrap_or(0),
            one(resolution_ms.is_some()),
            resolution_ms.unwrap_or(0),
            one(self.breached && self.first_response_at.is_none() && !self.is_done()),
        ])
    }
}

/// The counts and sums one ticket adds to `queue_metrics`, in the order of
/// [`Contribution::COLUMNS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Contribution(pub [i64; 15]);

impl Contribution {
    pub const COLUMNS: [&'static str; 15] = [
        "open",
        "in_progress",
        "on_hold",
        "resolved",
        "closed",
        "unassigned",
        "priority_low",
        "priority_medium",
        "priority_high",
        "priority_critical",
        "first_responses",
        "first_response_ms",
        "resolutions",
        "resolution_ms",
        "sla_breaches",
    ];

    pub fn negate(&self) -> Contribution {
        Contribution(self.0.map(|v| -v))
    }
}

/// The ticket as the facts row keeps it: without comments and attachments,
/// which only grow and which no figure needs.
pub(crate) fn compact(mut ticket: Ticket) -> Ticket {
    ticket.comments.clear();
    ticket.attachments.clear();
    ticket
}

/// A facts row as stored.
pub(crate) struct Stored {
    pub facts: Facts,
    pub state: serde_json::Value,
    pub position: RowPosition,
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, sqlx::Error> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|e| {
        sqlx::Error::ColumnDecode {
            index: what.to_string(),
            source: e.to_string().into(),
        }
    })
}

const COLUMNS: &str = "ticket_id, queue, status, priority, assigned_to, created_at, \
    first_response_at, resolved_at, deleted, response_elapsed_ms, response_running_since, \
    response_due_at, breached, state, position, prepare_offset";

pub(crate) async fn load(tx: &mut ReadTx, ticket_id: Uuid) -> Result<Option<Stored>, sqlx::Error> {
    let rows = fetch(
        tx,
        &format!("SELECT {COLUMNS} FROM queue_ticket_facts WHERE ticket_id = $1"),
        &[Arg::Id(ticket_id)],
    )
    .await?;
    rows.first().map(stored).transpose()
}

/// The rows of those of `ids` that exist, in one query.
pub(crate) async fn load_many(
    tx: &mut ReadTx,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, Stored)>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM queue_ticket_facts WHERE {}",
        any_id(tx, "ticket_id", 1)
    );
    let rows = fetch(tx, &sql, &[Arg::Ids(ids)]).await?;
    rows.iter()
        .map(|row| Ok((row.id("ticket_id")?, stored(row)?)))
        .collect()
}

fn stored(row: &AnyRow) -> Result<Stored, sqlx::Error> {
    Ok(Stored {
        facts: Facts {
            queue: row.text("queue")?,
            status: parse("status", &row.text("status")?)?,
            priority: parse("priority", &row.text("priority")?)?,
            assigned_to: row.opt_text("assigned_to")?,
            created_at: row.time("created_at")?,
            first_response_at: row.opt_time("first_response_at")?,
            resolved_at: row.opt_time("resolved_at")?,
            deleted: row.bool("deleted")?,
            response_elapsed_ms: row.int("response_elapsed_ms")?,
            response_running_since: row.opt_time("response_running_since")?,
            response_due_at: row.opt_time("response_due_at")?,
            breached: row.bool("breached")?,
        },
        state: row.json("state")?,
        position: RowPosition {
            position: row.int("position")?,
            prepare_offset: row.int("prepare_offset")?,
        },
    })
}

const SAVE_HEAD: &str = "INSERT INTO queue_ticket_facts (ticket_id, queue, status, priority, \
    assigned_to, created_at, first_response_at, resolved_at, deleted, response_elapsed_ms, \
    response_running_since, response_due_at, breached, state, position, prepare_offset) ";
const SAVE_TAIL: &str = " ON CONFLICT (ticket_id) DO UPDATE SET queue = excluded.queue, \
    status = excluded.status, priority = excluded.priority, \
    assigned_to = excluded.assigned_to, created_at = excluded.created_at, \
    first_response_at = excluded.first_response_at, resolved_at = excluded.resolved_at, \
    deleted = excluded.deleted, response_elapsed_ms = excluded.response_elapsed_ms, \
    response_running_since = excluded.response_running_since, \
    response_due_at = excluded.response_due_at, breached = excluded.breached, \
    state = excluded.state, position = excluded.position, \
    prepare_offset = excluded.prepare_offset";
/// Rows per upsert: 16 values each, within both databases' parameter limits.
const ROWS_PER_SAVE: usize = 500;

/// One ticket's facts row to write.
pub(crate) struct Save<'a> {
    pub ticket_id: Uuid,
    pub facts: &'a Facts,
    pub state: serde_json::Value,
    pub position: RowPosition,
}

pub(crate) async fn save(
    tx: &mut ReadTx,
    ticket_id: Uuid,
    facts: &Facts,
    state: serde_json::Value,
    position: RowPosition,
) -> Result<(), sqlx::Error> {
    save_many(
        tx,
        &[Save {
            ticket_id,
            facts,
            state,
            position,
        }],
    )
    .await
}

/// Writes each row (each ticket at most once) in a few multi-row upserts.
pub(crate) async fn save_many(tx: &mut ReadTx, rows: &[Save<'_>]) -> Result<(), sqlx::Error> {
    let values: Vec<Vec<Arg<'_>>> = rows
        .iter()
        .map(|r| {
            let f = r.facts;
            vec![
                Arg::Id(r.ticket_id),
                Arg::Text(&f.queue),
                Arg::Text(f.status.as_str()),
                Arg::Text(f.priority.as_str()),
                Arg::OptText(f.assigned_to.as_deref()),
                Arg::Time(f.created_at),
                Arg::OptTime(f.first_response_at),
                Arg::OptTime(f.resolved_at),
                Arg::Bool(f.deleted),
                Arg::Int(f.response_elapsed_ms),
                Arg::OptTime(f.response_running_since),
                Arg::OptTime(f.response_due_at),
                Arg::Bool(f.breached),
                Arg::Json(&r.state),
                Arg::Int(r.position.position),
                Arg::Int(r.position.prepare_offset),
            ]
        })
        .collect();
    execute_values(tx, SAVE_HEAD, SAVE_TAIL, &values, ROWS_PER_SAVE).await?;
    Ok(())
}
