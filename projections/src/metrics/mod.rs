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

mod batch;
pub mod coalesce;
mod facts;
mod query;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::SlaPolicy;
use store::{Position, RecordedEvent};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bind::Arg;
use crate::db::{ReadDb, ReadTx, RowPosition};
use crate::error::{ApplyError, ProjectionError};
use crate::gate::CommitGate;
use crate::runner::{BulkLoad, Projection};
use crate::ticket_event::{self, Reads, TicketRead};

pub use facts::Contribution;
pub use query::{queue_metrics, QueueMetricsRow};

use batch::Batch;

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
            facts::save(&mut tx, ticket_id, &after, stored.state, stored.position).await?;
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
        self.apply_batch(tx, &[event]).await
    }

    /// Folded in memory, written once per row at the end (see [`batch`]).
    async fn apply_batch(
        &self,
        tx: &mut ReadTx,
        events: &[&RecordedEvent],
    ) -> Result<(), ApplyError> {
        let reads = ticket_event::read_each(events);
        self.fold(tx, events, &reads, Refresh::Now).await
    }

    fn bulk_load(&self) -> Option<&dyn BulkLoad> {
        Some(self)
    }
}

#[async_trait]
impl BulkLoad for MetricsProjection {
    /// As `apply_batch`, but the figures that are not sums are left to
    /// [`BulkLoad::finish_load`]: re-read per batch, they would scan the
    /// facts, whose indexes a rebuild builds only after its load.
    async fn load_batch(
        &self,
        tx: &mut ReadTx,
        events: &[&RecordedEvent],
        reads: Reads<'_>,
    ) -> Result<(), ApplyError> {
        self.fold(tx, events, reads.get(), Refresh::AtEnd).await
    }

    /// Every queue's refresh that the load left out, each as of the last
    /// event that refreshed it ([`query::refresh_as_last_updated`]).
    async fn finish_load(&self, tx: &mut ReadTx) -> Result<(), sqlx::Error> {
        query::refresh_as_last_updated(tx).await
    }
}

impl MetricsProjection {
    /// `reads`: what each of `events` decodes to.
    async fn fold(
        &self,
        tx: &mut ReadTx,
        events: &[&RecordedEvent],
        reads: &[TicketRead],
        refresh: Refresh,
    ) -> Result<(), ApplyError> {
        let mut batch = Batch::default();
        batch.preload(tx, events).await?;
        for (event, read) in events.iter().zip(reads) {
            let record = ticket_event::record(read)?;
            batch
                .apply(tx, event, record, &self.policy, &self.gate)
                .await?;
        }
        batch.flush(tx, refresh).await
    }
}

/// When a batch re-reads the figures of the queues it touched that are not
/// sums ([`query::refresh`]).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Refresh {
    /// At the end of the batch.
    Now,
    /// Once, at the end of a rebuild's load: a queue's refresh overwrites
    /// what earlier ones wrote, and the last one reads what the last event
    /// that changed what it reads left, so one refresh per queue at the end,
    /// as of that event's time, leaves what refreshing each batch leaves
    /// (see [`batch`] for why the same holds within a batch).
    AtEnd,
}

/// Whole milliseconds, saturating.
pub(crate) fn ms(d: chrono::Duration) -> i64 {
    d.num_milliseconds()
}
