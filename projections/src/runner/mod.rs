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

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use store::{EventStore, Position, RecordedEvent, StoreError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::checkpoint;
use crate::db::{ReadDb, ReadTx};
use crate::error::{ApplyError, ProjectionError};
use crate::lease::Lease;
use crate::ticket_event::{self, Reads, TicketRead};

/// Events per batch (and per transaction) unless [`Runner::with_batch_size`].
pub const BATCH: usize = 500;

const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// How often a runner without the lease tries again, and how often the holder
/// checks it still has it, unless [`Runner::with_lease_retry`].
pub const LEASE_RETRY: Duration = Duration::from_secs(3);

/// A named handler of stored events that writes a read model. It sees every
/// event of the log, in order, and ignores the ones it has no use for.
///
/// `apply` writes only through `tx` and must be idempotent on its own as well
/// (the runner already never hands an event over twice once committed, but a
/// read model whose rows carry the position they were written at stays correct
/// even if two runners race).
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// The checkpoint's key: renaming a projection rebuilds it from scratch.
    fn name(&self) -> &str;

    /// The read-model tables this projection alone writes: what a rebuild
    /// builds anew and swaps in ([`crate::rebuild`]). A projection that names
    /// none cannot be rebuilt while the server runs.
    fn tables(&self) -> &[&'static str] {
        &[]
    }

    async fn apply(&self, tx: &mut ReadTx, event: &RecordedEvent) -> Result<(), ApplyError>;

    /// Applies a whole batch, in log order: what the runner calls. The
    /// default applies each event in turn; a projection may override it to
    /// read and write each row once per batch. It must leave the same rows
    /// as `apply` on each event would. When it reports a poison, the runner
    /// rolls the batch back and applies it again event by event with
    /// `apply`, to stop exactly at the poison event.
    async fn apply_batch(
        &self,
        tx: &mut ReadTx,
        events: &[&RecordedEvent],
    ) -> Result<(), ApplyError> {
        for event in events {
            self.apply(tx, event).await?;
        }
        Ok(())
    }

    /// What this projection does differently while a rebuild loads its
    /// shadow, if anything: a projection that implements [`BulkLoad`]
    /// returns `Some(self)`. `None` (the default): a rebuild loads it with
    /// `apply_batch`.
    fn bulk_load(&self) -> Option<&dyn BulkLoad> {
        None
    }
}

/// The hooks of a rebuild's load ([`crate::rebuild`]), for a projection that
/// can write faster into an empty shadow than into a live model; it hands
/// them over with [`Projection::bulk_load`]. The load is fed the whole log
/// once, from its start, in this process, before the shadow's deferred
/// indexes are built.
#[async_trait]
pub trait BulkLoad: Projection {
    /// Of [`Projection::tables`], those this projection only ever inserts
    /// into, with an `ON CONFLICT DO NOTHING` that names no conflict target:
    /// a rebuild builds their unique indexes after the load, like their
    /// other indexes (one sort per index instead of a b-tree insert per row
    /// into indexes of random keys), since no statement of the load needs
    /// them. The load applies each event once, so it inserts no duplicate;
    /// if a bug made one, building the index fails the rebuild and the live
    /// model is kept. (SQLite: only uniqueness declared with its own
    /// `CREATE UNIQUE INDEX` can be left out; a table's inline constraints
    /// cannot.)
    fn insert_only_tables(&self) -> &[&'static str] {
        &[]
    }

    /// Applies a batch to a rebuild's shadow while it loads: every event
    /// before the batch was applied exactly once, in this process, and the
    /// [`BulkLoad::insert_only_tables`] have no unique index yet. So their
    /// rows can be written without a conflict check (PostgreSQL: COPY, see
    /// [`crate::copy`]); every other row as `apply_batch` writes it. It must
    /// leave the same rows as `apply_batch`; the default is `apply_batch`.
    /// A poison is handled as for `apply_batch`. `reads` holds what each of
    /// `events` decodes to, decoded once for every projection loading the
    /// page; a projection that folds ticket events uses it rather than
    /// decoding them again.
    async fn load_batch(
        &self,
        tx: &mut ReadTx,
        events: &[&RecordedEvent],
        reads: Reads<'_>,
    ) -> Result<(), ApplyError> {
        let _ = reads;
        self.apply_batch(tx, events).await
    }

    /// Called once after a rebuild's last [`BulkLoad::load_batch`], in a
    /// transaction of its own on the shadow, before its deferred indexes
    /// are built: what the load left for its end. The batches of the load
    /// followed by this must leave the same rows as `apply_batch` over the
    /// same events. The default does nothing.
    async fn finish_load(&self, _tx: &mut ReadTx) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

/// How a projection writes the rows of its [`BulkLoad::insert_only_tables`]
/// in a batch: what tells its `apply_batch` from its `load_batch`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Load {
    /// Inserted with a conflict check (`ON CONFLICT DO NOTHING`).
    Apply,
    /// Into a rebuild's shadow before its unique indexes are built: no row
    /// is there yet, so PostgreSQL copies them in (COPY).
    Bulk,
}

/// A run of the log handed to a runner's batch: its events in log order and,
/// when read ahead for a rebuild's load, what each decodes to
/// ([`ticket_event::read`]), shared by every projection loading it.
#[derive(Clone)]
pub(crate) struct Page {
    events: Arc<[RecordedEvent]>,
    reads: Option<Arc<[TicketRead]>>,
}

impl Page {
    /// The events alone: a batch that decodes what it needs itself.
    pub(crate) fn new(events: impl Into<Arc<[RecordedEvent]>>) -> Page {
        Page {
            events: events.into(),
            reads: None,
        }
    }

    /// The events with each one read, once for every projection that will
    /// load them; on the blocking pool, being all CPU work.
    pub(crate) async fn read(events: Vec<RecordedEvent>) -> Result<Page, ProjectionError> {
        tokio::task::spawn_blocking(move || {
            let reads: Arc<[TicketRead]> = events.iter().map(ticket_event::read).collect();
            Page {
                events: events.into(),
                reads: Some(reads),
            }
        })
        .await
        .map_err(|e| match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => ProjectionError::Interrupted(e.to_string()),
        })
    }

    pub(crate) fn events(&self) -> &[RecordedEvent] {
        &self.events
    }

    /// How many of `events` (a run of the log, in order) are at or before
    /// `checkpoint`: applied already.
    fn applied(events: &[RecordedEvent], checkpoint: Position) -> usize {
        events.partition_point(|e| e.position <= checkpoint)
    }
}

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

    /// [`Runner::write_batch`] on a task of its own (see the module docs). A
    /// panic in the handler is a crash: it is passed on, not turned into an error.
    pub(crate) async fn apply_batch(
        &self,
        projection: &Arc<dyn Projection>,
        page: Page,
    ) -> Result<Position, ProjectionError> {
        let runner = self.clone();
        let projection = projection.clone();
        let batch = tokio::spawn(async move { runner.write_batch(&*projection, &page).await });
        match batch.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(ProjectionError::Interrupted(e.to_string())),
        }
    }

    /// [`BulkLoad::finish_load`], in a transaction of its own, for a
    /// projection that has one.
    pub(crate) async fn finish_load(
        &self,
        projection: &dyn Projection,
    ) -> Result<(), ProjectionError> {
        let Some(bulk) = projection.bulk_load() else {
            return Ok(());
        };
        let mut tx = self.db.begin().await?;
        bulk.finish_load(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One transaction: the batch's writes and the new checkpoint.
    #[tracing::instrument(skip_all, fields(
        projection = %projection.name(),
        first = %page.events().first().map(|e| e.position).unwrap_or_default(),
        events = page.events().len(),
    ), err)]
    async fn write_batch(
        &self,
        projection: &dyn Projection,
        page: &Page,
    ) -> Result<Position, ProjectionError> {
        let name = projection.name();
        let events = &page.events[..];
        let mut tx = self.db.begin().await?;
        let checkpoint = checkpoint::load(&mut tx, name).await?;
        let skip = Page::applied(events, checkpoint);
        let fresh: Vec<&RecordedEvent> = events[skip..].iter().collect();
        let Some(last) = fresh.last() else {
            tx.rollback().await?;
            return Ok(checkpoint);
        };
        let applied = match self.load {
            Load::Apply => projection.apply_batch(&mut tx, &fresh).await,
            Load::Bulk => match projection.bulk_load() {
                Some(bulk) => {
                    let read_here: Vec<TicketRead>;
                    let reads = match &page.reads {
                        Some(reads) => &reads[skip..],
                        None => {
                            read_here = ticket_event::read_each(&fresh);
                            &read_here[..]
                        }
                    };
                    bulk.load_batch(&mut tx, &fresh, Reads::new(reads)).await
                }
                None => projection.apply_batch(&mut tx, &fresh).await,
            },
        };
        match applied {
            Ok(()) => {
                checkpoint::save(&mut tx, name, last.position, None).await?;
                tx.commit().await?;
                return Ok(last.position);
            }
            Err(ApplyError::Database(e)) => return Err(e.into()),
            Err(ApplyError::Poison(_)) => tx.rollback().await?,
        }
        // A poison somewhere in the batch: again, one event at a time, to
        // commit what comes before it and stop at it.
        let mut tx = self.db.begin().await?;
        let checkpoint = checkpoint::load(&mut tx, name).await?;
        let fresh: Vec<&RecordedEvent> =
            events[Page::applied(events, checkpoint)..].iter().collect();
        let Some(last) = fresh.last() else {
            tx.rollback().await?;
            return Ok(checkpoint);
        };
        for (index, event) in fresh.iter().enumerate() {
            match projection.apply(&mut tx, event).await {
                Ok(()) => {}
                Err(ApplyError::Database(e)) => return Err(e.into()),
                Err(ApplyError::Poison(reason)) => {
                    tx.rollback().await?;
                    return Err(self
                        .stop_at(projection, &fresh[..index], event, reason)
                        .await);
                }
            }
        }
        checkpoint::save(&mut tx, name, last.position, None).await?;
        tx.commit().await?;
        Ok(last.position)
    }

    /// Commits the events of the batch before `poison` and marks the
    /// projection failed, in one transaction. Returns the error to report: the
    /// poison, or whatever prevented recording it (the run then retries and
    /// meets the poison again).
    async fn stop_at(
        &self,
        projection: &dyn Projection,
        before: &[&RecordedEvent],
        poison: &RecordedEvent,
        reason: String,
    ) -> ProjectionError {
        let name = projection.name();
        let error = ProjectionError::Poison {
            projection: name.to_string(),
            event_id: poison.id,
            position: poison.position,
            reason,
        };
        tracing::error!(
            projection = name,
            event_id = %poison.id,
            position = %poison.position,
            error = %error,
            "projection stopped on an event it cannot apply"
        );
        let recorded = async {
            let mut tx = self.db.begin().await?;
            let from = checkpoint::load(&mut tx, name).await?;
            let mut position = from;
            for event in before.iter().filter(|e| e.position > from) {
                projection
                    .apply(&mut tx, event)
                    .await
                    .map_err(|e| match e {
                        ApplyError::Database(e) => ProjectionError::Database(e),
                        ApplyError::Poison(reason) => ProjectionError::Poison {
                            projection: name.to_string(),
                            event_id: event.id,
                            position: event.position,
                            reason,
                        },
                    })?;
                position = event.position;
            }
            checkpoint::save(&mut tx, name, position, Some(&error.to_string())).await?;
            tx.commit().await?;
            Ok::<(), ProjectionError>(())
        };
        match recorded.await {
            Ok(()) => error,
            Err(e) => e,
        }
    }
}
