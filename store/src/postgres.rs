//! The production event store on PostgreSQL, with a gap-free global order.
//!
//! # The problem: positions that commit out of order
//!
//! A `bigserial` hands out positions when rows are *inserted*, but transactions
//! *commit* in whatever order they finish. Writer A takes position 6, writer B
//! takes 7, B commits first. A subscriber reading "after 5" now sees 7, records it
//! as its checkpoint, and reads "after 7" from then on: when A commits, event 6 is
//! behind the checkpoint and that subscriber never sees it. Nothing fails; a read
//! model is silently wrong. This is the most reported bug in SQL event stores.
//!
//! # The fix: assign positions under a lock held until commit
//!
//! As Message DB does, every append transaction first takes a transaction-scoped
//! advisory lock (`pg_advisory_xact_lock`) with a key derived from the schema, and
//! only then checks versions, draws positions from the sequence and inserts. The
//! lock is released by the commit itself, *after* the transaction has become
//! visible to other sessions. So appends take positions one transaction at a time,
//! and a transaction's rows are visible before the next transaction can draw a
//! position: a reader that sees position N+1 is guaranteed to also see N (or N is
//! a hole). Holes come only from appends that rolled back after drawing from the
//! sequence (a failed insert, a dropped connection); a sequence never hands a value
//! out twice, so a hole is never filled later and skipping it loses nothing.
//!
//! The lock is taken in a statement of its own, before any read: under READ
//! COMMITTED each statement gets a fresh snapshot, so a statement issued after the
//! lock was granted sees everything committed by the previous holder. A statement
//! that locked and read at once would read with a snapshot from before the wait.
//!
//! # Why not a gap detector
//!
//! The other common answer lets writers run in parallel and makes readers stop at a
//! gap, waiting for it to fill or for a timeout to declare it a hole. But a reader
//! cannot tell a hole from a transaction that is merely slow: a short timeout skips
//! a slow commit forever (the bug again, only rarer and harder to reproduce), and a
//! long one delays every subscriber by the timeout whenever any append rolls back.
//! The lock gives certainty instead of a guess. Its price is that appends serialise
//! (per schema), bounded by the few round trips spent holding the lock; the
//! 32,000-event test in `tests/postgres_ordering.rs` measures what that costs.
//!
//! The key is FNV-1a of the schema name rather than a Rust `Hasher`, whose output
//! may change between compiler releases: two processes built at different times
//! must agree on it. Stores in different schemas do not serialise each other.
//!
//! # Waking subscribers
//!
//! Each append sends `pg_notify(<channel>, <last position>)` inside its
//! transaction, so the notification is delivered on commit, after the rows are
//! visible. The channel is named after the schema. One listener task per store
//! (see `listener`) feeds every subscriber of that store, including for appends
//! made by other processes.
//!
//! Opening a store (schema, pool, migrations, listener) is in `connect`.

mod connect;
mod listener;

pub use connect::MAX_SCHEMA_LEN;

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::append::{self, AppendFailure, Decision, StoredId};
use crate::row::{self, PgEventRow, EVENT_COLUMNS};
use crate::{
    subscription, AppendResult, EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent,
    StoreError,
};

/// The PostgreSQL event store. Cheap to clone; clones share the pool and the
/// listener.
#[derive(Clone)]
pub struct PostgresEventStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    schema: String,
    lock_key: i64,
    channel: String,
    /// Bumped by the listener on every notification (and on reconnects).
    wake: Arc<watch::Sender<u64>>,
    listener: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PostgresEventStore {
    /// The pool, for read models that live in the same database (and schema).
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The schema this store's tables live in.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// Stops the listener and closes the pool; calls fail afterwards.
    pub async fn close(&self) {
        self.inner.listener.abort();
        self.inner.pool.close().await;
    }

    async fn append_in_transaction(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult, AppendFailure> {
        let mut tx = self.inner.pool.begin().await?;
        // A statement of its own, before any read (see the module docs).
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(self.inner.lock_key)
            .execute(&mut *tx)
            .await?;
        // Every round trip from here to the commit is spent holding the lock,
        // that is, holding up every other append: hence few, fat statements.
        let (stored, current) = facts(&mut tx, stream, events).await?;
        let first_version = match append::decide(stream, expected, events, stored, current)? {
            // Dropping `tx` rolls back, which releases the lock.
            Decision::AlreadyAppended(result) => return Ok(result),
            Decision::Write { first_version } => first_version,
        };

        // One statement writes the whole append and queues the notification
        // (delivered on commit, i.e. once the rows are visible). Positions come
        // from the column's sequence in `ord` order, so a stream's versions rise
        // with positions. `notified` is referenced, so it runs, exactly once.
        // `recorded_at` is the clock under the lock, not `now()` (the start of
        // the transaction, before the wait): times then rise with positions.
        let mut written: Vec<(i64, i64)> = sqlx::query_as(
            "WITH written AS ( \
                 INSERT INTO events \
                     (id, stream_id, version, event_type, schema_version, data, metadata, \
                      recorded_at) \
                 SELECT e.id, $1, $2 + e.ord - 1, e.event_type, e.schema_version, e.data, \
                        e.metadata, clock_timestamp() \
                 FROM UNNEST($3::uuid[], $4::text[], $5::int4[], $6::jsonb[], $7::jsonb[]) \
                      WITH ORDINALITY AS e(id, event_type, schema_version, data, metadata, ord) \
                 ORDER BY e.ord \
                 RETURNING position, version \
             ), notified AS ( \
                 SELECT pg_notify($8, max(position)::text) FROM written \
             ) \
             SELECT written.position, written.version FROM written, notified",
        )
        .bind(stream)
        .bind(row::sql_i64(first_version))
        .bind(events.iter().map(|e| e.id).collect::<Vec<Uuid>>())
        .bind(
            events
                .iter()
                .map(|e| e.event_type.clone())
                .collect::<Vec<_>>(),
        )
        .bind(events.iter().map(|e| e.schema_version).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.data.clone()).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|e| e.metadata.clone())
                .collect::<Vec<_>>(),
        )
        .bind(&self.inner.channel)
        .fetch_all(&mut *tx)
        .await?;
        written.sort_by_key(|&(_, version)| version);
        let positions = written
            .iter()
            .map(|&(position, _)| row::position(position))
            .collect::<Result<Vec<_>, _>>()?;
        let (first_position, last_position) = match (positions.first(), positions.last()) {
            (Some(first), Some(last))
                if positions.len() == events.len() && positions.windows(2).all(|w| w[0] < w[1]) =>
            {
                (*first, *last)
            }
            // Would break "a stream's events in version order" for readers of the
            // global log; refuse rather than commit it.
            _ => {
                return Err(StoreError::Unavailable(format!(
                    "the insert returned positions {positions:?} out of version order"
                ))
                .into())
            }
        };
        tx.commit().await?;
        Ok(AppendResult {
            last_version: first_version + events.len() as u64 - 1,
            first_position,
            last_position,
        })
    }

    /// Someone wrote without taking our lock (another schema's store cannot, so
    /// this is a writer bypassing the store): decide again on what is stored now.
    async fn resolve_unique_violation(
        &self,
        violation: append::UniqueViolation,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult, StoreError> {
        let mut tx = self.inner.pool.begin().await?;
        let (stored, current) = facts(&mut tx, stream, events).await?;
        append::after_unique_violation(violation, stream, expected, events, stored, current)
    }
}

#[async_trait]
impl EventStore for PostgresEventStore {
    #[tracing::instrument(skip_all, fields(stream = %stream), err)]
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        append::validate(stream, &events)?;
        match self.append_in_transaction(stream, expected, &events).await {
            Ok(result) => Ok(result),
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
        let rows: Vec<PgEventRow> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM events \
             WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3"
        ))
        .bind(stream)
        .bind(row::sql_i64(from_version))
        .bind(row::sql_limit(max))
        .fetch_all(&self.inner.pool)
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
        let rows: Vec<PgEventRow> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2"
        ))
        .bind(row::sql_i64(after.commit))
        .bind(row::sql_limit(max))
        .fetch_all(&self.inner.pool)
        .await?;
        row::decode_all(rows)
    }

    #[tracing::instrument(skip_all, err)]
    async fn head(&self) -> Result<Position, StoreError> {
        let last: Option<i64> = sqlx::query_scalar("SELECT MAX(position) FROM events")
            .fetch_one(&self.inner.pool)
            .await?;
        last.map_or(Ok(Position::START), row::position)
    }

    fn subscribe_all(
        &self,
        after: Position,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        let wake = self.inner.wake.subscribe();
        subscription::catch_up(self.clone(), after, wake, None)
    }
}

/// What the append rules need, in one round trip: the rows among `events`' ids
/// that are stored already, and the stream's last version (`None`: no event).
async fn facts(
    tx: &mut Transaction<'static, Postgres>,
    stream: &str,
    events: &[NewEvent],
) -> Result<(Vec<StoredId>, Option<u64>), StoreError> {
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    // Always at least one row (the stream's version); stored ids join onto it,
    // leaving NULLs when there are none.
    type Row = (
        Option<i64>,
        Option<Uuid>,
        Option<String>,
        Option<i64>,
        Option<i64>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT s.current, e.id, e.stream_id, e.version, e.position \
         FROM (SELECT max(version) AS current FROM events WHERE stream_id = $1) AS s \
         LEFT JOIN events AS e ON e.id = ANY($2)",
    )
    .bind(stream)
    .bind(ids)
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
                id,
                stream_id,
                version: row::version(position, version)?,
                position: row::position(position)?,
            });
        }
    }
    Ok((stored, current))
}
