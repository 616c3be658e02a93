//! Running a projection: the global log, in batches, into a read model.
//!
//! Each batch is one transaction: the checkpoint is read (and on PostgreSQL
//! locked) at its start, events at or before it are dropped, the rest are
//! applied, and the checkpoint moves to the last event applied before the
//! commit. A crash anywhere before the commit loses the whole batch and the
//! next run reads it again; after the commit the checkpoint says so. Either way
//! every event is applied exactly once.
//!
//! A poison event (one the projection cannot apply) is never skipped: the
//! events before it in its batch are committed, the checkpoint row is marked
//! `failed` with an error naming the event, and that projection's run ends.
//! Database and store failures are retried with a backoff instead.
//!
//! [`Runner::run`] writes only while it holds the projection's [`Lease`], so
//! with several processes on one PostgreSQL database one of them writes each
//! projection and another takes over when it dies (see [`crate::lease`]).
//!
//! Each batch runs on a task of its own, which the runner awaits. Cancelling or
//! aborting the runner therefore never cuts a batch short: the batch commits
//! or rolls back by itself. This matters beyond tidiness: sqlx cannot recover a
//! connection whose `BEGIN` was acknowledged to a future that was then dropped,
//! and on SQLite that connection is the store's only writer, so every later
//! append would fail. (A real crash kills the process and the database rolls
//! the open transaction back; the tests cover both.)
//!
//! What a projection implements, [`Projection`] and, for a rebuild's load,
//! [`BulkLoad`], is in `projection`; one batch, its transaction and the stop
//! at a poison event, in `batch`; following the log and the lease, here.

mod batch;
mod projection;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use store::{EventStore, Position, StoreError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::checkpoint;
use crate::db::ReadDb;
use crate::error::ProjectionError;
use crate::lease::Lease;
pub(crate) use batch::{Load, Page};
pub use projection::{BulkLoad, Projection};

/// Events per batch (and per transaction) unless [`Runner::with_batch_size`].
pub const BATCH: usize = 500;

const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// How often a runner without the lease tries again, and how often the holder
/// checks it still has it, unless [`Runner::with_lease_retry`].
pub const LEASE_RETRY: Duration = Duration::from_secs(3);

/// Feeds projections the log of `store`, writing into `db`. Cheap to clone.
#[derive(Clone)]
pub struct Runner {
    store: Arc<dyn EventStore>,
    db: ReadDb,
    batch_size: usize,
    lease_retry: Duration,
    /// [`Load::Bulk`]: batches go through [`BulkLoad::load_batch`] (a
    /// rebuild's load).
    load: Load,
}

impl Runner {
    pub fn new(store: Arc<dyn EventStore>, db: ReadDb) -> Runner {
        Runner {
            store,
            db,
            batch_size: BATCH,
            lease_retry: LEASE_RETRY,
            load: Load::Apply,
        }
    }

    /// Every batch through [`BulkLoad::load_batch`]: only for a rebuild's
    /// shadow before its deferred indexes are built, fed the log once from
    /// its start.
    pub(crate) fn for_bulk_load(mut self) -> Runner {
        self.load = Load::Bulk;
        self
    }

    /// At most `batch_size` events per transaction (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Runner {
        self.batch_size = batch_size.max(1);
        self
    }

    /// How often to try for the lease while another process holds it, and to
    /// check it while holding it.
    pub fn with_lease_retry(mut self, every: Duration) -> Runner {
        self.lease_retry = every;
        self
    }

    pub fn db(&self) -> &ReadDb {
        &self.db
    }

    /// At most this many events per transaction.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// [`Runner::run`] on a task of its own.
    pub fn spawn(
        &self,
        projection: Arc<dyn Projection>,
        shutdown: CancellationToken,
    ) -> JoinHandle<Result<(), ProjectionError>> {
        let runner = self.clone();
        tokio::spawn(async move { runner.run(projection, shutdown).await })
    }

    /// Takes the projection's lease (waiting while another process holds
    /// it), then follows the log from its checkpoint until `shutdown` is
    /// cancelled (checked between batches; `Ok` then) or the projection stops on
    /// a poison event ([`ProjectionError::Poison`]). Store and database failures
    /// are logged and retried with a growing delay; a lost lease is taken
    /// again before writing resumes.
    pub async fn run(
        &self,
        projection: Arc<dyn Projection>,
        shutdown: CancellationToken,
    ) -> Result<(), ProjectionError> {
        let mut delay = RETRY_FIRST;
        'lease: loop {
            let Some(mut lease) = self.acquire(projection.name(), &shutdown).await else {
                return Ok(());
            };
            loop {
                let mut progressed = false;
                let outcome = self
                    .follow(&projection, &mut lease, &shutdown, &mut progressed)
                    .await;
                let e = match outcome {
                    Ok(()) => {
                        lease.release().await;
                        return Ok(());
                    }
                    Err(
                        e @ (ProjectionError::Poison { .. }
                        | ProjectionError::CorruptCheckpoint { .. }),
                    ) => {
                        lease.release().await;
                        return Err(e);
                    }
                    Err(e) => e,
                };
                if progressed {
                    delay = RETRY_FIRST;
                }
                let lost = lease.check().await.is_err();
                tracing::warn!(projection = projection.name(), error = %e, retry_in = ?delay,
                    lease_lost = lost, "projection interrupted, retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        if !lost {
                            lease.release().await;
                        }
                        return Ok(());
                    }
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(RETRY_MAX);
                if lost {
                    continue 'lease;
                }
            }
        }
    }

    /// The projection's lease, trying every `lease_retry`; `None` on shutdown.
    async fn acquire(&self, name: &str, shutdown: &CancellationToken) -> Option<Lease> {
        let mut waiting = false;
        loop {
            match Lease::try_acquire(&self.db, name).await {
                Ok(Some(lease)) => {
                    if waiting {
                        tracing::info!(projection = name, "took over the projection's lease");
                    }
                    return Some(lease);
                }
                Ok(None) => {
                    if !waiting {
                        tracing::info!(
                            projection = name,
                            "another process writes this projection; waiting for its lease"
                        );
                    }
                    waiting = true;
                }
                Err(e) => tracing::warn!(projection = name, error = %e, "cannot take the lease"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(self.lease_retry) => {}
            }
        }
    }

    /// Applies everything up to the current end of the log and returns the
    /// checkpoint: for rebuilds and tests. Errors are returned, not retried.
    pub async fn catch_up(
        &self,
        projection: Arc<dyn Projection>,
    ) -> Result<Position, ProjectionError> {
        let mut position = checkpoint::read(&self.db, projection.name()).await?;
        loop {
            let events = self.store.read_all(position, self.batch_size).await?;
            let Some(last) = events.last() else {
                return Ok(position);
            };
            let short = events.len() < self.batch_size;
            let last = last.position;
            self.apply_batch(&projection, Page::new(events)).await?;
            position = last;
            if short {
                return Ok(position);
            }
        }
    }

    /// The subscription, cut into batches of whatever is ready (at most
    /// `batch_size`): a catch-up reads full pages, a live follower gets what
    /// was appended since its last wake-up. Idle, it waits on the store's
    /// wake-ups rather than polling.
    async fn follow(
        &self,
        projection: &Arc<dyn Projection>,
        lease: &mut Lease,
        shutdown: &CancellationToken,
        progressed: &mut bool,
    ) -> Result<(), ProjectionError> {
        let from = checkpoint::read(&self.db, projection.name()).await?;
        let mut batches = self.store.subscribe_all(from).ready_chunks(self.batch_size);
        let mut lease_check = tokio::time::interval(self.lease_retry);
        lease_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let batch = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(()),
                _ = lease_check.tick() => {
                    lease.check().await?;
                    continue;
                }
                batch = batches.next() => batch,
            };
            let Some(batch) = batch else {
                return Err(StoreError::Unavailable("the subscription ended".into()).into());
            };
            let mut events = Vec::with_capacity(batch.len());
            let mut failure = None;
            for item in batch {
                match item {
                    Ok(event) => events.push(event),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            if !events.is_empty() {
                self.apply_batch(projection, Page::new(events)).await?;
                *progressed = true;
            }
            if let Some(e) = failure {
                return Err(e.into());
            }
        }
    }
}
