//! The one append writer of a PostgreSQL store: group commit under the lock.
//!
//! Appends serialise on the advisory lock whatever we do, so the time a
//! transaction holds it is the store's whole write budget. Sixteen tasks each
//! taking the lock for one event pay sixteen lock hand-overs between server
//! processes, sixteen commits and sixteen times the round trips around them, and
//! on a busy machine every hand-over waits for the next process to be scheduled.
//! So the appends of one process queue to a single task, which writes whatever
//! has queued up in one transaction: lock once, then for each append check it and
//! insert it, then commit once. Later appends of a batch see the earlier ones (same
//! transaction), so versions, conflicts and repeats come out exactly as if the
//! appends had run one after another, which they did.
//!
//! An append refused by a rule (a conflict, say) is simply not written; the
//! others go on. A *database* error aborts the transaction and with it the batch,
//! so then each append of the batch is retried in a transaction of its own, and
//! only the one at fault reports the error.

use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};
use std::sync::Arc;

use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::append::{self, AppendFailure, Decision, StoredId};
use crate::append_queue::{self, AppendRequest, Appends};
use crate::row;
use crate::{AppendResult, ExpectedVersion, NewEvent, StoreError};

/// Most appends written in one transaction: bounds how long one batch holds the
/// lock (and how much a failed batch has to redo).
const MAX_BATCH: usize = 64;

/// What the writer needs of the store.
pub(super) struct Writer {
    pub pool: PgPool,
    pub lock_key: i64,
    pub channel: String,
}

/// Starts the writer task; appends go into the returned sender.
pub(super) fn start(writer: Writer) -> (Appends, JoinHandle<()>) {
    let writer = Arc::new(writer);
    append_queue::start(MAX_BATCH, move |batch| {
        let writer = writer.clone();
        async move { writer.write(batch).await }
    })
}

impl Writer {
    async fn write(&self, batch: Vec<AppendRequest>) {
        // Nobody waits for an append whose caller went away, but it is still
        // written: the caller may have been cancelled after sending it, and a
        // retry with the same ids will find it.
        let outcome = if batch.len() == 1 {
            Err(())
        } else {
            self.write_together(&batch).await.map_err(|failure| {
                let size = batch.len();
                tracing::debug!(?failure, size, "batch failed; appending one by one");
            })
        };
        match outcome {
            Ok(results) => {
                for (request, result) in batch.into_iter().zip(results) {
                    let _ = request.reply.send(result);
                }
            }
            Err(()) => {
                for request in batch {
                    let result = self.write_alone(&request).await;
                    let _ = request.reply.send(result);
                }
            }
        }
    }

    /// The whole batch in one transaction. `Err` means nothing was written.
    async fn write_together(
        &self,
        batch: &[AppendRequest],
    ) -> Result<Vec<Result<AppendResult, StoreError>>, AppendFailure> {
        let mut tx = self.begin_locked().await?;
        let mut results = Vec::with_capacity(batch.len());
        for request in batch {
            let (stream, events) = (&request.stream, &request.events);
            let result = match plan(&mut tx, stream, request.expected, events).await {
                Ok(Decision::AlreadyAppended(result)) => Ok(result),
                // Any failure here may leave a half-written append behind: the
                // batch must not commit (`?` drops `tx`, rolling it back).
                Ok(Decision::Write { first_version }) => {
                    Ok(self.insert(&mut tx, stream, first_version, events).await?)
                }
                // Refused before writing anything: only this append fails.
                Err(AppendFailure::Rule(refused)) => Err(refused),
                Err(failure @ AppendFailure::Database(_)) => return Err(failure),
            };
            results.push(result);
        }
        tx.commit().await?;
        Ok(results)
    }

    /// One append in a transaction of its own, mapping unique violations (a
    /// writer that bypassed the lock) to what they mean.
    async fn write_alone(&self, request: &AppendRequest) -> Result<AppendResult, StoreError> {
        let (stream, expected, events) = (&request.stream, request.expected, &request.events);
        let attempt = async {
            let mut tx = self.begin_locked().await?;
            let result = match plan(&mut tx, stream, expected, events).await? {
                // Dropping `tx` rolls back, which releases the lock.
                Decision::AlreadyAppended(result) => return Ok(result),
                Decision::Write { first_version } => {
                    self.insert(&mut tx, stream, first_version, events).await?
                }
            };
            tx.commit().await?;
            Ok::<_, AppendFailure>(result)
        };
        match attempt.await {
            Ok(result) => Ok(result),
            Err(AppendFailure::Rule(e)) => Err(e),
            Err(AppendFailure::Database(e)) => match append::unique_violation(&e) {
                Some(violation) => {
                    let mut tx = self.pool.begin().await?;
                    let (stored, current) = facts(&mut tx, stream, events).await?;
                    append::after_unique_violation(
                        violation, stream, expected, events, stored, current,
                    )
                }
                None => Err(e.into()),
            },
        }
    }

    async fn begin_locked(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // A statement of its own, before any read (see the module docs of
        // `postgres`): its snapshot must be taken after the lock is granted.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(self.lock_key)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Writes one append and queues its notification (delivered on commit, i.e.
    /// once the rows are visible), in one statement: every round trip here is
    /// spent holding the lock.
    async fn insert(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        stream: &str,
        first_version: u64,
        events: &[NewEvent],
    ) -> Result<AppendResult, AppendFailure> {
        // Positions come from the column's sequence in `ord` order, so a stream's
        // versions rise with positions. `notified` is referenced, so it runs,
        // exactly once. `recorded_at` is the clock under the lock, not `now()`
        // (the start of the transaction, before the wait): times rise with
        // positions.
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
        .bind(&self.channel)
        .fetch_all(&mut **tx)
        .await?;
        written.sort_by_key(|&(_, version)| version);
        let positions = written
            .iter()
            .map(|&(position, _)| row::position(position))
            .collect::<Result<Vec<_>, _>>()?;
        match (positions.first(), positions.last()) {
            (Some(first), Some(last))
                if positions.len() == events.len() && positions.windows(2).all(|w| w[0] < w[1]) =>
            {
                Ok(AppendResult {
                    last_version: first_version + events.len() as u64 - 1,
                    first_position: *first,
                    last_position: *last,
                })
            }
            // Would break "a stream's events in version order" for readers of the
            // global log; refuse rather than commit it.
            _ => Err(StoreError::Unavailable(format!(
                "the insert returned positions {positions:?} out of version order"
            ))
            .into()),
        }
    }
}

/// Applies the append rules to what is stored now (inside the lock).
async fn plan(
    tx: &mut Transaction<'static, Postgres>,
    stream: &str,
    expected: ExpectedVersion,
    events: &[NewEvent],
) -> Result<Decision, AppendFailure> {
    let (stored, current) = facts(tx, stream, events).await?;
    Ok(append::decide(stream, expected, events, stored, current)?)
}

/// What the append rules need, in one round trip: the rows among `events`' ids
/// that are stored already, and the stream's last version (`None`: no event).
async fn facts(
    tx: &mut Transaction<'static, Postgres>,
    stream: &str,
    events: &[NewEvent],
) -> Result<(Vec<StoredId>, Option<u64>), AppendFailure> {
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
