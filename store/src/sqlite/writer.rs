//! The one append writer of a SQLite store: group commit.
//!
//! SQLite writes one transaction at a time, and each costs a `BEGIN IMMEDIATE`,
//! a commit that appends to the WAL (and, at `synchronous = FULL`, an fsync), and
//! a few round trips to the connection's worker thread. Sixteen tasks appending
//! one event each would pay that sixteen times while the others wait in line for
//! the one writer connection. So the appends of one store queue to a single task,
//! which writes whatever has queued up in one transaction: read the facts,
//! apply the rules (see `append`), insert; then commit once and only then
//! reply. Later appends of a group see the earlier ones (same transaction),
//! so versions, conflicts and repeats come out exactly as if the appends had run
//! one after another, which they did, in queue order.
//!
//! # Each append succeeds or fails on its own
//!
//! The group costs a constant number of statements, whatever its size: one
//! query reads the facts of every append (see `append::group`), the rules
//! decide each append in queue order, and one multi-row `INSERT` writes every
//! event that passed them. An append refused by a rule (a conflict, an
//! idempotency mismatch) writes nothing, so it cannot disturb the others. An
//! insert that fails on a constraint is undone whole by SQLite itself (the
//! default `ON CONFLICT ABORT` backs out the failing statement and keeps the
//! transaction), so no savepoints are needed: the writer then writes the
//! appends of that insert one at a time, and one whose own insert still fails
//! is decided again on what is stored now. Only a writer that skipped
//! `BEGIN IMMEDIATE` can cause that. Any other database error (disk full,
//! I/O) may have rolled the whole transaction back behind our back, so it
//! fails the group: nothing of it is committed, every caller hears the error
//! and may retry (ids make retries safe).
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

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqlitePool;
use sqlx::{Sqlite, Transaction};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::append::AppendRequest;
use crate::append::{self, AppendFailure, GroupFacts, GroupPlan, StoredId};
use crate::append_queue::{self, Appends};
use crate::row;
use crate::{AppendResult, AppendedEvent, StoreError};

/// Most appends written in one transaction: bounds how long one group keeps
/// read-model writes (which share the writer connection) waiting.
const MAX_GROUP: usize = 128;

/// Every answer of a group (or of a part of it), in order.
type Answers = Vec<Result<AppendResult, StoreError>>;

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
                group.iter().map(|_| Err(same_error(&e))).collect()
            }
        };
        for (request, result) in group.into_iter().zip(results) {
            let _ = request.reply.send(result);
        }
    }

    /// The whole group in one transaction. `Err` means nothing was committed.
    async fn write_together(&self, group: &[AppendRequest]) -> Result<Answers, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // The same time for the whole group: it is read under the write lock,
        // so times still rise with positions from one group to the next.
        let recorded_at = Utc::now();
        let mut results = Vec::with_capacity(group.len());
        let mut rest = group;
        while !rest.is_empty() {
            let facts = facts(&mut tx, rest).await?;
            let plan = append::plan(rest, facts);
            let (planned, later) = rest.split_at(plan.len());
            results.extend(write_planned(&mut tx, planned, plan, recorded_at).await?);
            rest = later;
        }
        tx.commit().await?;
        Ok(results)
    }
}

/// Writes the planned part of a group in one insert. A `Database` failure may
/// have spoilt the transaction; anything else left it usable.
async fn write_planned(
    tx: &mut Transaction<'static, Sqlite>,
    planned: &[AppendRequest],
    plan: GroupPlan,
    recorded_at: DateTime<Utc>,
) -> Result<Answers, StoreError> {
    let rows = plan.rows(planned);
    if rows.is_empty() {
        return plan.results(planned, Vec::new());
    }
    let e = match insert(tx, &rows, recorded_at).await {
        Ok(inserted) => return plan.results(planned, inserted),
        Err(AppendFailure::Rule(e)) => return Err(e),
        Err(AppendFailure::Database(e)) => e,
    };
    match append::unique_violation(&e) {
        // SQLite undid the whole statement: go one append at a time.
        Some(_) if planned.len() > 1 => {
            let mut results = Vec::with_capacity(planned.len());
            for one in planned.chunks(1) {
                let facts = facts(tx, one).await?;
                let plan = append::plan(one, facts);
                results.extend(Box::pin(write_planned(tx, one, plan, recorded_at)).await?);
            }
            Ok(results)
        }
        // Only a writer that skipped `BEGIN IMMEDIATE` can get here; our
        // insert was undone, so decide again on what is stored now.
        Some(violation) => {
            let request = &planned[0];
            {
                let (stream, expected, events) =
                    (&request.stream, request.expected, &request.events);
                let mut facts = facts(tx, planned).await?;
                let stored: Vec<StoredId> = events
                    .iter()
                    .filter_map(|e| facts.stored.remove(&e.id))
                    .collect();
                let current = facts.current.get(stream).copied();
                Ok(vec![append::after_unique_violation(
                    violation, stream, expected, events, stored, current,
                )])
            }
        }
        None => Err(e.into()),
    }
}

/// Inserts `rows` in one statement, in order, and gives each one's place.
async fn insert(
    tx: &mut Transaction<'static, Sqlite>,
    rows: &[append::Row<'_>],
    recorded_at: DateTime<Utc>,
) -> Result<Vec<AppendedEvent>, AppendFailure> {
    // One JSON array bound as a single parameter (one statement text whatever
    // the group's size, so it is prepared once). Payloads travel as JSON
    // strings, which come out of `json_extract` exactly as they went in.
    let ids: Vec<String> = rows.iter().map(|r| r.event.id.to_string()).collect();
    let values: Vec<_> = rows
        .iter()
        .zip(&ids)
        .map(|(r, id)| {
            (
                id,
                r.stream,
                row::sql_i64(r.version),
                &r.event.event_type,
                r.event.schema_version,
                r.event.data.to_string(),
                r.event.metadata.to_string(),
                r.hash,
            )
        })
        .collect();
    let values = serde_json::to_string(&values)
        .map_err(|e| StoreError::Invalid(format!("an event does not encode: {e}")))?;
    let inserted: Vec<(String, i64)> = sqlx::query_as(
        "INSERT INTO events \
         (id, stream_id, version, event_type, schema_version, data, metadata, recorded_at, \
          hash) \
         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
                json_extract(value, '$[2]'), json_extract(value, '$[3]'), \
                json_extract(value, '$[4]'), json_extract(value, '$[5]'), \
                json_extract(value, '$[6]'), ?2, json_extract(value, '$[7]') \
         FROM json_each(?1) ORDER BY key \
         RETURNING id, position",
    )
    .bind(values)
    .bind(recorded_at)
    .fetch_all(&mut **tx)
    .await?;
    // RETURNING promises no order: put the places back in the rows' order (a
    // row missing here makes the plan's results refuse the group).
    let mut by_id = HashMap::with_capacity(inserted.len());
    for (id, position) in inserted {
        by_id.insert(id, row::position(position)?);
    }
    Ok(ids
        .iter()
        .zip(rows)
        .filter_map(|(id, r)| Some((by_id.get(id).copied()?, r.hash)))
        .map(|(position, hash)| AppendedEvent {
            position,
            recorded_at,
            hash: hash.to_string(),
        })
        .collect())
}

/// `e` again, for each caller of a failed group.
fn same_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Corrupt(detail) => StoreError::Corrupt(detail.clone()),
        StoreError::Invalid(detail) => StoreError::Invalid(detail.clone()),
        StoreError::Unavailable(detail) => StoreError::Unavailable(detail.clone()),
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// What the append rules need for every append of `group`, in one query: each
/// stream's last version, and the rows among the group's ids that are stored.
async fn facts(
    tx: &mut Transaction<'static, Sqlite>,
    group: &[AppendRequest],
) -> Result<GroupFacts, StoreError> {
    let streams = serde_json::Value::from(GroupFacts::streams(group));
    let ids: Vec<String> = GroupFacts::ids(group).iter().map(Uuid::to_string).collect();
    let ids = serde_json::Value::from(ids);
    type Row = (
        Option<String>,
        String,
        Option<i64>,
        Option<i64>,
        Option<DateTime<Utc>>,
        Option<String>,
    );
    // Rows without an id are a stream's last version (NULL: no event) and
    // that event's hash, the chain's head: each one step on the
    // (stream_id, version) index.
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT NULL, s.value, h.version, NULL, NULL, h.hash \
         FROM json_each(?1) AS s \
         LEFT JOIN events AS h ON h.rowid = ( \
             SELECT position FROM events WHERE stream_id = s.value \
             ORDER BY version DESC LIMIT 1) \
         UNION ALL \
         SELECT e.id, e.stream_id, e.version, e.position, e.recorded_at, e.hash \
         FROM events AS e WHERE e.id IN (SELECT value FROM json_each(?2))",
    )
    .bind(streams.to_string())
    .bind(ids.to_string())
    .fetch_all(&mut **tx)
    .await?;

    // SQLite stores ids as text.
    let rows = rows
        .into_iter()
        .map(|(id, stream, version, position, recorded_at, hash)| {
            let id = id
                .map(|id| {
                    Uuid::parse_str(&id)
                        .map_err(|e| StoreError::Corrupt(format!("stored event id {id:?}: {e}")))
                })
                .transpose()?;
            Ok((id, stream, version, position, recorded_at, hash))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    GroupFacts::from_rows(rows)
}
