//! The one append writer of a PostgreSQL store: group commit under the lock.
//!
//! Appends serialise on the advisory lock whatever we do, so the time a
//! transaction holds it is the store's whole write budget. Sixteen tasks each
//! taking the lock for one event pay sixteen lock hand-overs between server
//! processes, sixteen commits and sixteen times the round trips around them, and
//! on a busy machine every hand-over waits for the next process to be scheduled.
//! So the appends of one process queue to a single task, which writes whatever
//! has queued up in one transaction: lock once, read the facts of every append
//! in one query, decide each append in order on them (see `append::group`),
//! insert every event that passed in one statement, commit once. Four round
//! trips (begin with the lock, facts, insert, commit) whatever the batch's size. Later
//! appends of a batch see the earlier ones, so versions, conflicts and repeats
//! come out exactly as if the appends had run one after another.
//!
//! An append refused by a rule (a conflict, say) is simply not written; the
//! others go on. A *database* error aborts the transaction and with it the batch,
//! so then each append of the batch is retried in a transaction of its own, and
//! only the one at fault reports the error.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::append::AppendRequest;
use crate::append::{self, AppendFailure, FactRow, GroupFacts, StoredId};
use crate::append_queue::{self, Appends};
use crate::row;
use crate::{AppendResult, AppendedEvent, StoreError};

/// Most appends written in one transaction: bounds how long one batch holds the
/// lock (and how much a failed batch has to redo).
const MAX_BATCH: usize = 64;

/// Every answer of a batch, in order.
type Answers = Vec<Result<AppendResult, StoreError>>;

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
    #[tracing::instrument(name = "postgres append batch", skip_all, fields(size = batch.len()))]
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
    async fn write_together(&self, batch: &[AppendRequest]) -> Result<Answers, AppendFailure> {
        let mut tx = self.begin_locked().await?;
        let mut results = Vec::with_capacity(batch.len());
        let mut rest = batch;
        while !rest.is_empty() {
            let plan = append::plan(rest, facts(&mut tx, rest).await?);
            let (planned, later) = rest.split_at(plan.len());
            let rows = plan.rows(planned);
            let inserted = if rows.is_empty() {
                Vec::new()
            } else {
                // Any failure here may leave a half-written batch behind: it
                // must not commit (`?` drops `tx`, rolling it back).
                self.insert(&mut tx, &rows).await?
            };
            results.extend(plan.results(planned, inserted)?);
            rest = later;
        }
        tx.commit().await?;
        Ok(results)
    }

    /// One append in a transaction of its own, mapping unique violations (a
    /// writer that bypassed the lock) to what they mean.
    async fn write_alone(&self, request: &AppendRequest) -> Result<AppendResult, StoreError> {
        let (stream, expected, events) = (&request.stream, request.expected, &request.events);
        let alone = std::slice::from_ref(request);
        match self.write_together(alone).await {
            Ok(mut results) => results.pop().unwrap_or_else(|| {
                Err(StoreError::Unavailable(
                    "the writer gave no answer to an append".into(),
                ))
            }),
            Err(AppendFailure::Rule(e)) => Err(e),
            Err(AppendFailure::Database(e)) => match append::unique_violation(&e) {
                Some(violation) => {
                    let mut tx = self.pool.begin().await?;
                    let mut facts = facts(&mut tx, alone).await?;
                    let stored: Vec<StoredId> = events
                        .iter()
                        .filter_map(|e| facts.stored.remove(&e.id))
                        .collect();
                    let current = facts.current.get(stream.as_str()).copied();
                    append::after_unique_violation(
                        violation, stream, expected, events, stored, current,
                    )
                }
                None => Err(e.into()),
            },
        }
    }

    async fn begin_locked(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        // The lock is a statement of its own, before any read (see the module
        // docs of `postgres`): the next statement's snapshot is taken after it
        // was granted. It travels with `BEGIN` in one simple query, one round
        // trip for both (the key is a number of ours, not input).
        let begin = format!("BEGIN; SELECT pg_advisory_xact_lock({})", self.lock_key);
        self.pool.begin_with(begin).await
    }

    /// Writes `rows` and queues one notification (delivered on commit, i.e.
    /// once the rows are visible), in one statement: every round trip here is
    /// spent holding the lock. Gives each row's place, in the rows' order.
    async fn insert(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        rows: &[append::Row<'_>],
    ) -> Result<Vec<AppendedEvent>, AppendFailure> {
        // Positions come from the column's sequence in `ord` order, so a stream's
        // versions rise with positions. `notified` is referenced, so it runs,
        // exactly once. `recorded_at` is the start of this statement, which runs
        // under the lock (not `now()`, the start of the transaction, before the
        // wait): times rise with positions, and every event of an append has
        // the same one.
        let written: Vec<(Uuid, i64, DateTime<Utc>, String)> = sqlx::query_as(
            "WITH written AS ( \
                 INSERT INTO events \
                     (id, stream_id, version, event_type, schema_version, data, metadata, \
                      recorded_at, hash) \
                 SELECT e.id, e.stream_id, e.version, e.event_type, e.schema_version, e.data, \
                        e.metadata, statement_timestamp(), e.hash \
                 FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::text[], $5::int4[], \
                             $6::jsonb[], $7::jsonb[], $9::text[]) \
                      WITH ORDINALITY \
                      AS e(id, stream_id, version, event_type, schema_version, data, metadata, \
                           hash, ord) \
                 ORDER BY e.ord \
                 RETURNING id, position, recorded_at, hash \
             ), notified AS ( \
                 SELECT pg_notify($8, max(position)::text) FROM written \
             ) \
             SELECT written.id, written.position, written.recorded_at, written.hash \
             FROM written, notified",
        )
        .bind(rows.iter().map(|r| r.event.id).collect::<Vec<Uuid>>())
        .bind(rows.iter().map(|r| r.stream).collect::<Vec<&str>>())
        .bind(
            rows.iter()
                .map(|r| row::sql_i64(r.version))
                .collect::<Vec<i64>>(),
        )
        .bind(
            rows.iter()
                .map(|r| r.event.event_type.as_str())
                .collect::<Vec<&str>>(),
        )
        .bind(
            rows.iter()
                .map(|r| r.event.schema_version)
                .collect::<Vec<i32>>(),
        )
        .bind(rows.iter().map(|r| &r.event.data).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| &r.event.metadata).collect::<Vec<_>>())
        .bind(&self.channel)
        .bind(rows.iter().map(|r| r.hash).collect::<Vec<&str>>())
        .fetch_all(&mut **tx)
        .await?;
        // RETURNING promises no order: put the places back in the rows' order
        // (a row missing here makes the plan's results refuse the batch).
        let mut by_id = HashMap::with_capacity(written.len());
        for (id, position, recorded_at, hash) in written {
            let place = AppendedEvent {
                position: row::position(position)?,
                recorded_at,
                hash,
            };
            by_id.insert(id, place);
        }
        Ok(rows
            .iter()
            .filter_map(|r| by_id.remove(&r.event.id))
            .collect())
    }
}

/// What the append rules need for every append of `batch`, in one round trip:
/// each stream's last version, and the rows among the batch's ids that are
/// stored already.
async fn facts(
    tx: &mut Transaction<'static, Postgres>,
    batch: &[AppendRequest],
) -> Result<GroupFacts, AppendFailure> {
    // Rows without an id are a stream's last version (NULL: no event) and
    // that event's hash, the chain's head; each is one backward step on the
    // (stream_id, version) index.
    let rows: Vec<FactRow> = sqlx::query_as(
        "SELECT NULL::uuid, s.stream_id, h.version, NULL::int8, NULL::timestamptz, h.hash \
         FROM UNNEST($1::text[]) AS s(stream_id) \
         LEFT JOIN LATERAL ( \
             SELECT version, hash FROM events WHERE stream_id = s.stream_id \
             ORDER BY version DESC LIMIT 1) AS h ON true \
         UNION ALL \
         SELECT e.id, e.stream_id, e.version, e.position, e.recorded_at, e.hash \
         FROM events AS e WHERE e.id = ANY($2::uuid[])",
    )
    .bind(GroupFacts::streams(batch))
    .bind(GroupFacts::ids(batch))
    .fetch_all(&mut **tx)
    .await?;

    Ok(GroupFacts::from_rows(rows)?)
}
