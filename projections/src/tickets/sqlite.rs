//! The tickets projection's reads and writes on SQLite: uuids, times and JSON
//! as text (times with nine fraction digits, so text order is time order).
//!
//! A batch is written with multi-row statements: each statement is one trip
//! to sqlx's SQLite worker thread, and that hand-over, not SQLite itself, is
//! what a statement per row would spend its time on.

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::query_builder::Separated;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::writes::{split, Writes};
use super::{sql, StoredRow, TicketRow};
use crate::db::RowPosition;

/// SQLite allows 32,766 bound values per statement (since 3.32); rows per
/// statement stay well below that and keep each statement's text small.
const MAX_PARAMS: usize = 8_000;

/// The stored rows of those of `ids` that exist.
pub(super) async fn load(
    conn: &mut SqliteConnection,
    ids: &[Uuid],
) -> Result<Vec<StoredRow>, sqlx::Error> {
    // One JSON array parameter: the statement's text is the same for any
    // number of ids, so it is prepared once.
    let ids = serde_json::Value::from(ids.iter().map(Uuid::to_string).collect::<Vec<_>>());
    let rows: Vec<(String, i64, i64, String)> = sqlx::query_as(sql::LOAD_SQLITE)
        .bind(ids.to_string())
        .fetch_all(conn)
        .await?;
    rows.into_iter()
        .map(|(id, position, prepare_offset, state)| {
            let id = Uuid::parse_str(&id).map_err(|e| sqlx::Error::ColumnDecode {
                index: "id".into(),
                source: e.into(),
            })?;
            Ok(StoredRow {
                id,
                position: RowPosition {
                    position,
                    prepare_offset,
                },
                state,
            })
        })
        .collect()
}

/// Runs `head VALUES (...), (...) tail` over `rows`, as many statements as
/// the parameter limit needs.
async fn insert_rows<T>(
    conn: &mut SqliteConnection,
    head: &str,
    tail: &str,
    columns: usize,
    rows: &[T],
    mut push: impl FnMut(&mut Separated<'_, '_, Sqlite, &'static str>, &T),
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks((MAX_PARAMS / columns).max(1)) {
        let mut query = QueryBuilder::<Sqlite>::new(head);
        query.push_values(chunk, |mut b, row| push(&mut b, row));
        query.push(tail);
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Each ticket's row, unless it holds a later event already.
pub(super) async fn write_tickets(
    conn: &mut SqliteConnection,
    rows: &[TicketRow<'_>],
) -> Result<(), sqlx::Error> {
    insert_rows(
        conn,
        sql::UPSERT_TICKET_HEAD,
        sql::UPSERT_TICKET_TAIL,
        18,
        rows,
        |b, r| {
            let t = r.ticket;
            b.push_bind(t.id.to_string())
                .push_bind(t.reference.clone())
                .push_bind(t.request.clone())
                .push_bind(t.description.clone())
                .push_bind(t.status.as_str())
                .push_bind(t.priority.as_str())
                .push_bind(t.queue.clone())
                .push_bind(t.created_by.clone())
                .push_bind(t.assigned_to.clone())
                .push_bind(time(t.created_at))
                .push_bind(time(t.updated_at))
                .push_bind(t.first_response_at.map(time))
                .push_bind(t.resolved_at.map(time))
                .push_bind(t.deleted)
                .push_bind(super::writes::version(t.version))
                .push_bind(r.state.clone())
                .push_bind(r.position.position)
                .push_bind(r.position.prepare_offset);
        },
    )
    .await
}

/// The activity and child rows of a batch.
pub(super) async fn write(conn: &mut SqliteConnection, w: &Writes) -> Result<(), sqlx::Error> {
    insert_rows(
        conn,
        sql::INSERT_ACTIVITY_HEAD,
        sql::INSERT_ACTIVITY_TAIL,
        9,
        &w.activity,
        |b, a| {
            b.push_bind(a.position.position)
                .push_bind(a.position.prepare_offset)
                .push_bind(a.event_id.to_string())
                .push_bind(a.ticket_id.to_string())
                .push_bind(a.version)
                .push_bind(a.event_type)
                .push_bind(a.actor.clone())
                .push_bind(time(a.occurred_at))
                .push_bind(a.changes.clone());
        },
    )
    .await?;
    insert_rows(
        conn,
        sql::INSERT_COMMENT_HEAD,
        sql::INSERT_COMMENT_TAIL,
        8,
        &w.comments,
        |b, c| {
            b.push_bind(c.ticket_id.to_string())
                .push_bind(c.item.id.to_string())
                .push_bind(c.item.body.clone())
                .push_bind(c.item.internal)
                .push_bind(c.item.author.clone())
                .push_bind(time(c.item.created_at))
                .push_bind(c.position.position)
                .push_bind(c.position.prepare_offset);
        },
    )
    .await?;
    insert_rows(
        conn,
        sql::INSERT_ATTACHMENT_HEAD,
        sql::INSERT_ATTACHMENT_TAIL,
        10,
        &w.attachments,
        |b, a| {
            b.push_bind(a.ticket_id.to_string())
                .push_bind(a.item.id.to_string())
                .push_bind(a.item.name.clone())
                .push_bind(a.item.url.clone())
                .push_bind(a.item.mime_type.clone())
                .push_bind(a.item.size)
                .push_bind(a.item.added_by.clone())
                .push_bind(time(a.item.added_at))
                .push_bind(a.position.position)
                .push_bind(a.position.prepare_offset);
        },
    )
    .await?;
    let pairs = |keys: Vec<(Uuid, String)>| -> Vec<(String, String)> {
        keys.into_iter().map(|(t, k)| (t.to_string(), k)).collect()
    };
    let relations = |present: bool| -> Vec<(String, String)> {
        split(&w.relations, present)
            .into_iter()
            .map(|(t, r)| (t.to_string(), r.to_string()))
            .collect()
    };
    for (table, column, present, absent) in [
        (
            "ticket_watchers",
            "user_id",
            pairs(split(&w.watchers, true)),
            pairs(split(&w.watchers, false)),
        ),
        (
            "ticket_tags",
            "tag",
            pairs(split(&w.tags, true)),
            pairs(split(&w.tags, false)),
        ),
        (
            "ticket_relations",
            "related_id",
            relations(true),
            relations(false),
        ),
    ] {
        let delete = format!("DELETE FROM {table} WHERE (ticket_id, {column}) IN (");
        insert_rows(conn, &delete, ")", 2, &absent, |b, (t, k)| {
            b.push_bind(t.clone()).push_bind(k.clone());
        })
        .await?;
        let insert = format!("INSERT INTO {table} (ticket_id, {column}) ");
        let tail = format!(" ON CONFLICT (ticket_id, {column}) DO NOTHING");
        insert_rows(conn, &insert, &tail, 2, &present, |b, (t, k)| {
            b.push_bind(t.clone()).push_bind(k.clone());
        })
        .await?;
    }
    Ok(())
}

/// RFC 3339 UTC with exactly nine fraction digits: fixed width, so comparing
/// the text compares the times (keyset pagination relies on it).
pub(crate) fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}
