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
//! # One writer per process
//!
//! Since appends serialise anyway, a store sends its appends to one writer task
//! (see `writer`) that writes whatever has queued up in one transaction: one lock
//! hand-over and one commit for many appends, with the same outcome as writing
//! them one by one.
//!
//! Opening a store (schema, pool, migrations, listener, writer) is in `connect`.
//!
//! # Messages between processes
//!
//! Besides the log's own channel, [`broadcast`] carries short messages of
//! other topics between the processes of one store (presence), kept in no
//! table.

pub mod broadcast;
mod connect;
mod listener;
mod writer;

pub use connect::MAX_SCHEMA_LEN;

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use sqlx::postgres::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::append_queue::Appends;
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
    /// Appends go to the writer task (see `writer`).
    appends: Appends,
    writer: JoinHandle<()>,
    /// Bumped by the listener on every notification (and on reconnects).
    wake: Arc<watch::Sender<u64>>,
    listener: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.writer.abort();
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

    /// Messages of `topic` between the processes of this store (see
    /// [`broadcast`]); `topic` is lowercase ASCII, and `<topic>_<schema>`
    /// fits in 63 bytes.
    pub fn broadcast(&self, topic: &str) -> Result<broadcast::Broadcast, StoreError> {
        broadcast::Broadcast::new(self.inner.pool.clone(), topic, &self.inner.schema)
    }

    /// Stops the writer and the listener and closes the pool; calls fail
    /// afterwards.
    pub async fn close(&self) {
        self.inner.writer.abort();
        self.inner.listener.abort();
        self.inner.pool.close().await;
    }
}

#[async_trait]
impl EventStore for PostgresEventStore {
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
