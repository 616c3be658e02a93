//! The tickets projection's writes on SQLite: multi-row `INSERT ... VALUES`
//! statements (uuids, times and JSON as text; times with nine fraction
//! digits, so text order is time order).
//!
//! Each statement is one trip to sqlx's SQLite worker thread, and that
//! hand-over, not SQLite itself, is what a statement per row would spend
//! its time on.

use sqlx::query_builder::Separated;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::sql::{Statements, ACTIVITY, ATTACHMENTS, COMMENTS, SETS, TICKETS};
use super::writes::{split, Writes};
use super::TicketRow;
use crate::bind::sqlite_time as time;

/// SQLite allows 32,766 bound values per statement (since 3.32); rows per
/// statement stay well below that and keep each statement's text small.
const MAX_PARAMS: usize = 8_000;

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

/// Inserts `rows` with `table`'s statement.
async fn insert<T>(
    conn: &mut SqliteConnection,
    table: &Statements,
    rows: &[T],
    push: impl FnMut(&mut Separated<'_, '_, Sqlite, &'static str>, &T),
) -> Result<(), sqlx::Error> {
    insert_rows(
        conn,
        &table.values_head,
        &table.tail,
        table.width,
        rows,
        push,
    )
    .await
}

/// Each ticket's row, unless it holds a later event already.
pub(super) async fn write_tickets(
    conn: &mut SqliteConnection,
    rows: &[TicketRow<'_>],
) -> Result<(), sqlx::Error> {
    insert(conn, &TICKETS, rows, |b, r| {
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
    })
    .await
}

/// The activity and child rows of a batch.
pub(super) async fn write(conn: &mut SqliteConnection, w: &Writes) -> Result<(), sqlx::Error> {
    insert(conn, &ACTIVITY, &w.activity, |b, a| {
        b.push_bind(a.position.position)
            .push_bind(a.position.prepare_offset)
            .push_bind(a.event_id.to_string())
            .push_bind(a.ticket_id.to_string())
            .push_bind(a.version)
            .push_bind(a.event_type)
            .push_bind(a.actor.clone())
            .push_bind(time(a.occurred_at))
            .push_bind(a.changes.clone());
    })
    .await?;
    insert(conn, &COMMENTS, &w.comments, |b, c| {
        b.push_bind(c.ticket_id.to_string())
            .push_bind(c.item.id.to_string())
            .push_bind(c.item.body.clone())
            .push_bind(c.item.internal)
            .push_bind(c.item.author.clone())
            .push_bind(time(c.item.created_at))
            .push_bind(c.position.position)
            .push_bind(c.position.prepare_offset);
    })
    .await?;
    insert(conn, &ATTACHMENTS, &w.attachments, |b, a| {
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
    })
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
    let sets = [
        (
            pairs(split(&w.watchers, true)),
            pairs(split(&w.watchers, false)),
        ),
        (pairs(split(&w.tags, true)), pairs(split(&w.tags, false))),
        (relations(true), relations(false)),
    ];
    for ((table, column, _), (present, absent)) in SETS.into_iter().zip(sets) {
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
