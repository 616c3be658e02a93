//! Rebuilding a projection from the whole log while the server keeps serving.
//!
//! A rebuild never shows readers a half-built model. It builds into a shadow
//! copy of the projection's tables (PostgreSQL: a schema of its own,
//! `<schema>_rb_<name>`, tables created `LIKE` the live ones; SQLite: a file
//! beside the database, `<file>.rebuild-<name>`, tables created from the live
//! ones' DDL), with a checkpoint of its own, reporting [`Progress`] per batch.
//! The load goes through a projection's [`crate::runner::BulkLoad`] hooks, if it has them
//! ([`Projection::bulk_load`]): the shadow's tables are empty and their
//! insert-only tables have no unique index yet, so on PostgreSQL the rows of
//! those are copied in (COPY) rather than inserted.
//! Then one transaction on the live database swaps it in:
//!
//! 1. lock the live checkpoint row (PostgreSQL; SQLite holds the only writer
//!    connection), so the live runner cannot commit meanwhile, and read it;
//! 2. catch the shadow up to at least that checkpoint (it usually is already);
//! 3. put the shadow's rows in place of the live ones and set the live
//!    checkpoint to the shadow's (clearing a `failed` state: a rebuild is how
//!    a fixed handler gets past an event it once could not apply).
//!
//! Readers see the old model until the commit and the new one after it. The
//! live runner's next batch finds the checkpoint at or after its own and
//! skips what the rebuild already applied, so it carries on without gap.
//!
//! How a shadow is made, readied for the swap, swapped in and dropped
//! depends on the database, behind one trait (`shadow::Shadow`), one file
//! per database: `postgres` moves the shadow's tables into the live schema
//! (or copies the rows when it cannot), `sqlite` copies the rows under the
//! write lock. This module holds what does not depend on the database: the
//! order of the steps, one reading of the log for every shadow, and the
//! progress.
//!
//! While it runs, the live `projection_checkpoints` has a row
//! `rebuild:<name>` with the shadow's position, which
//! [`crate::report::status_report`]
//! shows as the state `rebuilding`; the swap deletes it.

mod postgres;
mod shadow;
mod sqlite;

use std::sync::Arc;
use std::time::{Duration, Instant};

use store::{EventStore, Position};
use tokio::sync::oneshot;

use crate::checkpoint;
use crate::db::ReadDb;
use crate::error::ProjectionError;
use crate::lease::Lease;
use crate::runner::{Page, Projection, Runner};
use shadow::{CatchUp, Shadow};

/// Events per shadow transaction (and per page read from the log): much
/// bigger than a live batch, since nobody waits on the shadow, and the
/// projections fold a batch in memory, so each batch costs a few statements
/// per table plus one live checkpoint write and one head read for progress.
const REBUILD_BATCH: usize = 20_000;
/// The checkpoint row that marks a rebuild in progress.
pub(crate) const REBUILDING: &str = "rebuild:";

/// How far a rebuild got, after each batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Events read from the log so far.
    pub done: u64,
    /// Events in the log as far as known: the head's position, which on the SQL
    /// stores counts the events (it grows if events are appended meanwhile).
    pub total: u64,
    pub events_per_sec: f64,
    /// Time left at the current rate, once there is a rate.
    pub eta: Option<Duration>,
}

/// Why a rebuild did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The projection does not name its tables ([`Projection::tables`]).
    #[error("projection {0} does not name its tables, so it cannot be rebuilt in place")]
    NoTables(String),
    /// Another rebuild of the same projection runs (in this or another process).
    #[error("projection {0} is already being rebuilt")]
    Busy(String),
    /// The shadow cannot be placed (an in-memory SQLite database, or a name
    /// too long for PostgreSQL).
    #[error("cannot rebuild {projection}: {reason}")]
    Unsupported { projection: String, reason: String },
    /// The log or a database failed, or the projection met an event it cannot
    /// apply. The live model is untouched; the shadow is dropped.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
}

impl From<sqlx::Error> for RebuildError {
    fn from(e: sqlx::Error) -> Self {
        RebuildError::Projection(e.into())
    }
}

/// Rebuilds `projection` from the whole log of `store` into `db` and swaps it
/// in (see the module docs); returns the checkpoint it swapped in. `progress`
/// is called after every batch.
pub async fn rebuild(
    store: Arc<dyn EventStore>,
    db: &ReadDb,
    projection: Arc<dyn Projection>,
    progress: impl Fn(Progress),
) -> Result<Position, RebuildError> {
    let rebuilt = rebuild_all(store, db, vec![projection], |_, p| progress(p)).await?;
    Ok(rebuilt
        .first()
        .map(|r| r.position)
        .unwrap_or(Position::START))
}

/// One projection [`rebuild_all`] swapped in.
#[derive(Debug, Clone)]
pub struct Rebuilt {
    pub name: String,
    /// The checkpoint swapped in.
    pub position: Position,
    /// How long its swap (catch-up and copy into the live tables) took.
    pub swap: Duration,
}

/// Rebuilds every one of `projections` as [`rebuild`] does, from one
/// reading of the log: each page is read once (the next one while this one
/// is applied) and applied to every shadow at once, each shadow on a
/// connection of its own. Then every shadow gets its deferred indexes and
/// statistics, all at once, and each is swapped in, in the order given, as
/// soon as it is ready and the one before it is in.
/// `progress` is called after every batch with each projection's name.
/// On an error no further projection is swapped in (those before stay
/// swapped in) and every shadow is dropped.
pub async fn rebuild_all(
    store: Arc<dyn EventStore>,
    db: &ReadDb,
    projections: Vec<Arc<dyn Projection>>,
    progress: impl Fn(&str, Progress),
) -> Result<Vec<Rebuilt>, RebuildError> {
    rebuild_all_in_pages(store, db, projections, REBUILD_BATCH, progress).await
}

/// [`rebuild_all`], reading the log `page` events at a time (one shadow
/// transaction per page) instead of [`REBUILD_BATCH`]: for tests, so that a
/// small log still spans many pages.
#[doc(hidden)]
#[tracing::instrument(skip_all, fields(projections = projections.len(), page), err)]
pub async fn rebuild_all_in_pages(
    store: Arc<dyn EventStore>,
    db: &ReadDb,
    projections: Vec<Arc<dyn Projection>>,
    page: usize,
    progress: impl Fn(&str, Progress),
) -> Result<Vec<Rebuilt>, RebuildError> {
    let page = page.max(1);
    let mut started = Vec::with_capacity(projections.len());
    let mut result = async {
        for projection in projections {
            started.push(Started::start(&store, db, projection, page).await?);
        }
        Ok(())
    }
    .await;
    if result.is_ok() {
        result = load(&store, db, &started, page, &progress).await;
    }
    let mut rebuilt = Vec::with_capacity(started.len());
    if result.is_ok() {
        result = prepare_and_swap(&store, &started, &mut rebuilt).await;
    }
    for one in started {
        if result.is_err() {
            let _ = unmark_rebuilding(db, &one.name).await;
        }
        one.shadow.discard().await;
        one.lease.release().await;
    }
    result.map(|()| rebuilt)
}

/// Every shadow's deferred indexes and statistics at once, each on its own
/// connection, so the index sorts of one overlap the statistics or journal
/// switch of another; and meanwhile the swaps, one at a time in the order
/// given, each as soon as its shadow is ready: the first swaps copy rows
/// into the live database while the biggest shadows still sort. Every
/// preparation finishes before this returns, so no shadow is dropped while
/// a statement of its own still runs in it. A failed preparation stops the
/// swaps at its projection (those before stay swapped in); the first error
/// is returned.
async fn prepare_and_swap(
    store: &Arc<dyn EventStore>,
    started: &[Started],
    rebuilt: &mut Vec<Rebuilt>,
) -> Result<(), RebuildError> {
    let (ready, readiness): (Vec<_>, Vec<_>) =
        started.iter().map(|_| oneshot::channel::<bool>()).unzip();
    let prepares =
        futures::future::join_all(started.iter().zip(ready).map(|(one, ready)| async move {
            let prepared = one.prepare().await;
            // The swaps may have stopped at an earlier failure: no one listens.
            let _ = ready.send(prepared.is_ok());
            prepared
        }));
    let swaps = async {
        for (one, ready) in started.iter().zip(readiness) {
            if ready.await != Ok(true) {
                // Its preparation failed: its error is among the prepares'.
                return Ok(());
            }
            let began = Instant::now();
            let position = one.swap(store).await?;
            rebuilt.push(Rebuilt {
                name: one.name.clone(),
                position,
                swap: began.elapsed(),
            });
        }
        Ok::<(), RebuildError>(())
    };
    let (prepared, swapped) = tokio::join!(prepares, swaps);
    prepared.into_iter().collect::<Result<(), _>>().and(swapped)
}

/// A projection being rebuilt: its lease, its shadow and the runner that
/// loads the shadow.
struct Started {
    name: String,
    projection: Arc<dyn Projection>,
    lease: Lease,
    shadow: Arc<dyn Shadow>,
    runner: Runner,
}

impl Started {
    async fn start(
        store: &Arc<dyn EventStore>,
        db: &ReadDb,
        projection: Arc<dyn Projection>,
        page: usize,
    ) -> Result<Started, RebuildError> {
        let name = projection.name().to_string();
        let tables: Vec<&'static str> = projection.tables().to_vec();
        if tables.is_empty() {
            return Err(RebuildError::NoTables(name));
        }
        let lease = Lease::try_acquire(db, &format!("{REBUILDING}{name}"))
            .await?
            .ok_or_else(|| RebuildError::Busy(name.clone()))?;
        let insert_only = projection
            .bulk_load()
            .map_or(&[][..], |bulk| bulk.insert_only_tables());
        let shadow = match shadow::create(db, &name, &tables, insert_only).await {
            Ok(shadow) => shadow,
            Err(e) => {
                lease.release().await;
                return Err(e);
            }
        };
        let runner = Runner::new(store.clone(), shadow.db().clone())
            .with_batch_size(page)
            .for_bulk_load();
        Ok(Started {
            name,
            projection,
            lease,
            shadow,
            runner,
        })
    }

    /// The deferred indexes and statistics ([`Shadow::prepare`]).
    async fn prepare(&self) -> Result<(), RebuildError> {
        let began = Instant::now();
        self.shadow.prepare().await?;
        tracing::debug!(projection = %self.name, elapsed = ?began.elapsed(),
            "rebuild: deferred indexes and statistics done");
        Ok(())
    }

    /// The swap (module docs, steps 1 to 3), once [`Started::prepare`] is done.
    async fn swap(&self, store: &Arc<dyn EventStore>) -> Result<Position, RebuildError> {
        let shadow = self.shadow.clone();
        let catch_up = CatchUp {
            store: store.clone(),
            projection: self.projection.clone(),
            runner: Runner::new(store.clone(), shadow.db().clone())
                .with_batch_size(self.runner.batch_size()),
        };
        // On a task of its own: a swap cut short by cancellation must still
        // commit or roll back (see the runner's module docs).
        let swap = tokio::spawn(async move { shadow.swap(&catch_up).await });
        match swap.await {
            Ok(result) => result,
            Err(e) => Err(ProjectionError::Interrupted(e.to_string()).into()),
        }
    }
}

/// The whole log into every shadow, a page at a time, then what each
/// projection left for the end of its load ([`crate::runner::BulkLoad::finish_load`]).
async fn load(
    store: &Arc<dyn EventStore>,
    db: &ReadDb,
    started: &[Started],
    page: usize,
    progress: &impl Fn(&str, Progress),
) -> Result<(), RebuildError> {
    let began = Instant::now();
    let mut done = 0u64;
    // Each page is read from the log and decoded while the one before is
    // applied, once for every shadow.
    let read_page = |after: Position| async move {
        let events = store.read_all(after, page).await?;
        Page::read(events).await
    };
    let mut next = read_page(Position::START).await?;
    loop {
        let events = next;
        let Some(last) = events.events().last().map(|e| e.position) else {
            break;
        };
        done += events.events().len() as u64;
        let applied = futures::future::try_join_all(
            started
                .iter()
                .map(|one| one.runner.apply_batch(&one.projection, events.clone())),
        );
        let (applied, read) = tokio::join!(applied, read_page(last));
        applied?;
        next = read?;
        for one in started {
            mark_rebuilding(db, &one.name, last).await?;
        }
        let total = store
            .head()
            .await
            .map_err(ProjectionError::from)?
            .commit
            .max(done);
        let seconds = began.elapsed().as_secs_f64();
        let events_per_sec = if seconds > 0.0 {
            done as f64 / seconds
        } else {
            0.0
        };
        let eta = (events_per_sec > 0.0)
            .then(|| Duration::from_secs_f64((total - done) as f64 / events_per_sec));
        for one in started {
            progress(
                &one.name,
                Progress {
                    done,
                    total,
                    events_per_sec,
                    eta,
                },
            );
        }
    }
    futures::future::try_join_all(
        started
            .iter()
            .map(|one| one.runner.finish_load(&*one.projection)),
    )
    .await?;
    Ok(())
}

async fn mark_rebuilding(db: &ReadDb, name: &str, position: Position) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    checkpoint::save(&mut tx, &format!("{REBUILDING}{name}"), position, None).await?;
    tx.commit().await
}

async fn unmark_rebuilding(db: &ReadDb, name: &str) -> Result<(), sqlx::Error> {
    checkpoint::delete(db, &format!("{REBUILDING}{name}")).await
}
