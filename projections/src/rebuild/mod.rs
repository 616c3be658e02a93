//! Rebuilding a projection from the whole log while the server keeps serving.
//!
//! A rebuild never shows readers a half-built model. It builds into a shadow
//! copy of the projection's tables (PostgreSQL: a schema of its own,
//! `<schema>_rb_<name>`, tables created `LIKE` the live ones; SQLite: a file
//! beside the database, `<file>.rebuild-<name>`, tables created from the live
//! ones' DDL), with a checkpoint of its own, reporting [`Progress`] per batch.
//! The load goes through [`Projection::load_batch`]: the shadow's tables are
//! empty and their insert-only tables have no unique index yet, so on
//! PostgreSQL the rows of those are copied in (COPY) rather than inserted.
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
//! How step 3 puts the rows in place:
//! - PostgreSQL: it drops each live table and moves the shadow's into the
//!   live schema, renaming the moved indexes (and with them their primary
//!   key and unique constraints) to the names the live ones had, so the
//!   schema stays exactly as the migrations made it. No row is copied, but
//!   each table must be locked exclusively: when readers hold one longer
//!   than [`MOVE_LOCK_TIMEOUT`], the swap starts again and copies the rows
//!   instead (readers are never blocked then, but the copy takes time in
//!   proportion to the rows). A table carrying something an operator added
//!   that a move would lose (a grant, a comment, a trigger, a view over
//!   it...) is copied too, and one another table's foreign key points at
//!   makes the swap start again as a copy. The shadow is `ANALYZE`d first,
//!   so the planner knows the moved tables at once.
//! - SQLite: a table cannot move between database files, so the swap copies
//!   the rows under the write lock.
//!
//! While it runs, the live `projection_checkpoints` has a row
//! `rebuild:<name>` with the shadow's position, which
//! [`crate::report::status_report`]
//! shows as the state `rebuilding`; the swap deletes it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Executor, PgPool, SqlitePool};
use store::{EventStore, Position};
use tokio::sync::oneshot;

use crate::checkpoint;
use crate::db::{ReadDb, ReadTx};
use crate::error::ProjectionError;
use crate::lease::Lease;
use crate::runner::{Page, Projection, Runner};

/// Events per shadow transaction (and per page read from the log): much
/// bigger than a live batch, since nobody waits on the shadow, and the
/// projections fold a batch in memory, so each batch costs a few statements
/// per table plus one live checkpoint write and one head read for progress.
const REBUILD_BATCH: usize = 20_000;
/// The shadow SQLite file's page cache, in KiB (negative: a size, not pages),
/// each shadow's own: 16 MiB, 8 times SQLite's default. Not more: a page
/// evicted is read back from the operating system's file cache, while a
/// cache that keeps growing makes the kernel hand out and zero fresh memory
/// (page faults under `pcache1Fetch`), which costs more than the re-reads
/// save and raises the process's peak memory.
const SHADOW_CACHE_SIZE: &str = "-16384";
/// The page size of a shadow SQLite file, in bytes: SQLite's largest, where
/// the live file has the default 4 KiB. A shadow is written in bulk, its
/// indexes built by sorting, and then read whole by the swap's copy (which
/// copies rows, not pages, so the sizes need not match): fewer, bigger
/// pages mean fewer reads, writes and b-tree cells to handle. Its cache
/// stays [`SHADOW_CACHE_SIZE`] bytes.
const SHADOW_PAGE_SIZE: u32 = 65_536;
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
        result = prepare_and_swap(&store, db, &started, &mut rebuilt).await;
    }
    for one in started {
        if result.is_err() {
            let _ = unmark_rebuilding(db, &one.name).await;
        }
        one.shadow.drop_shadow(db).await;
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
    db: &ReadDb,
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
            let position = one.swap(store, db).await?;
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

/// A projection being rebuilt: its lease and its shadow.
struct Started {
    name: String,
    tables: Vec<&'static str>,
    projection: Arc<dyn Projection>,
    lease: Lease,
    shadow: Shadow,
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
        let insert_only = projection.insert_only_tables();
        let shadow = match Shadow::create(db, &name, &tables, insert_only).await {
            Ok(shadow) => shadow,
            Err(e) => {
                lease.release().await;
                return Err(e);
            }
        };
        let runner = Runner::new(store.clone(), shadow.db.clone())
            .with_batch_size(page)
            .for_bulk_load();
        Ok(Started {
            name,
            tables,
            projection,
            lease,
            shadow,
            runner,
        })
    }

    /// The deferred indexes and statistics ([`Shadow::prepare_swap`]).
    async fn prepare(&self) -> Result<(), RebuildError> {
        let began = Instant::now();
        self.shadow.prepare_swap(&self.tables).await?;
        tracing::debug!(projection = %self.name, elapsed = ?began.elapsed(),
            "rebuild: deferred indexes and statistics done");
        Ok(())
    }

    /// The swap (module docs, steps 1 to 3), once [`Started::prepare`] is done.
    async fn swap(
        &self,
        store: &Arc<dyn EventStore>,
        db: &ReadDb,
    ) -> Result<Position, RebuildError> {
        let swap = {
            let (store, db, shadow_db, name) = (
                store.clone(),
                db.clone(),
                self.shadow.db.clone(),
                self.name.clone(),
            );
            let projection = self.projection.clone();
            let target = self.shadow.target.clone();
            let tables = self.tables.clone();
            // Not a bulk load: the catch-up comes after the deferred indexes.
            let shadow =
                Runner::new(store.clone(), shadow_db).with_batch_size(self.runner.batch_size());
            // On a task of its own: a swap cut short by cancellation must still
            // commit or roll back (see the runner's module docs).
            tokio::spawn(async move {
                swap(store, &db, shadow, projection, &name, &tables, &target).await
            })
        };
        match swap.await {
            Ok(result) => result,
            Err(e) => Err(ProjectionError::Interrupted(e.to_string()).into()),
        }
    }
}

/// The whole log into every shadow, a page at a time, then what each
/// projection left for the end of its load ([`Projection::finish_load`]).
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

/// Where the shadow of one projection lives.
#[derive(Debug, Clone)]
enum Target {
    /// The shadow schema's name and the live one's.
    Postgres { shadow: String, live: String },
    /// The shadow file's path.
    Sqlite { path: String },
}

struct Shadow {
    db: ReadDb,
    target: Target,
    /// The secondary (non-unique) indexes, created once the bulk of the log
    /// is loaded: one sort per index then, instead of a b-tree insert per row
    /// and index during the load. Unique indexes are there from the start,
    /// since the projections' `ON CONFLICT` needs them, except on the
    /// projection's [`Projection::insert_only_tables`]: those are among
    /// these too (PostgreSQL: their primary key and unique constraints).
    deferred: Vec<String>,
}

impl Shadow {
    /// Readies the loaded shadow for the swap. It creates the deferred
    /// indexes, so the shadow's tables are exactly the live ones (the
    /// catch-up and the copy do not care, but a shadow kept for inspection
    /// would), then (PostgreSQL) the statistics of `tables`, so the
    /// planner knows moved tables at once. A SQLite shadow then goes back
    /// to WAL mode (after its indexes, which so are written once, to the
    /// file, rather than to the WAL and again to the file), as the swap
    /// expects:
    /// the swap attaches it to the live connection, and with a rollback
    /// journal a read of it there locks out any writer of it (a shadow in
    /// that mode once made the rebuild-under-load test fail with
    /// SQLITE_BUSY, when the swap began with BEGIN IMMEDIATE).
    async fn prepare_swap(&self, tables: &[&str]) -> Result<(), sqlx::Error> {
        let deferred = &self.deferred;
        match &self.db {
            ReadDb::Sqlite(pool) => {
                for statement in deferred {
                    pool.execute(statement.as_str()).await?;
                }
                let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
                    .fetch_one(pool)
                    .await?;
                if !mode.eq_ignore_ascii_case("wal") {
                    return Err(sqlx::Error::Protocol(format!(
                        "the rebuild's file stayed in journal mode {mode}, not WAL"
                    )));
                }
            }
            ReadDb::Postgres(pool) => {
                for statement in deferred {
                    pool.execute(statement.as_str()).await?;
                }
                pool.execute(format!("ANALYZE {}", tables.join(", ")).as_str())
                    .await?;
            }
        }
        Ok(())
    }

    async fn create(
        db: &ReadDb,
        name: &str,
        tables: &[&'static str],
        insert_only: &[&'static str],
    ) -> Result<Shadow, RebuildError> {
        let unsupported = |reason: String| RebuildError::Unsupported {
            projection: name.to_string(),
            reason,
        };
        let all: Vec<&str> = tables
            .iter()
            .copied()
            .chain(["projection_checkpoints"])
            .collect();
        match db {
            ReadDb::Postgres(pool) => {
                let live: String = sqlx::query_scalar("SELECT current_schema()")
                    .fetch_one(pool)
                    .await?;
                let shadow = format!(
                    "{live}_rb_{}",
                    name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
                );
                if shadow.len() > 63 {
                    return Err(unsupported(format!("schema name {shadow} is too long")));
                }
                let mut ddl = format!(
                    "DROP SCHEMA IF EXISTS \"{shadow}\" CASCADE; CREATE SCHEMA \"{shadow}\";"
                );
                for table in &all {
                    ddl += &format!(
                        "CREATE TABLE \"{shadow}\".{table} (LIKE \"{live}\".{table} INCLUDING ALL);"
                    );
                }
                pool.execute(ddl.as_str()).await?;
                // The secondary indexes the copies got, dropped until the load
                // is done (see `Shadow::deferred`).
                let secondary: Vec<(String, String)> = sqlx::query_as(
                    "SELECT format('DROP INDEX %I.%I', n.nspname, c.relname), \
                     pg_get_indexdef(i.indexrelid) \
                     FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                     JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND NOT i.indisunique AND NOT i.indisprimary \
                     ORDER BY c.relname",
                )
                .bind(&shadow)
                .fetch_all(pool)
                .await?;
                // And the primary keys and unique constraints of the tables
                // that are only inserted into, added back after the load.
                let unique: Vec<(String, String)> = sqlx::query_as(
                    "SELECT format('ALTER TABLE %I.%I DROP CONSTRAINT %I', n.nspname, t.relname, \
                     c.conname), format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', n.nspname, \
                     t.relname, c.conname, pg_get_constraintdef(c.oid)) \
                     FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
                     JOIN pg_namespace n ON n.oid = t.relnamespace \
                     WHERE n.nspname = $1 AND t.relname = ANY($2) AND c.contype IN ('p', 'u') \
                     ORDER BY t.relname, c.conname",
                )
                .bind(&shadow)
                .bind(insert_only)
                .fetch_all(pool)
                .await?;
                let mut deferred = Vec::with_capacity(secondary.len() + unique.len());
                for (drop, create) in secondary.into_iter().chain(unique) {
                    pool.execute(drop.as_str()).await?;
                    deferred.push(create);
                }
                // The shadow's commits do not wait for their WAL to reach the
                // disk: a crash drops the shadow anyway (`create` starts it
                // afresh), and the swap's own commit, which waits, flushes
                // the WAL up to it, every shadow write before it included.
                let options = (*pool.connect_options()).clone().options([
                    ("search_path", shadow.as_str()),
                    ("synchronous_commit", "off"),
                    // Every shadow builds its deferred indexes at once (see
                    // `rebuild_all`), one build per shadow already: parallel
                    // workers per build only add processes that compete for
                    // the same cores.
                    ("max_parallel_maintenance_workers", "0"),
                ]);
                let shadow_pool: PgPool = PgPoolOptions::new()
                    .max_connections(2)
                    .connect_with(options)
                    .await?;
                Ok(Shadow {
                    db: ReadDb::Postgres(shadow_pool),
                    target: Target::Postgres { shadow, live },
                    deferred,
                })
            }
            ReadDb::Sqlite(pool) => {
                let file: String =
                    sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                        .fetch_one(pool)
                        .await?;
                if file.is_empty() {
                    return Err(unsupported("the database is in memory".into()));
                }
                let path = format!("{file}.rebuild-{name}");
                remove_sqlite_files(&path);
                let mut ddl = Vec::new();
                let mut deferred = Vec::new();
                for table in &all {
                    let statements: Vec<(String, bool, bool)> = sqlx::query_as(
                        "SELECT sql, type = 'index', sql LIKE 'CREATE UNIQUE%' \
                         FROM sqlite_master WHERE tbl_name = $1 AND sql IS NOT NULL \
                         ORDER BY type = 'index', name",
                    )
                    .bind(table)
                    .fetch_all(pool)
                    .await?;
                    let insert_only = insert_only.contains(table);
                    for (statement, index, unique) in statements {
                        if index && (!unique || insert_only) {
                            deferred.push(statement);
                        } else {
                            ddl.push(statement);
                        }
                    }
                }
                // The shadow is a scratch file, deleted on failure and never
                // read after a crash (`create` starts it afresh): no fsyncs,
                // and while it loads, its journal in memory, so each page is
                // written once, to the file (in WAL mode a page went to the
                // WAL and then again to the file). It turns to WAL before
                // the swap (`Shadow::prepare_swap`). Its pages are bigger than
                // the live file's ([`SHADOW_PAGE_SIZE`]).
                let options = SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true)
                    .page_size(SHADOW_PAGE_SIZE)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Memory)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Off)
                    .pragma("cache_size", SHADOW_CACHE_SIZE)
                    .pragma("temp_store", "memory");
                let shadow_pool: SqlitePool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(options)
                    .await?;
                for statement in ddl {
                    shadow_pool.execute(statement.as_str()).await?;
                }
                Ok(Shadow {
                    db: ReadDb::Sqlite(shadow_pool),
                    target: Target::Sqlite { path },
                    deferred,
                })
            }
        }
    }

    /// Drops the shadow (after a swap, or after a failure).
    async fn drop_shadow(self, db: &ReadDb) {
        match &self.db {
            ReadDb::Postgres(pool) => pool.close().await,
            ReadDb::Sqlite(pool) => pool.close().await,
        }
        match (&self.target, db) {
            (Target::Postgres { shadow, .. }, ReadDb::Postgres(pool)) => {
                let dropped = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{shadow}\" CASCADE"))
                    .execute(pool)
                    .await;
                if let Err(e) = dropped {
                    tracing::warn!(schema = %shadow, error = %e, "cannot drop the rebuild's schema");
                }
            }
            (Target::Sqlite { path }, _) => remove_sqlite_files(path),
            _ => {}
        }
    }
}

fn remove_sqlite_files(path: &str) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
}

/// Steps 1 to 3 of the module docs, in one live transaction; the catch-up
/// (step 2) through `shadow_runner`, a batch of its size at a time.
async fn swap(
    store: Arc<dyn EventStore>,
    db: &ReadDb,
    shadow_runner: Runner,
    projection: Arc<dyn Projection>,
    name: &str,
    tables: &[&'static str],
    target: &Target,
) -> Result<Position, RebuildError> {
    let page = shadow_runner.batch_size();
    let catch_up = |live_at: Position| {
        let store = store.clone();
        let projection = projection.clone();
        let shadow_runner = shadow_runner.clone();
        async move {
            let mut at = checkpoint::read(shadow_runner.db(), name).await?;
            while at < live_at {
                let events = store.read_all(at, page).await?;
                if events.is_empty() {
                    break;
                }
                at = shadow_runner
                    .apply_batch(&projection, Page::new(events))
                    .await?;
            }
            Ok::<Position, ProjectionError>(at)
        }
    };
    match (db, target) {
        (ReadDb::Postgres(pool), Target::Postgres { shadow, live }) => {
            let swap = |how| swap_postgres(pool, name, tables, shadow, live, how, &catch_up);
            match swap(PgSwap::Move).await {
                Err(RebuildError::Projection(ProjectionError::Database(e)))
                    if refuses_to_move(&e) =>
                {
                    tracing::warn!(projection = name, error = %e,
                        "cannot move the rebuilt tables in: swapping in by copying rows");
                    swap(PgSwap::Copy).await
                }
                swapped => swapped,
            }
        }
        (ReadDb::Sqlite(pool), Target::Sqlite { path }) => {
            // One connection: ATTACH is per connection and outside transactions.
            let mut conn = pool.acquire().await?;
            sqlx::query("ATTACH DATABASE $1 AS rebuild")
                .bind(path)
                .execute(&mut *conn)
                .await?;
            let swapped = async {
                // The write lock on the live database only: BEGIN IMMEDIATE
                // would take it on the attached shadow too, and a catch-up
                // writing into the shadow through its own connection would
                // then fail with "database is locked". A write statement that
                // touches no row takes main's lock, waiting out the live
                // runner's batch as BEGIN IMMEDIATE did.
                conn.execute("BEGIN").await?;
                conn.execute("UPDATE main.projection_checkpoints SET position = position WHERE 0")
                    .await?;
                let live_at: Option<String> =
                    sqlx::query_scalar("SELECT position FROM main.projection_checkpoints WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&mut *conn)
                        .await?;
                let live_at = match live_at {
                    Some(cursor) => cursor.parse().map_err(|e: store::InvalidPosition| {
                        ProjectionError::CorruptCheckpoint {
                            projection: name.to_string(),
                            detail: e.to_string(),
                        }
                    })?,
                    None => Position::START,
                };
                let at = catch_up(live_at).await?;
                for table in tables {
                    let began = Instant::now();
                    conn.execute(copy_rows("main", "rebuild", table).as_str())
                        .await?;
                    tracing::debug!(table, elapsed = ?began.elapsed(), "rebuild: rows copied");
                }
                sqlx::query("DELETE FROM main.projection_checkpoints WHERE name = $1")
                    .bind(format!("{REBUILDING}{name}"))
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(
                    "INSERT INTO main.projection_checkpoints (name, position, updated_at, state, error) \
                     VALUES ($1, $2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'running', NULL) \
                     ON CONFLICT (name) DO UPDATE SET position = excluded.position, \
                     updated_at = excluded.updated_at, state = excluded.state, error = NULL",
                )
                .bind(name)
                .bind(at.to_cursor())
                .execute(&mut *conn)
                .await?;
                let began = Instant::now();
                conn.execute("COMMIT").await?;
                tracing::debug!(elapsed = ?began.elapsed(), "rebuild: swap committed");
                Ok::<Position, RebuildError>(at)
            }
            .await;
            if swapped.is_err() {
                let _ = conn.execute("ROLLBACK").await;
            }
            if let Err(e) = conn.execute("DETACH DATABASE rebuild").await {
                // A connection with the shadow still attached must not serve
                // anyone else.
                tracing::warn!(error = %e, "cannot detach the rebuild's file");
                conn.close_on_drop();
            }
            swapped
        }
        _ => unreachable!("the shadow is of the live database's kind"),
    }
}

/// How [`swap_postgres`] puts the shadow's rows in place.
#[derive(Debug, Clone, Copy, PartialEq)]
enum PgSwap {
    /// Drop each live table and move the shadow's into the live schema,
    /// renaming its indexes (and so their constraints) to the live ones'
    /// names: no row is copied, but it needs an exclusive lock on each table,
    /// waited for at most [`MOVE_LOCK_TIMEOUT`]. A table that is not
    /// [`movable`] has its rows copied instead.
    Move,
    /// Replace the live rows with copies of the shadow's: readers are never
    /// blocked, but it takes time in proportion to the rows.
    Copy,
}

/// How long a moving swap waits for readers to let go of a live table
/// before it gives up and copies instead. New readers of that table queue
/// behind the waiting swap, so this is also how long they can be held up.
const MOVE_LOCK_TIMEOUT: &str = "1s";

/// Steps 1 to 3 of the module docs on PostgreSQL, in one live transaction.
async fn swap_postgres<F, Fut>(
    pool: &PgPool,
    name: &str,
    tables: &[&'static str],
    shadow: &str,
    live: &str,
    how: PgSwap,
    catch_up: &F,
) -> Result<Position, RebuildError>
where
    F: Fn(Position) -> Fut,
    Fut: std::future::Future<Output = Result<Position, ProjectionError>>,
{
    let mut tx = pool.begin().await?;
    // The row must exist to be locked.
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, position, updated_at, state) \
         VALUES ($1, $2, now(), 'running') ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(Position::START.to_cursor())
    .execute(&mut *tx)
    .await?;
    let mut tx = ReadTx::Postgres(tx);
    let live_at = checkpoint::load(&mut tx, name).await?;
    let at = catch_up(live_at).await?;
    let ReadTx::Postgres(mut pg) = tx else {
        unreachable!("a PostgreSQL transaction")
    };
    let (quoted_live, quoted_shadow) = (format!("\"{live}\""), format!("\"{shadow}\""));
    match how {
        PgSwap::Move => {
            pg.execute(format!("SET LOCAL lock_timeout = '{MOVE_LOCK_TIMEOUT}'").as_str())
                .await?;
            for table in tables {
                if movable(&mut pg, table, shadow, live).await? {
                    move_table(&mut pg, table, shadow, live).await?;
                } else {
                    pg.execute(copy_rows(&quoted_live, &quoted_shadow, table).as_str())
                        .await?;
                }
            }
            pg.execute("SET LOCAL lock_timeout = 0").await?;
        }
        PgSwap::Copy => {
            for table in tables {
                pg.execute(copy_rows(&quoted_live, &quoted_shadow, table).as_str())
                    .await?;
            }
        }
    }
    sqlx::query("DELETE FROM projection_checkpoints WHERE name = $1")
        .bind(format!("{REBUILDING}{name}"))
        .execute(&mut *pg)
        .await?;
    let mut tx = ReadTx::Postgres(pg);
    checkpoint::save(&mut tx, name, at, None).await?;
    tx.commit().await?;
    Ok(at)
}

/// Replaces `live.table` with `shadow.table`, giving each of the shadow's
/// indexes the name of the live index with the same definition (renaming an
/// index renames the primary key or unique constraint it backs), so the live
/// schema keeps the names the migrations gave it.
async fn move_table(
    tx: &mut sqlx::PgConnection,
    table: &str,
    shadow: &str,
    live: &str,
) -> Result<(), sqlx::Error> {
    // Each index of a table with its definition minus its own name and its
    // table's: what pairs the live indexes with the shadow's.
    const INDEXES: &str = "SELECT c.relname, i.indisunique, \
        regexp_replace(pg_get_indexdef(i.indexrelid), '^.*? USING ', '') \
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
        JOIN pg_class t ON t.oid = i.indrelid \
        JOIN pg_namespace n ON n.oid = t.relnamespace \
        WHERE n.nspname = $1 AND t.relname = $2 ORDER BY c.relname";
    let indexes = |schema: &str| {
        sqlx::query_as::<_, (String, bool, String)>(INDEXES)
            .bind(schema.to_string())
            .bind(table.to_string())
    };
    let mut old = indexes(live).fetch_all(&mut *tx).await?;
    let new = indexes(shadow).fetch_all(&mut *tx).await?;
    tx.execute(
        format!(
            "DROP TABLE \"{live}\".{table}; \
             ALTER TABLE \"{shadow}\".{table} SET SCHEMA \"{live}\""
        )
        .as_str(),
    )
    .await?;
    // First every moved index to a name of its own, then to its live name:
    // a name the shadow generated may be one a live index had.
    let mut renames = Vec::with_capacity(new.len());
    for (i, (generated, unique, definition)) in new.into_iter().enumerate() {
        let Some(at) = old
            .iter()
            .position(|(_, u, d)| *u == unique && *d == definition)
        else {
            // No live twin (cannot happen for a shadow made `LIKE` the live
            // table): it keeps the name it has.
            continue;
        };
        let (wanted, _, _) = old.swap_remove(at);
        if wanted != generated {
            let temporary = format!("rebuild_{i}_{table}");
            tx.execute(
                format!("ALTER INDEX \"{live}\".\"{generated}\" RENAME TO \"{temporary}\"")
                    .as_str(),
            )
            .await?;
            renames.push((temporary, wanted));
        }
    }
    for (temporary, wanted) in renames {
        tx.execute(
            format!("ALTER INDEX \"{live}\".\"{temporary}\" RENAME TO \"{wanted}\"").as_str(),
        )
        .await?;
    }
    Ok(())
}

/// The statements that replace the rows of `table` in the schema (or
/// attached database) `live` with those in `shadow`, both named as SQL
/// wants them.
fn copy_rows(live: &str, shadow: &str, table: &str) -> String {
    format!("DELETE FROM {live}.{table}; INSERT INTO {live}.{table} SELECT * FROM {shadow}.{table}")
}

/// Whether `live.table` can be dropped and replaced by `shadow.table`
/// without losing anything a move would not carry over: what an operator
/// may have added to a live table (privileges, comments, triggers, row
/// security, publications, views over it, another owner or storage
/// options) stays only if the rows are copied instead. (A foreign key
/// from another table makes the drop fail: [`refuses_to_move`].)
async fn movable(
    tx: &mut sqlx::PgConnection,
    table: &str,
    shadow: &str,
    live: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT l.relacl IS NULL AND NOT l.relrowsecurity AND l.relowner = s.relowner \
           AND l.reloptions IS NOT DISTINCT FROM s.reloptions \
           AND NOT EXISTS (SELECT 1 FROM pg_attribute a \
             WHERE a.attrelid = l.oid AND a.attacl IS NOT NULL) \
           AND NOT EXISTS (SELECT 1 FROM pg_trigger t \
             WHERE t.tgrelid = l.oid AND NOT t.tgisinternal) \
           AND NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = l.oid) \
           AND NOT EXISTS (SELECT 1 FROM pg_publication_rel r WHERE r.prrelid = l.oid) \
           AND NOT EXISTS (SELECT 1 FROM pg_description d \
             WHERE d.objoid = l.oid AND d.classoid = 'pg_class'::regclass) \
           AND NOT EXISTS (SELECT 1 FROM pg_depend d \
             WHERE d.refobjid = l.oid AND d.classid = 'pg_rewrite'::regclass) \
         FROM pg_class l, pg_class s \
         WHERE l.oid = format('%I.%I', $1::text, $3::text)::regclass \
           AND s.oid = format('%I.%I', $2::text, $3::text)::regclass",
    )
    .bind(live)
    .bind(shadow)
    .bind(table)
    .fetch_one(&mut *tx)
    .await
}

/// Errors after which a moving swap starts again as a copying one:
/// PostgreSQL gave up waiting for a lock (`lock_timeout`), or would not drop
/// a live table because other objects depend on it (a foreign key).
fn refuses_to_move(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| code == "55P03" || code == "2BP01")
}

async fn mark_rebuilding(db: &ReadDb, name: &str, position: Position) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    checkpoint::save(&mut tx, &format!("{REBUILDING}{name}"), position, None).await?;
    tx.commit().await
}

async fn unmark_rebuilding(db: &ReadDb, name: &str) -> Result<(), sqlx::Error> {
    const SQL: &str = "DELETE FROM projection_checkpoints WHERE name = $1";
    let row = format!("{REBUILDING}{name}");
    match db {
        ReadDb::Sqlite(pool) => {
            sqlx::query(SQL).bind(row).execute(pool).await?;
        }
        ReadDb::Postgres(pool) => {
            sqlx::query(SQL).bind(row).execute(pool).await?;
        }
    }
    Ok(())
}
