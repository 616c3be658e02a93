//! The embedded event store: one SQLite file in WAL mode.
//!
//! SQLite allows one writer at a time per file, and a deferred transaction that
//! starts reading and later wants to write fails with `SQLITE_BUSY` at once
//! instead of waiting. So every append runs in a `BEGIN IMMEDIATE` transaction,
//! which takes the write lock up front and waits (`busy_timeout`) for another
//! process that holds it, and all appends of one process go through a writer pool
//! of exactly one connection so they queue in-process instead of spinning on the
//! lock. Reads use a separate pool: WAL readers never block the writer nor each
//! other, and always see a committed prefix of the log, so the global order is
//! gap-free by construction.
//!
//! `:memory:` databases are the exception: every connection to one is a database
//! of its own, so reads and writes share a single connection kept open for the
//! store's lifetime.
//!
//! Subscribers are woken by this instance's own appends. Another process
//! appending to the same file cannot reach them, so they also re-read every
//! [`FALLBACK_RECHECK`] while idle.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use futures::stream::BoxStream;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use tokio::sync::watch;
use uuid::Uuid;

use crate::append::{self, AppendFailure, Decision, StoredId};
use crate::row::{self, SqliteEventRow, EVENT_COLUMNS};
use crate::{
    subscription, AppendResult, EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent,
    StoreError, SQLITE_MIGRATOR,
};

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
    /// The last position this instance appended; bumped after each commit.
    appended: watch::Sender<u64>,
    /// `None` for `:memory:`, which no other process can write to.
    fallback: Option<Duration>,
}

impl SqliteEventStore {
    /// Opens (creating if missing) the database at `url` — `sqlite://tickets.db`,
    /// `sqlite:relative/path.db` or `sqlite::memory:` — and runs the migrations.
    #[tracing::instrument(skip_all, fields(url = %url), err)]
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Invalid(format!("bad SQLite url {url:?}: {e}")))?
            .create_if_missing(true)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");

        let (writer, reader, fallback) = if in_memory {
            // The database lives as long as its last connection: never let the
            // pool close this one.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await?;
            migrate(&pool).await?;
            (pool.clone(), pool, None)
        } else {
            let options = options
                .journal_mode(SqliteJournalMode::Wal)
                // In WAL mode, NORMAL loses no committed data on a process
                // crash, only possibly the last commits on a power loss.
                .synchronous(SqliteSynchronous::Normal);
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await?;
            // Migrate before opening readers, so they find the file in WAL mode
            // with its tables.
            migrate(&writer).await?;
            let reader = SqlitePoolOptions::new()
                .max_connections(READERS)
                .connect_with(options)
                .await?;
            (writer, reader, Some(FALLBACK_RECHECK))
        };

        Ok(SqliteEventStore {
            inner: Arc::new(Inner {
                writer,
                reader,
                appended: watch::Sender::new(0),
                fallback,
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

    /// Closes both pools; appends and reads fail afterwards.
    pub async fn close(&self) {
        self.inner.writer.close().await;
        self.inner.reader.close().await;
    }

    async fn append_in_transaction(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult, AppendFailure> {
        let mut tx = self.inner.writer.begin_with("BEGIN IMMEDIATE").await?;
        let stored = stored_ids(&mut tx, events).await?;
        let current = current_version(&mut tx, stream).await?;
        let first_version = match append::decide(stream, expected, events, stored, current)? {
            // Dropping `tx` rolls back the (empty) transaction.
            Decision::AlreadyAppended(result) => return Ok(result),
            Decision::Write { first_version } => first_version,
        };

        let recorded_at = Utc::now();
        let mut positions = Vec::with_capacity(events.len());
        for (version, event) in (first_version..).zip(events) {
            let position: i64 = sqlx::query_scalar(
                "INSERT INTO events \
                 (id, stream_id, version, event_type, schema_version, data, metadata, recorded_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING position",
            )
            .bind(event.id.to_string())
            .bind(stream)
            .bind(row::sql_i64(version))
            .bind(&event.event_type)
            .bind(event.schema_version)
            .bind(event.data.to_string())
            .bind(event.metadata.to_string())
            .bind(recorded_at)
            .fetch_one(&mut *tx)
            .await?;
            positions.push(row::position(position)?);
        }
        tx.commit().await?;

        let (first_position, last_position) = match (positions.first(), positions.last()) {
            (Some(first), Some(last)) => (*first, *last),
            _ => return Err(StoreError::Invalid("empty append".into()).into()),
        };
        Ok(AppendResult {
            last_version: first_version + events.len() as u64 - 1,
            first_position,
            last_position,
        })
    }

    /// Another process on the same file wrote between our checks and our insert
    /// (only possible if it skipped `BEGIN IMMEDIATE`): decide again on what is
    /// stored now.
    async fn resolve_unique_violation(
        &self,
        violation: append::UniqueViolation,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult, StoreError> {
        let mut tx = self.inner.writer.begin().await?;
        let stored = stored_ids(&mut tx, events).await?;
        let current = current_version(&mut tx, stream).await?;
        append::after_unique_violation(violation, stream, expected, events, stored, current)
    }
}

#[async_trait]
impl EventStore for SqliteEventStore {
    #[tracing::instrument(skip_all, fields(stream = %stream), err)]
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        append::validate(stream, &events)?;
        match self.append_in_transaction(stream, expected, &events).await {
            Ok(result) => {
                // Wake this instance's subscribers; `send_modify` notifies even
                // when nobody listens yet, and never goes backwards.
                let last = result.last_position.commit;
                self.inner.appended.send_modify(|p| *p = (*p).max(last));
                Ok(result)
            }
            Err(AppendFailure::Rule(e)) => Err(e),
            Err(AppendFailure::Database(e)) => match append::unique_violation(&e) {
                Some(violation) => {
                    self.resolve_unique_violation(violation, stream, expected, &events)
                        .await
                }
                None => Err(e.into()),
            },
        }
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

/// The rows among `events`' ids that are stored already.
async fn stored_ids(
    tx: &mut Transaction<'static, Sqlite>,
    events: &[NewEvent],
) -> Result<Vec<StoredId>, StoreError> {
    // One JSON array bound as a single parameter, rather than a placeholder per id.
    let ids = serde_json::Value::from(events.iter().map(|e| e.id.to_string()).collect::<Vec<_>>());
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT id, stream_id, version, position FROM events \
         WHERE id IN (SELECT value FROM json_each(?))",
    )
    .bind(ids.to_string())
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|(id, stream_id, version, position)| {
            Ok(StoredId {
                id: Uuid::parse_str(&id)
                    .map_err(|e| StoreError::Corrupt(format!("stored event id {id:?}: {e}")))?,
                stream_id,
                version: row::version(position, version)?,
                position: row::position(position)?,
            })
        })
        .collect()
}

/// The stream's last version, `None` if it has no event.
async fn current_version(
    tx: &mut Transaction<'static, Sqlite>,
    stream: &str,
) -> Result<Option<u64>, StoreError> {
    let current: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM events WHERE stream_id = ?")
            .bind(stream)
            .fetch_one(&mut **tx)
            .await?;
    current
        .map(|v| {
            u64::try_from(v)
                .map_err(|_| StoreError::Corrupt(format!("stream {stream} is at version {v}")))
        })
        .transpose()
}
