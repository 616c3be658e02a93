//! The embedded event store: one SQLite file in WAL mode.
//!
//! SQLite allows one writer at a time per file, and a deferred transaction that
//! starts reading and later wants to write fails with `SQLITE_BUSY` at once
//! instead of waiting. So appends run in `BEGIN IMMEDIATE` transactions, which
//! take the write lock up front and wait (`busy_timeout`) for another process
//! that holds it, and all appends of one store go to one writer task (see
//! `writer`) on a writer pool of exactly one connection: they queue in-process
//! instead of spinning on the lock, and whatever has queued up is written in one
//! transaction (group commit). Reads use a separate pool: WAL readers never
//! block the writer nor each other, and always see a committed prefix of the log,
//! so the global order is gap-free by construction.
//!
//! Durability: an `Ok` from `append` means the append is committed. The file
//! runs in WAL mode at `synchronous = NORMAL`: a committed append survives a
//! crash of the process; a power loss may lose the last commits before a
//! checkpoint, never corrupt the file. Checkpoints run on a connection of
//! their own every 100 ms (see `checkpointer`), not inside an append's
//! commit.
//!
//! `:memory:` databases are the exception: every connection to one is a database
//! of its own, so reads and writes share a single connection kept open for the
//! store's lifetime.
//!
//! Subscribers are woken by this instance's own appends. Another process
//! appending to the same file cannot reach them, so they also re-read every
//! [`FALLBACK_RECHECK`] while idle.

mod checkpointer;
mod writer;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::append_queue::Appends;
use crate::chain::{ChainHeads, Chained, FILL_PAGE};
use crate::row::{self, SqliteEventRow, EVENT_COLUMNS};
use crate::{
    subscription, AppendResult, EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent,
    StoreError, SQLITE_MIGRATOR,
};
use writer::Writer;

/// How long a writer waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often an idle subscriber re-reads, to see appends made by other processes.
pub const FALLBACK_RECHECK: Duration = Duration::from_secs(1);

/// Read connections per file store: WAL readers run in parallel.
const READERS: u32 = 4;

/// The SQLite event store. Cheap to clone; clones share pools and subscribers.
#[derive(Clone)]
pub struct SqliteEventStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Appends go to the writer task (see `writer`).
    appends: Appends,
    append_task: JoinHandle<()>,
    /// The last position this instance appended; bumped after each commit.
    appended: Arc<watch::Sender<u64>>,
    /// `None` for `:memory:`, which no other process can write to.
    fallback: Option<Duration>,
    /// The checkpoint connection and task (see `checkpointer`); `None` for
    /// `:memory:`, which has no WAL.
    checkpoints: Option<(SqlitePool, JoinHandle<()>)>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.append_task.abort();
        if let Some((_, task)) = &self.checkpoints {
            task.abort();
        }
    }
}

/// Creates the database file if it is missing and checks that it can be
/// written, so that a wrong path gets an error naming the path and the reason
/// (SQLite's own says only "unable to open database file"). An empty file is a
/// valid empty database to SQLite.
fn check_file(path: &Path) -> Result<(), StoreError> {
    let shown = path.display();
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let advice = "choose another file with --database-url sqlite://FILE";
    match std::fs::metadata(folder) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(StoreError::Open(format!(
                "cannot open the SQLite database {shown}: {} is not a folder ({advice})",
                folder.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::Open(format!(
                "cannot create the SQLite database {shown}: the folder {} does not exist \
                 (create it, or {advice})",
                folder.display()
            )))
        }
        Err(e) => {
            return Err(StoreError::Open(format!(
            "cannot open the SQLite database {shown}: the folder {} cannot be read: {e} ({advice})",
            folder.display()
        )))
        }
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(drop)
        .map_err(|e| {
            let what = if path.exists() { "write" } else { "create" };
            StoreError::Open(format!(
                "cannot {what} the SQLite database {shown}: {e} (the folder {} must be \
                 writable by this user, or {advice})",
                folder.display()
            ))
        })
}

impl SqliteEventStore {
    /// Opens (creating if missing) the database at `url` — `sqlite://tickets.db`,
    /// `sqlite:relative/path.db` or `sqlite::memory:` — and runs the migrations.
    // Not `err`: the caller reports a failure to open (the command line as
    // its one `error:` line), so logging it here too would say it twice.
    #[tracing::instrument(skip_all, fields(url = %url))]
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Invalid(format!("bad SQLite url {url:?}: {e}")))?
            .create_if_missing(true)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            // The transient b-trees of `IN (SELECT value FROM json_each(..))`
            // and sorts stay in memory: by default SQLite gives each one a
            // temporary file, created and deleted about every other append
            // group.
            .pragma("temp_store", "memory");
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");

        let (writer, reader, fallback, checkpoints) = if in_memory {
            // The database lives as long as its last connection: never let the
            // pool close this one.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .test_before_acquire(false)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await?;
            migrate(&pool).await?;
            fill_missing_hashes(&pool).await?;
            (pool.clone(), pool, None, None)
        } else {
            check_file(options.get_filename())?;
            let options = options
                .journal_mode(SqliteJournalMode::Wal)
                // In WAL mode, NORMAL loses no committed data on a process
                // crash, only possibly the last commits on a power loss.
                .synchronous(SqliteSynchronous::Normal);
            // No ping before each use: a connection to a local file does not go
            // stale, and the ping is one more hop to the connection's thread
            // for every append group and every read.
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
                .await
                .map_err(|e| {
                    // Past `check_file`, this is mostly a folder where the
                    // write-ahead log (`FILE-wal`) cannot be created.
                    StoreError::Open(format!(
                        "cannot open the SQLite database {}: {e} (its folder must be writable)",
                        options.get_filename().display()
                    ))
                })?;
            // Migrate before opening readers, so they find the file in WAL mode
            // with its tables.
            migrate(&writer).await?;
            fill_missing_hashes(&writer).await?;
            let reader = SqlitePoolOptions::new()
                .max_connections(READERS)
                .test_before_acquire(false)
                .connect_with(options.clone())
                .await?;
            let checkpoints = SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .connect_with(options)
                .await?;
            let checkpoint_task = checkpointer::start(checkpoints.clone());
            (
                writer,
                reader,
                Some(FALLBACK_RECHECK),
                Some((checkpoints, checkpoint_task)),
            )
        };

        let appended = Arc::new(watch::Sender::new(0));
        let (appends, append_task) = writer::start(Writer {
            pool: writer.clone(),
            appended: appended.clone(),
        });
        Ok(SqliteEventStore {
            inner: Arc::new(Inner {
                writer,
                reader,
                appends,
                append_task,
                appended,
                fallback,
                checkpoints,
            }),
        })
    }

    /// The read pool, for queries of read models that live in the same database.
    pub fn pool(&self) -> &SqlitePool {
        &self.inner.reader
    }

    /// The single writer connection appends go through. Read models should write
    /// through it too: their writes then queue behind appends in-process instead
    /// of failing with `SQLITE_BUSY` when a read transaction tries to upgrade.
    /// Keep such transactions short, since every append waits for them.
    pub fn writer_pool(&self) -> &SqlitePool {
        &self.inner.writer
    }

    /// Stops the writer and closes both pools; appends and reads fail afterwards.
    pub async fn close(&self) {
        self.inner.append_task.abort();
        self.inner.writer.close().await;
        self.inner.reader.close().await;
        if let Some((pool, task)) = &self.inner.checkpoints {
            task.abort();
            pool.close().await;
        }
    }
}

#[async_trait]
impl EventStore for SqliteEventStore {
    #[tracing::instrument(skip_all, fields(stream = %stream))]
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        crate::log_append(self.inner.appends.append(stream, expected, events).await)
    }

    #[tracing::instrument(skip_all, fields(stream = %stream), err)]
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<SqliteEventRow> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM events \
             WHERE stream_id = ? AND version >= ? ORDER BY version LIMIT ?"
        ))
        .bind(stream)
        .bind(row::sql_i64(from_version))
        .bind(row::sql_limit(max))
        .fetch_all(&self.inner.reader)
        .await?;
        row::decode_all(rows)
    }

    #[tracing::instrument(skip_all, fields(after = %after), err)]
    async fn read_all(
        &self,
        after: Position,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<SqliteEventRow> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?"
        ))
        .bind(row::sql_i64(after.commit))
        .bind(row::sql_limit(max))
        .fetch_all(&self.inner.reader)
        .await?;
        row::decode_all(rows)
    }

    #[tracing::instrument(skip_all, err)]
    async fn head(&self) -> Result<Position, StoreError> {
        let last: Option<i64> = sqlx::query_scalar("SELECT MAX(position) FROM events")
            .fetch_one(&self.inner.reader)
            .await?;
        last.map_or(Ok(Position::START), row::position)
    }

    fn subscribe_all(
        &self,
        after: Position,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        let wake = self.inner.appended.subscribe();
        subscription::catch_up(self.clone(), after, wake, self.inner.fallback)
    }
}

async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    SQLITE_MIGRATOR
        .run(pool)
        .await
        .map_err(|e| StoreError::Unavailable(format!("migrating the SQLite database: {e}")))
}

/// Gives every event stored without a hash (a log written before migration
/// 0008) its hash, in one `BEGIN IMMEDIATE` transaction: all or nothing, and
/// another process's appends wait for it (two processes filling at once
/// both write the same hashes: the second finds them stored). A log with no
/// empty hash costs one look into the (empty) partial index
/// `events_missing_hash`.
#[tracing::instrument(skip_all, err)]
async fn fill_missing_hashes(pool: &SqlitePool) -> Result<(), StoreError> {
    // Looked at before taking the write lock, so that opening a filled log
    // (every open but the first after 0008) never waits for a writer.
    let missing: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE hash = '')")
        .fetch_one(pool)
        .await?;
    if !missing {
        return Ok(());
    }
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut heads = ChainHeads::default();
    let mut after = 0_i64;
    let mut filled = 0_usize;
    loop {
        let rows: Vec<SqliteEventRow> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?"
        ))
        .bind(after)
        .bind(FILL_PAGE)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            break;
        }
        let events = row::decode_all(rows)?;
        let mut updates = Vec::new();
        for e in &events {
            let hash = heads.next(Chained::from(e), &e.hash);
            if e.hash.is_empty() {
                updates.push((row::sql_i64(e.position.commit), hash));
            }
        }
        after = events
            .last()
            .map_or(after, |e| row::sql_i64(e.position.commit));
        filled += updates.len();
        let updates = serde_json::to_string(&updates)
            .map_err(|e| StoreError::Corrupt(format!("a hash does not encode: {e}")))?;
        sqlx::query(
            "UPDATE events SET hash = u.hash \
             FROM (SELECT json_extract(value, '$[0]') AS position, \
                          json_extract(value, '$[1]') AS hash FROM json_each(?1)) AS u \
             WHERE events.position = u.position",
        )
        .bind(updates)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    tracing::info!(filled, "gave the events stored without a hash theirs");
    Ok(())
}
