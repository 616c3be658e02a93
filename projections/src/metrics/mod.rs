//! The queue-metrics projection: per queue, the figures of the contract's
//! `QueueMetrics`, kept up to date in O(1) writes per event.
//!
//! - `queue_ticket_facts`: one row per ticket with what the figures need
//!   (queue, status, priority, assignee, times, the response clock). Each
//!   row contributes a fixed vector of counts and sums ([`Contribution`]) to
//!   its queue.
//! - `queue_metrics`: per queue, the sum of its tickets' contributions,
//!   updated by the difference between a ticket's contribution before and
//!   after an event (moving a ticket moves it in both queues; a deleted ticket
//!   contributes nothing), plus the figures that are not sums (oldest open
//!   ticket, created and resolved "today"), re-read from indexes of the facts
//!   for the queues an event touched.
//! - `queue_metrics_daily`: counters per queue and UTC day for analytics.
//!
//! SLA breaches depend on the clock: the facts keep the first-response
//! clock (time run so far, running since, due time) the way
//! [`domain::sla`] counts it, and [`MetricsProjection::refresh_due`], run on
//! a timer, marks the tickets whose due time has passed without an event and
//! rolls "today" over at midnight UTC.
//!
//! Live side: [`MetricsProjection::subscribe`] yields a [`QueueUpdate`] per
//! queue an event or a refresh changed, once committed (see [`crate::gate`]).
//! A burst of events yields one update per event: [`coalesce::coalesce`] merges
//! them per queue for live subscribers.

pub mod coalesce;
mod facts;
mod query;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{SlaPolicy, Ticket, TicketChange};
use store::{Position, RecordedEvent};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bind::{execute, Arg};
use crate::db::{ReadDb, ReadTx, RowPosition};
use crate::error::{ApplyError, ProjectionError};
use crate::gate::CommitGate;
use crate::runner::Projection;

pub use facts::Contribution;
pub use query::{queue_metrics, QueueMetricsRow};

use facts::Facts;

/// The checkpoint name of [`MetricsProjection`].
pub const NAME: &str = "queue_metrics";

/// A queue whose figures changed, and the log position of the change
/// (for a refresh by the clock: the projection's checkpoint then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUpdate {
    pub queue: String,
    pub position: Position,
}

/// Writes `queue_ticket_facts`, `queue_metrics` and `queue_metrics_daily`.
#[derive(Clone)]
pub struct MetricsProjection {
    policy: SlaPolicy,
    gate: CommitGate<QueueUpdate>,
}

impl MetricsProjection {
    /// Breaches are counted against `policy`'s first-response targets.
    pub fn new(policy: SlaPolicy) -> MetricsProjection {
        MetricsProjection {
            policy,
            gate: CommitGate::new(1024),
        }
    }

    pub fn policy(&self) -> &SlaPolicy {
        &self.policy
    }

    /// Committed changes of queue figures. Needs [`Self::spawn_release`].
    pub fn subscribe(&self) -> broadcast::Receiver<QueueUpdate> {
        self.gate.subscribe()
    }

    /// Starts the task that releases updates once their batch is committed.
    pub fn spawn_release(&self, db: ReadDb, shutdown: CancellationToken) -> JoinHandle<()> {
        self.gate.spawn_release(db, NAME, shutdown)
    }

    /// Re-evaluates what the clock changed by `now` without an event: tickets
    /// whose first response fell due become breaches, and queues whose "today"
    /// is an older day are recomputed. Serialised with the projection's
    /// batches (it takes the checkpoint's lock) and idempotent. Returns (and
    /// publishes) the queues it changed.
    #[tracing::instrument(name = "queue_metrics.refresh_due", skip_all, err)]
    pub async fn refresh_due(
        &self,
        db: &ReadDb,
        now: DateTime<Utc>,
    ) -> Result<Vec<QueueUpdate>, ProjectionError> {
        let mut tx = db.begin().await?;
        let checkpoint = crate::checkpoint::load(&mut tx, NAME).await?;
        let position =
            RowPosition::of(checkpoint).map_err(|e| ProjectionError::CorruptCheckpoint {
                projection: NAME.to_string(),
                detail: e.to_string(),
            })?;
        let due = crate::bind::fetch(
            &mut tx,
            "SELECT ticket_id FROM queue_ticket_facts WHERE NOT breached \
             AND response_due_at IS NOT NULL AND response_due_at <= $1",
            &[Arg::Time(now)],
        )
        .await?;
        let mut touched = std::collections::BTreeSet::new();
        for row in due {
            let ticket_id = row.id("ticket_id")?;
            let Some(stored) = facts::load(&mut tx, ticket_id).await? else {
                continue;
            };
            let mut after = stored.facts.clone();
            after.breached = true;
            after.response_due_at = None;
            facts::save(&mut tx, ticket_id, &after, &stored.state, stored.position).await?;
            query::add(
                &mut tx,
                &stored.facts.queue,
                &stored.facts.contribution().negate(),
                position,
                now,
            )
            .await?;
            query::add(&mut tx, &after.queue, &after.contribution(), position, now).await?;
            touched.insert(after.queue.clone());
        }
        let day = now.date_naive();
        for queue in query::stale_days(&mut tx, day).await? {
            touched.insert(queue);
        }
        for queue in &touched {
            query::refresh(&mut tx, queue, now).await?;
        }
        tx.commit().await?;
        let updates: Vec<QueueUpdate> = touched
            .into_iter()
            .map(|queue| QueueUpdate {
                queue,
                position: checkpoint,
            })
            .collect();
        for update in &updates {
            self.gate.publish(update.clone());
        }
        Ok(updates)
    }
}

#[async_trait]
impl Projection for MetricsProjection {
    fn name(&self) -> &str {
        NAME
    }

    fn tables(&self) -> &[&'static str] {
        &["queue_ticket_facts", "queue_metrics", "queue_metrics_daily"]
    }

    async fn apply(&self, tx: &mut ReadTx, event: &RecordedEvent) -> Result<(), ApplyError> {
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
        let stored = facts::load(tx, ticket_id).await?;
        if matches!(&stored, Some(s) if s.position >= position) {
            return Ok(());
        }
        let before_state = stored
            .as_ref()
            .map(|s| serde_json::from_value::<Ticket>(s.state.clone()))
            .transpose()
            .map_err(|e| {
                ApplyError::Poison(format!(
                    "stored state of ticket {ticket_id} is unreadable: {e}"
                ))
            })?;
        let Some(after_state) = domain::evolve(before_state.clone(), &decoded) else {
            return Err(ApplyError::Poison(format!(
                "{} on ticket {ticket_id}, which has no TicketCreated event",
                event.event_type
            )));
        };
        let at = decoded.at;
        let before = stored.as_ref().map(|s| s.facts.clone());
        let after = Facts::after(before.as_ref(), &after_state, &self.policy, at);
        let state = serde_json::to_value(facts::compact(after_state.clone()))
            .map_err(|e| ApplyError::Poison(format!("cannot serialise ticket {ticket_id}: {e}")))?;
        facts::save(tx, ticket_id, &after, &state, position).await?;

        let old = before.as_ref().map(Facts::contribution).unwrap_or_default();
        let new = after.contribution();
        let moved = before.as_ref().is_some_and(|b| b.queue != after.queue);
        if before.is_none() || moved || old != new {
            if let Some(b) = &before {
                query::add(tx, &b.queue, &old.negate(), position, at).await?;
            }
            query::add(tx, &after.queue, &new, position, at).await?;
            let mut queues = vec![after.queue.clone()];
            if let Some(b) = before.as_ref().filter(|_| moved) {
                queues.push(b.queue.clone());
            }
            for queue in queues {
                query::refresh(tx, &queue, at).await?;
                self.gate.stage(
                    event.position,
                    QueueUpdate {
                        queue,
                        position: event.position,
                    },
                );
            }
        }
        daily(tx, before_state.as_ref(), &after_state, &decoded.change).await?;
        Ok(())
    }
}

/// The day-by-day history: what happened, in the queue it happened in.
/// Never undone (a later move or deletion does not rewrite the past).
async fn daily(
    tx: &mut ReadTx,
    before: Option<&Ticket>,
    after: &Ticket,
    change: &TicketChange,
) -> Result<(), sqlx::Error> {
    let mut rows: Vec<(DateTime<Utc>, [i64; 7])> = vec![];
    if before.is_none() {
        rows.push((after.created_at, [1, 0, 0, 0, 0, 0, 0]));
    }
    if let (None, Some(at)) = (
        before.and_then(|b| b.first_response_at),
        after.first_response_at,
    ) {
        if before.is_some() {
            rows.push((at, [0, 1, ms(at - after.created_at), 0, 0, 0, 0]));
        }
    }
    if let (None, Some(at)) = (before.and_then(|b| b.resolved_at), after.resolved_at) {
        if before.is_some() {
            rows.push((at, [0, 0, 0, 1, ms(at - after.created_at), 0, 0]));
        }
    }
    match change {
        TicketChange::SlaWarning { .. } => rows.push((after.updated_at, [0, 0, 0, 0, 0, 1, 0])),
        TicketChange::SlaBreached { .. } => rows.push((after.updated_at, [0, 0, 0, 0, 0, 0, 1])),
        _ => {}
    }
    for (at, [c, fr, fr_ms, r, r_ms, w, b]) in rows {
        execute(
            tx,
            "INSERT INTO queue_metrics_daily (queue, day, created, first_responses, \
             first_response_ms, resolved, resolution_ms, sla_warnings, sla_breaches) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (queue, day) DO UPDATE SET \
             created = queue_metrics_daily.created + excluded.created, \
             first_responses = queue_metrics_daily.first_responses + excluded.first_responses, \
             first_response_ms = queue_metrics_daily.first_response_ms + excluded.first_response_ms, \
             resolved = queue_metrics_daily.resolved + excluded.resolved, \
             resolution_ms = queue_metrics_daily.resolution_ms + excluded.resolution_ms, \
             sla_warnings = queue_metrics_daily.sla_warnings + excluded.sla_warnings, \
             sla_breaches = queue_metrics_daily.sla_breaches + excluded.sla_breaches",
            &[
                Arg::Text(&after.queue),
                Arg::Day(at.date_naive()),
                Arg::Int(c),
                Arg::Int(fr),
                Arg::Int(fr_ms),
                Arg::Int(r),
                Arg::Int(r_ms),
                Arg::Int(w),
                Arg::Int(b),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Whole milliseconds, saturating.
pub(crate) fn ms(d: chrono::Duration) -> i64 {
    d.num_milliseconds()
}
