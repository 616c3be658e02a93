//! The statements that write a notifications batch
//! ([`super::batch::Batch::flush`]): each ticket's compact state, the
//! notifications (inserted, or copied in during a rebuild's load) and each
//! inbox's count, in multi-row statements.

use std::collections::HashSet;

use sqlx::{PgConnection, Postgres, QueryBuilder, Sqlite};
use uuid::Uuid;

use crate::copy::CopyRows;
use crate::db::{ReadTx, RowPosition};
use crate::runner::Load;

/// Rows per multi-row insert: 14 values each, far below both databases'
/// parameter limits.
const ROWS_PER_INSERT: usize = 500;
/// Rows per multi-row upsert of the narrow tables (at most 4 values each).
const ROWS_PER_UPSERT: usize = 2_000;

/// One notification to insert.
pub(super) struct NewRow {
    pub id: Uuid,
    pub recipient: String,
    pub event_id: Uuid,
    pub position: RowPosition,
    pub ticket_id: Uuid,
    pub event_type: &'static str,
    pub title: String,
    pub body: String,
    pub require_interaction: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The contract's `NotificationReason` name.
    pub reason: &'static str,
    /// Every ticket it covers, `ticket_id` first.
    pub ticket_ids: Vec<Uuid>,
    /// Who caused it; `None` for the SLA process.
    pub actor: Option<String>,
}

impl NewRow {
    /// `ticket_ids` as the JSON array text both databases store.
    fn ticket_ids_json(&self) -> String {
        serde_json::to_string(&self.ticket_ids).unwrap_or_else(|_| "[]".into())
    }
}

/// Each ticket's compact state, `ROWS_PER_UPSERT` tickets per statement.
pub(super) async fn upsert_tickets(
    tx: &mut ReadTx,
    rows: &[(Uuid, serde_json::Value, RowPosition)],
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(ROWS_PER_UPSERT) {
        upsert_tickets_in_one(tx, chunk).await?;
    }
    Ok(())
}

/// Writes `rows`, in log order; returns those that were new.
pub(super) async fn insert_notifications(
    tx: &mut ReadTx,
    rows: Vec<NewRow>,
    load: Load,
) -> Result<Vec<NewRow>, sqlx::Error> {
    Ok(match (tx, load) {
        // No notification is there yet: every one is new, so none is
        // checked (PostgreSQL: nor inserted, but copied).
        (ReadTx::Postgres(pg), Load::Bulk) => {
            copy(pg, &rows).await?;
            rows
        }
        (tx, Load::Bulk) => {
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                insert(tx, chunk, Inserted::Unasked).await?;
            }
            rows
        }
        (tx, Load::Apply) => {
            let mut inserted = HashSet::new();
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                inserted.extend(insert(tx, chunk, Inserted::Returned).await?);
            }
            rows.into_iter()
                .filter(|row| inserted.contains(&row.id))
                .collect()
        }
    })
}

/// Raises each recipient's count (each recipient once in `counts`),
/// `ROWS_PER_UPSERT` recipients per statement.
pub(super) async fn raise_counts(
    tx: &mut ReadTx,
    counts: &[(&str, i64)],
) -> Result<(), sqlx::Error> {
    for chunk in counts.chunks(ROWS_PER_UPSERT) {
        raise_counts_in_one(tx, chunk).await?;
    }
    Ok(())
}

const UPSERT_TICKETS_HEAD: &str =
    "INSERT INTO notification_tickets (ticket_id, state, position, prepare_offset) ";
const UPSERT_TICKETS_TAIL: &str = " ON CONFLICT (ticket_id) DO UPDATE SET \
    state = excluded.state, position = excluded.position, \
    prepare_offset = excluded.prepare_offset";

/// Each ticket's compact state, in one statement.
async fn upsert_tickets_in_one(
    tx: &mut ReadTx,
    rows: &[(Uuid, serde_json::Value, RowPosition)],
) -> Result<(), sqlx::Error> {
    match tx {
        ReadTx::Sqlite(tx) => {
            let mut builder = QueryBuilder::<Sqlite>::new(UPSERT_TICKETS_HEAD);
            builder.push_values(rows, |mut b, (id, state, at)| {
                b.push_bind(id.to_string())
                    .push_bind(state.to_string())
                    .push_bind(at.position)
                    .push_bind(at.prepare_offset);
            });
            builder.push(UPSERT_TICKETS_TAIL);
            builder.build().execute(&mut **tx).await?;
        }
        ReadTx::Postgres(tx) => {
            let mut builder = QueryBuilder::<Postgres>::new(UPSERT_TICKETS_HEAD);
            builder.push_values(rows, |mut b, (id, state, at)| {
                b.push_bind(*id)
                    .push_bind(state.clone())
                    .push_bind(at.position)
                    .push_bind(at.prepare_offset);
            });
            builder.push(UPSERT_TICKETS_TAIL);
            builder.build().execute(&mut **tx).await?;
        }
    }
    Ok(())
}

const RAISE_COUNTS_HEAD: &str = "INSERT INTO notification_counts (recipient, total) ";
const RAISE_COUNTS_TAIL: &str = " ON CONFLICT (recipient) DO UPDATE \
    SET total = notification_counts.total + excluded.total";

/// Raises each recipient's count (each recipient once in `counts`), in
/// one statement.
async fn raise_counts_in_one(tx: &mut ReadTx, counts: &[(&str, i64)]) -> Result<(), sqlx::Error> {
    match tx {
        ReadTx::Sqlite(tx) => {
            let mut builder = QueryBuilder::<Sqlite>::new(RAISE_COUNTS_HEAD);
            builder.push_values(counts, |mut b, (recipient, n)| {
                b.push_bind(recipient.to_string()).push_bind(*n);
            });
            builder.push(RAISE_COUNTS_TAIL);
            builder.build().execute(&mut **tx).await?;
        }
        ReadTx::Postgres(tx) => {
            let mut builder = QueryBuilder::<Postgres>::new(RAISE_COUNTS_HEAD);
            builder.push_values(counts, |mut b, (recipient, n)| {
                b.push_bind(recipient.to_string()).push_bind(*n);
            });
            builder.push(RAISE_COUNTS_TAIL);
            builder.build().execute(&mut **tx).await?;
        }
    }
    Ok(())
}

const INSERT_HEAD: &str = "INSERT INTO notifications (id, recipient, event_id, position, \
    ticket_id, event_type, title, body, require_interaction, created_at, prepare_offset, \
    reason, ticket_ids, actor) ";
/// No conflict target: a notification already there conflicts on both its id
/// and its (recipient, position) (the id is made of the event's id and the
/// recipient), and a rebuild loads the table before building either index
/// ([`crate::BulkLoad::insert_only_tables`]), which a named target would
/// need.
const INSERT_TAIL: &str = " ON CONFLICT DO NOTHING";

/// Whether [`insert`] asks which rows were new.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Inserted {
    /// `RETURNING id`: the ids of the rows that were not there yet.
    Returned,
    /// Nothing returned (a load into an empty table: every row is new).
    Unasked,
}

/// [`Load::Bulk`]: the columns in `INSERT_HEAD`'s order.
const COPY: &str = "COPY notifications (id, recipient, event_id, position, ticket_id, \
    event_type, title, body, require_interaction, created_at, prepare_offset, \
    reason, ticket_ids, actor) FROM STDIN (FORMAT binary)";

/// Copies `rows` in, as `insert` would insert them into an empty table.
async fn copy(conn: &mut PgConnection, rows: &[NewRow]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut copy = CopyRows::new(14);
    for r in rows {
        copy.row()
            .uuid(r.id)
            .text(&r.recipient)?
            .uuid(r.event_id)
            .int8(r.position.position)
            .uuid(r.ticket_id)
            .text(r.event_type)?
            .text(&r.title)?
            .text(&r.body)?
            .bool(r.require_interaction)
            .time(r.created_at)?
            .int8(r.position.prepare_offset)
            .text(r.reason)?
            .jsonb(&r.ticket_ids_json())?
            .opt_text(r.actor.as_deref())?;
    }
    copy.copy(conn, COPY).await?;
    Ok(())
}

/// Inserts `rows`; the ids of those that were not there yet, if asked
/// (otherwise none).
async fn insert(
    tx: &mut ReadTx,
    rows: &[NewRow],
    asked: Inserted,
) -> Result<Vec<Uuid>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(vec![]);
    }
    match tx {
        ReadTx::Sqlite(tx) => {
            // Times as the other SQLite writers store them (nine digits).
            let mut builder = QueryBuilder::<Sqlite>::new(INSERT_HEAD);
            builder.push_values(rows, |mut b, r| {
                b.push_bind(r.id.to_string())
                    .push_bind(r.recipient.clone())
                    .push_bind(r.event_id.to_string())
                    .push_bind(r.position.position)
                    .push_bind(r.ticket_id.to_string())
                    .push_bind(r.event_type)
                    .push_bind(r.title.clone())
                    .push_bind(r.body.clone())
                    .push_bind(r.require_interaction)
                    .push_bind(crate::bind::sqlite_time(r.created_at))
                    .push_bind(r.position.prepare_offset)
                    .push_bind(r.reason)
                    .push_bind(r.ticket_ids_json())
                    .push_bind(r.actor.clone());
            });
            builder.push(INSERT_TAIL);
            if asked == Inserted::Unasked {
                builder.build().execute(&mut **tx).await?;
                return Ok(vec![]);
            }
            builder.push(" RETURNING id");
            let ids: Vec<String> = builder.build_query_scalar().fetch_all(&mut **tx).await?;
            ids.iter()
                .map(|id| {
                    Uuid::parse_str(id).map_err(|e| sqlx::Error::ColumnDecode {
                        index: "id".into(),
                        source: e.into(),
                    })
                })
                .collect()
        }
        ReadTx::Postgres(tx) => {
            let mut builder = QueryBuilder::<Postgres>::new(INSERT_HEAD);
            builder.push_values(rows, |mut b, r| {
                b.push_bind(r.id)
                    .push_bind(r.recipient.clone())
                    .push_bind(r.event_id)
                    .push_bind(r.position.position)
                    .push_bind(r.ticket_id)
                    .push_bind(r.event_type)
                    .push_bind(r.title.clone())
                    .push_bind(r.body.clone())
                    .push_bind(r.require_interaction)
                    .push_bind(r.created_at)
                    .push_bind(r.position.prepare_offset)
                    .push_bind(r.reason)
                    .push_bind(sqlx::types::Json(&r.ticket_ids))
                    .push_bind(r.actor.clone());
            });
            builder.push(INSERT_TAIL);
            if asked == Inserted::Unasked {
                builder.build().execute(&mut **tx).await?;
                return Ok(vec![]);
            }
            builder.push(" RETURNING id");
            builder.build_query_scalar().fetch_all(&mut **tx).await
        }
    }
}
