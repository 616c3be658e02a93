//! One batch of the queue-metrics projection, folded in memory and written
//! at its end: each ticket's facts row read once and written once, each
//! queue's sums added once and its other figures re-read once, each day's
//! counters added once.
//!
//! Why this leaves what event-by-event writing leaves:
//! - a facts row is overwritten by every event, so only the last write counts;
//! - `queue_metrics` sums and `queue_metrics_daily` counters are added, and
//!   additions of deltas can be summed first; the row's position is the
//!   latest one added;
//! - the figures that are not sums (oldest open ticket, created and resolved
//!   "today") are re-read from the facts by [`query::refresh`], each time
//!   wholly overwritten, so only the queue's last refresh counts: it is run
//!   once at the end with the time of the last event that refreshed the
//!   queue. The facts it reads are then those at the end of the batch, which
//!   are those of that last refresh: every event that changes what a refresh
//!   reads of a queue (a ticket created, moved, its status, resolution or
//!   deletion changed) changes the queue's sums too, and so refreshes it.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use domain::{SlaPolicy, Ticket, TicketChange};
use store::RecordedEvent;
use uuid::Uuid;

use super::facts::{self, Contribution, Facts};
use super::{query, QueueUpdate, Refresh};
use crate::bind::{execute_values, Arg};
use crate::db::{ReadTx, RowPosition};
use crate::error::ApplyError;
use crate::gate::CommitGate;
use crate::ticket_event::{self, TicketRecord};

/// A ticket's facts as the batch left them, with its compact state.
struct Known {
    facts: Facts,
    /// As `queue_ticket_facts.state` keeps it ([`facts::compact`]).
    state: Ticket,
    position: RowPosition,
    changed: bool,
}

/// What one queue's row receives at the end of the batch.
struct QueueWrite {
    delta: Contribution,
    position: RowPosition,
    /// The time of the last event that refreshed the queue.
    at: DateTime<Utc>,
}

/// Counter columns of `queue_metrics_daily`, in [`daily`]'s order.
type DayCounts = [i64; 7];
/// Rows per upsert of the daily counters: 9 values each.
const ROWS_PER_DAY_UPSERT: usize = 500;

#[derive(Default)]
pub(super) struct Batch {
    /// `None`: no facts row (the ticket is not created yet).
    known: HashMap<Uuid, Option<Known>>,
    /// Tickets whose facts changed, in the order first changed.
    changed: Vec<Uuid>,
    queues: BTreeMap<String, QueueWrite>,
    days: BTreeMap<(String, NaiveDate), DayCounts>,
}

impl Batch {
    /// Reads in one query the facts of every ticket the events name that is
    /// not known yet.
    pub async fn preload(
        &mut self,
        tx: &mut ReadTx,
        events: &[&RecordedEvent],
    ) -> Result<(), ApplyError> {
        let wanted = ticket_event::ids_to_load(events, |id| self.known.contains_key(id));
        if wanted.is_empty() {
            return Ok(());
        }
        let stored = facts::load_many(tx, &wanted).await?;
        for id in wanted {
            self.known.insert(id, None);
        }
        for (id, stored) in stored {
            let state = serde_json::from_value::<Ticket>(stored.state).map_err(|e| {
                ApplyError::Poison(format!("stored state of ticket {id} is unreadable: {e}"))
            })?;
            self.known.insert(
                id,
                Some(Known {
                    facts: stored.facts,
                    state,
                    position: stored.position,
                    changed: false,
                }),
            );
        }
        Ok(())
    }

    /// One event, in memory (reading its ticket's facts if not preloaded);
    /// `record` is what it decodes to.
    pub async fn apply(
        &mut self,
        tx: &mut ReadTx,
        event: &RecordedEvent,
        record: Option<&TicketRecord>,
        policy: &SlaPolicy,
        gate: &CommitGate<QueueUpdate>,
    ) -> Result<(), ApplyError> {
        let Some(&TicketRecord {
            ticket_id,
            position,
            event: ref decoded,
        }) = record
        else {
            return Ok(());
        };
        if !self.known.contains_key(&ticket_id) {
            self.preload(tx, &[event]).await?;
        }
        let stored = self.known.get(&ticket_id).and_then(Option::as_ref);
        if matches!(stored, Some(s) if s.position >= position) {
            return Ok(());
        }
        let before_state = stored.map(|s| s.state.clone());
        let Some(after_state) = domain::evolve(before_state.clone(), decoded) else {
            return Err(ApplyError::Poison(format!(
                "{} on ticket {ticket_id}, which has no TicketCreated event",
                event.event_type
            )));
        };
        let at = decoded.at;
        let before = stored.map(|s| s.facts.clone());
        let was_changed = stored.is_some_and(|s| s.changed);
        let after = Facts::after(before.as_ref(), &after_state, policy, at);

        let old = before.as_ref().map(Facts::contribution).unwrap_or_default();
        let new = after.contribution();
        let moved = before.as_ref().is_some_and(|b| b.queue != after.queue);
        if before.is_none() || moved || old != new {
            if let Some(b) = &before {
                self.add(&b.queue, &old.negate(), position, at);
            }
            self.add(&after.queue, &new, position, at);
            let mut queues = vec![after.queue.clone()];
            if let Some(b) = before.as_ref().filter(|_| moved) {
                queues.push(b.queue.clone());
            }
            for queue in queues {
                gate.stage(
                    event.position,
                    QueueUpdate {
                        queue,
                        position: event.position,
                    },
                );
            }
        }
        daily(
            &mut self.days,
            before_state.as_ref(),
            &after_state,
            &decoded.change,
        );
        if !was_changed {
            self.changed.push(ticket_id);
        }
        self.known.insert(
            ticket_id,
            Some(Known {
                facts: after,
                state: facts::compact(after_state),
                position,
                changed: true,
            }),
        );
        Ok(())
    }

    /// Adds `delta` to the queue's pending sums; the event also refreshes it.
    fn add(&mut self, queue: &str, delta: &Contribution, position: RowPosition, at: DateTime<Utc>) {
        let write = self
            .queues
            .entry(queue.to_string())
            .or_insert_with(|| QueueWrite {
                delta: Contribution::default(),
                position,
                at,
            });
        for (sum, d) in write.delta.0.iter_mut().zip(delta.0) {
            *sum += d;
        }
        write.position = write.position.max(position);
        write.at = at;
    }

    /// Writes the facts rows, then each queue's sums and refresh (unless
    /// left to the end of the load), then the daily counters.
    pub async fn flush(self, tx: &mut ReadTx, refresh: Refresh) -> Result<(), ApplyError> {
        let mut rows = Vec::with_capacity(self.changed.len());
        for ticket_id in &self.changed {
            let Some(Some(known)) = self.known.get(ticket_id) else {
                continue;
            };
            let state = serde_json::to_value(&known.state).map_err(|e| {
                ApplyError::Poison(format!("cannot serialise ticket {ticket_id}: {e}"))
            })?;
            rows.push(facts::Save {
                ticket_id: *ticket_id,
                facts: &known.facts,
                state,
                position: known.position,
            });
        }
        facts::save_many(tx, &rows).await?;
        for (queue, write) in &self.queues {
            query::add(tx, queue, &write.delta, write.position, write.at).await?;
            if refresh == Refresh::Now {
                query::refresh(tx, queue, write.at).await?;
            }
        }
        // One row per (queue, day), so a multi-row upsert touches each once.
        let days: Vec<Vec<Arg<'_>>> = self
            .days
            .iter()
            .map(|((queue, day), counts)| {
                let mut row = vec![Arg::Text(queue), Arg::Day(*day)];
                row.extend(counts.iter().map(|n| Arg::Int(*n)));
                row
            })
            .collect();
        execute_values(
            tx,
            "INSERT INTO queue_metrics_daily (queue, day, created, first_responses, \
             first_response_ms, resolved, resolution_ms, sla_warnings, sla_breaches) ",
            " ON CONFLICT (queue, day) DO UPDATE SET \
             created = queue_metrics_daily.created + excluded.created, \
             first_responses = queue_metrics_daily.first_responses + excluded.first_responses, \
             first_response_ms = queue_metrics_daily.first_response_ms + excluded.first_response_ms, \
             resolved = queue_metrics_daily.resolved + excluded.resolved, \
             resolution_ms = queue_metrics_daily.resolution_ms + excluded.resolution_ms, \
             sla_warnings = queue_metrics_daily.sla_warnings + excluded.sla_warnings, \
             sla_breaches = queue_metrics_daily.sla_breaches + excluded.sla_breaches",
            &days,
            ROWS_PER_DAY_UPSERT,
        )
        .await?;
        Ok(())
    }
}

/// The day-by-day history: what happened, in the queue it happened in.
/// Never undone (a later move or deletion does not rewrite the past).
fn daily(
    days: &mut BTreeMap<(String, NaiveDate), DayCounts>,
    before: Option<&Ticket>,
    after: &Ticket,
    change: &TicketChange,
) {
    let mut rows: Vec<(DateTime<Utc>, DayCounts)> = vec![];
    if before.is_none() {
        rows.push((after.created_at, [1, 0, 0, 0, 0, 0, 0]));
    }
    if let (None, Some(at)) = (
        before.and_then(|b| b.first_response_at),
        after.first_response_at,
    ) {
        if before.is_some() {
            rows.push((at, [0, 1, super::ms(at - after.created_at), 0, 0, 0, 0]));
        }
    }
    if let (None, Some(at)) = (before.and_then(|b| b.resolved_at), after.resolved_at) {
        if before.is_some() {
            rows.push((at, [0, 0, 0, 1, super::ms(at - after.created_at), 0, 0]));
        }
    }
    match change {
        TicketChange::SlaWarning { .. } => rows.push((after.updated_at, [0, 0, 0, 0, 0, 1, 0])),
        TicketChange::SlaBreached { .. } => rows.push((after.updated_at, [0, 0, 0, 0, 0, 0, 1])),
        _ => {}
    }
    for (at, counts) in rows {
        let sums = days
            .entry((after.queue.clone(), at.date_naive()))
            .or_default();
        for (sum, n) in sums.iter_mut().zip(counts) {
            *sum += n;
        }
    }
}
