//! The one append writer of a SQLite store: group commit.
//!
//! SQLite writes one transaction at a time, and each costs a `BEGIN IMMEDIATE`,
//! a commit that appends to the WAL (and, at `synchronous = FULL`, an fsync), and
//! a few round trips to the connection's worker thread. Sixteen tasks appending
//! one event each would pay that sixteen times while the others wait in line for
//! the one writer connection. So the appends of one store queue to a single task,
//! which writes whatever has queued up in one transaction: for each append, read
//! the facts, apply the rules (see `append`), insert; then commit once and only
//! then reply. Later appends of a group see the earlier ones (same transaction),
//! so versions, conflicts and repeats come out exactly as if the appends had run
//! one after another, which they did, in queue order.
//!
//! # Each append succeeds or fails on its own
//!
//! An append refused by a rule (a conflict, an idempotency mismatch) writes
//! nothing, so it cannot disturb the others. An append whose insert fails on a
//! constraint is undone on its own: a single-statement insert by SQLite itself
//! (the default `ON CONFLICT ABORT` backs out the failing statement and keeps the
//! transaction), a multi-event one through a `SAVEPOINT` around its inserts. Any
//! other database error (disk full, I/O) may have rolled the whole transaction
//! back behind our back, so it fails the group: nothing of it is committed, every
//! caller hears the error and may retry (ids make retries safe).
//!
//! # Durability
//!
//! Unchanged by grouping: an `Ok` reply is sent only after the group's `COMMIT`
//! returned, so an acknowledged append is committed, at the store's
//! `synchronous` setting (see the `sqlite` module). The global order stays
//! gap-free: one transaction at a time still assigns positions, and readers see
//! whole commits.
//!
//! A caller that goes away after queueing its append does not take it back: it is
//! written anyway, and a retry with the same ids finds it.

use std::sync::Arc;

use chrono::Utc;
use sqlx::sqlite::SqlitePool;
use sqlx::{Sqlite, Transaction};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::append::{self, AppendFailure, Decision, StoredId};
use crate::append_queue::{self, AppendRequest, Appends};
use crate::row;
use crate::{AppendResult, ExpectedVersion, NewEvent, StoreError};

/// Most appends written in one transaction: bounds how long one group keeps
/// read-model writes (which share the writer connection) waiting.
const MAX_GROUP: usize = 128;

/// What the writer needs of the store.
pub(super) struct Writer {
    /// The store's single writer connection.
    pub pool: SqlitePool,
    /// Bumped to the last position of each committed group, before the replies.
    pub appended: Arc<watch::Sender<u64>>,
}

/// Starts the writer task; appends go into the returned sender.
pub(super) fn start(writer: Writer) -> (Appends, JoinHandle<()>) {
    let writer = Arc::new(writer);
    append_queue::start(MAX_GROUP, move |group| {
        let writer = writer.clone();
        async move { writer.write(group).await }
    })
}

impl Writer {
    #[tracing::instrument(name = "sqlite append group", skip_all, fields(size = group.len()))]
    async fn write(&self, group: Vec<AppendRequest>) {
        let results = match self.write_together(&group).await {
            Ok(results) => {
                let last = results
                    .iter()
                    .filter_map(|r| r.as_ref().ok())
                    .map(|r| r.last_position.commit)
                    .max();
                if let Some(last) = last {
                    // Wake this store's subscribers; `send_modify` notifies even
                    // when nobody listens yet, and never goes backwards.
                    self.appended.send_modify(|p| *p = (*p).max(last));
                }
                results
            }
            Err(e) => {
                let size = group.len();
                tracing::warn!(error = %e, size, "append group failed; nothing of it was committed");
                group
                    .iter()
                    .map(|_| Err(StoreError::Unavailable(e.to_string())))
                    .collect()
            }
        };
        for (request, result) in group.into_iter().zip(results) {
            let _ = request.reply.send(result);
        }
    }

    /// The whole group in one transaction. `Err` means nothing was committed.
    async fn write_together(
        &self,
        group: &[AppendRequest],
    ) -> Result<Vec<Result<AppendResult, StoreError>>, sqlx::Error> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut results = Vec::with_capacity(group.len());
        for request in group {
            let result = match append_one(&mut tx, request).await {
                Ok(result) => Ok(result),
                Err(AppendFailure::Rule(refused)) => Err(refused),
                // Dropping `tx` rolls back whatever is left of the transaction.
                Err(AppendFailure::Database(e)) => return Err(e),
            };
            results.push(result);
        }
        tx.commit().await?;
        Ok(results)
    }
}

/// One append inside the group's transaction. A `Rule` failure left nothing of
/// this append behind; a `Database` failure may have spoilt the transaction.
async fn append_one(
    tx: &mut Transaction<'static, Sqlite>,
    request: &AppendRequest,
) -> Result<AppendResult, AppendFailure> {
    let (stream, expected, events) = (&request.stream, request.expected, &request.events);
    if let [event] = events.as_slice() {
        match insert_if_expected(tx, stream, expected, event).await {
            Ok(Some(result)) => return Ok(result),
            Ok(None) => {}
            // Another writer bypassed our lock (see below); the statement was
            // undone, so let the facts say what that means.
            Err(AppendFailure::Database(e)) if append::unique_violation(&e).is_some() => {}
            Err(failure) => return Err(failure),
        }
    }
    let (stored, current) = facts(tx, stream, events).await?;
    let first_version = match append::decide(stream, expected, events, stored, current)? {
        Decision::AlreadyAppended(result) => return Ok(result),
        Decision::Write { first_version } => first_version,
    };
    let inserted = if events.len() == 1 {
        insert(tx, stream, first_version, events).await
    } else {
        in_savepoint(tx, stream, first_version, events).await
    };
    match inserted {
        Err(AppendFailure::Database(e)) => match append::unique_violation(&e) {
            // Only a writer that skipped `BEGIN IMMEDIATE` can get here; our
            // insert was undone, so decide again on what is stored now.
            Some(violation) => {
                let (stored, current) = facts(tx, stream, events).await?;
                Ok(append::after_unique_violation(
                    violation, stream, expected, events, stored, current,
                )?)
            }
            None => Err(AppendFailure::Database(e)),
        },
        other => other,
    }
}

/// The common case in one statement: a single event whose id is new, to a
/// stream at the expected version, is inserted with the next version. `None`
/// when it was not (a repeat, a conflict...): the caller then reads the facts
/// and lets the rules say why.
async fn insert_if_expected(
    tx: &mut Transaction<'static, Sqlite>,
    stream: &str,
    expected: ExpectedVersion,
    event: &NewEvent,
) -> Result<Option<AppendResult>, AppendFailure> {
    // `?3 = 0`: any version will do; otherwise the stream's last version must
    // be `?4` (NULL: no stream), compared with `IS` so NULL matches NULL.
    let (check, version) = match expected {
        ExpectedVersion::Any => (false, None),
        ExpectedVersion::NoStream => (true, None),
        ExpectedVersion::Exact(n) => (true, Some(row::sql_i64(n))),
    };
    let inserted: Option<(i64, i64)> = sqlx::query_as(
        "INSERT INTO events \
         (id, stream_id, version, event_type, schema_version, data, metadata, recorded_at) \
         SELECT ?1, ?2, COALESCE(s.current + 1, 0), ?5, ?6, ?7, ?8, ?9 \
         FROM (SELECT MAX(version) AS current FROM events WHERE stream_id = ?2) AS s \
         WHERE (?3 = 0 OR s.current IS ?4) \
           AND NOT EXISTS (SELECT 1 FROM events WHERE id = ?1) \
         RETURNING position, version",
    )
    .bind(event.id.to_string())
    .bind(stream)
    .bind(check)
    .bind(version)
    .bind(&event.event_type)
    .bind(event.schema_version)
    .bind(event.data.to_string())
    .bind(event.metadata.to_string())
    .bind(Utc::now())
    .fetch_optional(&mut **tx)
    .await?;
    let Some((raw_position, version)) = inserted else {
        return Ok(None);
    };
    let position = row::position(raw_position)?;
    Ok(Some(AppendResult {
        last_version: row::version(raw_position, version)?,
        first_position: position,
        last_position: position,
    }))
}

/// Several inserts, undone together if one fails on a constraint.
async fn in_savepoint(
    tx: &mut Transaction<'static, Sqlite>,
    stream: &str,
    first_version: u64,
    events: &[NewEvent],
) -> Result<AppendResult, AppendFailure> {
    sqlx::query("SAVEPOINT append").execute(&mut **tx).await?;
    let inserted = insert(tx, stream, first_version, events).await;
    if inserted.is_err() {
        sqlx::query("ROLLBACK TO append").execute(&mut **tx).await?;
    }
    sqlx::query("RELEASE append").execute(&mut **tx).await?;
    inserted
}

/// Inserts the events at versions `first_version`, `first_version + 1`, ...
async fn insert(
    tx: &mut Transaction<'static, Sqlite>,
    stream: &str,
    first_version: u64,
    events: &[NewEvent],
) -> Result<AppendResult, AppendFailure> {
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
        .fetch_one(&mut **tx)
        .await?;
        positions.push(row::position(position)?);
    }
    match (positions.first(), positions.last()) {
        (Some(first), Some(last)) => Ok(AppendResult {
            last_version: first_version + events.len() as u64 - 1,
            first_position: *first,
            last_position: *last,
        }),
        _ => Err(StoreError::Invalid("empty append".into()).into()),
    }
}

/// What the append rules need, in one query: the rows among `events`' ids that
/// are stored already, and the stream's last version (`None`: no event).
async fn facts(
    tx: &mut Transaction<'static, Sqlite>,
    stream: &str,
    events: &[NewEvent],
) -> Result<(Vec<StoredId>, Option<u64>), AppendFailure> {
    // One JSON array bound as a single parameter, rather than a placeholder per id.
    let ids = serde_json::Value::from(events.iter().map(|e| e.id.to_string()).collect::<Vec<_>>());
    type Row = (
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<i64>,
    );
    // Always at least one row (the stream's version); stored ids join onto it,
    // leaving NULLs when there are none.
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT s.current, e.id, e.stream_id, e.version, e.position \
         FROM (SELECT MAX(version) AS current FROM events WHERE stream_id = ?) AS s \
         LEFT JOIN events AS e ON e.id IN (SELECT value FROM json_each(?))",
    )
    .bind(stream)
    .bind(ids.to_string())
    .fetch_all(&mut **tx)
    .await?;

    let current = match rows.first().and_then(|r| r.0) {
        None => None,
        Some(v) => Some(
            u64::try_from(v)
                .map_err(|_| StoreError::Corrupt(format!("stream {stream} is at version {v}")))?,
        ),
    };
    let mut stored = Vec::new();
    for found in rows {
        if let (_, Some(id), Some(stream_id), Some(version), Some(position)) = found {
            stored.push(StoredId {
                id: Uuid::parse_str(&id)
                    .map_err(|e| StoreError::Corrupt(format!("stored event id {id:?}: {e}")))?,
                stream_id,
                version: row::version(position, version)?,
                position: row::position(position)?,
            });
        }
    }
    Ok((stored, current))
}
