//! The tickets projection's writes on PostgreSQL (uuid, timestamptz, jsonb):
//! one statement per table, its rows bound as one array per column and
//! spread by `UNNEST`, so a batch is one round trip per table and a
//! statement text that never changes (prepared once per connection); a bulk
//! load copies the activity rows in with binary `COPY`.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::sql::{ACTIVITY, ATTACHMENTS, COMMENTS, SETS, TICKETS};
use super::writes::{split, Writes};
use super::TicketRow;
use crate::copy::CopyRows;
use crate::runner::Load;

/// Each ticket's row, unless it holds a later event already.
pub(super) async fn write_tickets(
    conn: &mut PgConnection,
    rows: &[TicketRow<'_>],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&TicketRow<'_>) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let opt = |f: fn(&TicketRow<'_>) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    let times = |f: fn(&TicketRow<'_>) -> DateTime<Utc>| rows.iter().map(f).collect::<Vec<_>>();
    let opt_times =
        |f: fn(&TicketRow<'_>) -> Option<DateTime<Utc>>| rows.iter().map(f).collect::<Vec<_>>();
    let ints = |f: fn(&TicketRow<'_>) -> i64| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query(&TICKETS.unnest)
        .bind(rows.iter().map(|r| r.ticket.id).collect::<Vec<_>>())
        .bind(col(|r| r.ticket.reference.clone()))
        .bind(col(|r| r.ticket.request.clone()))
        .bind(opt(|r| r.ticket.description.clone()))
        .bind(col(|r| r.ticket.status.as_str().to_string()))
        .bind(col(|r| r.ticket.priority.as_str().to_string()))
        .bind(col(|r| r.ticket.queue.clone()))
        .bind(col(|r| r.ticket.created_by.clone()))
        .bind(opt(|r| r.ticket.assigned_to.clone()))
        .bind(times(|r| r.ticket.created_at))
        .bind(times(|r| r.ticket.updated_at))
        .bind(opt_times(|r| r.ticket.first_response_at))
        .bind(opt_times(|r| r.ticket.resolved_at))
        .bind(rows.iter().map(|r| r.ticket.deleted).collect::<Vec<_>>())
        .bind(ints(|r| super::writes::version(r.ticket.version)))
        .bind(col(|r| r.state.clone()))
        .bind(ints(|r| r.position.position))
        .bind(ints(|r| r.position.prepare_offset))
        .execute(conn)
        .await?;
    Ok(())
}

/// The activity and child rows of a batch.
pub(super) async fn write(
    conn: &mut PgConnection,
    w: &Writes,
    load: Load,
) -> Result<(), sqlx::Error> {
    if !w.activity.is_empty() && load == Load::Bulk {
        let mut rows = CopyRows::new(ACTIVITY.width as i16);
        for r in &w.activity {
            rows.row()
                .int8(r.position.position)
                .int8(r.position.prepare_offset)
                .uuid(r.event_id)
                .uuid(r.ticket_id)
                .int8(r.version)
                .text(r.event_type)?
                .text(&r.actor)?
                .time(r.occurred_at)?
                .jsonb(&r.changes)?;
        }
        rows.copy(&mut *conn, &ACTIVITY.copy).await?;
    } else if !w.activity.is_empty() {
        let a = &w.activity;
        sqlx::query(&ACTIVITY.unnest)
            .bind(a.iter().map(|r| r.position.position).collect::<Vec<_>>())
            .bind(
                a.iter()
                    .map(|r| r.position.prepare_offset)
                    .collect::<Vec<_>>(),
            )
            .bind(a.iter().map(|r| r.event_id).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.ticket_id).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.version).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.event_type).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.actor.as_str()).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.occurred_at).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.changes.as_str()).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
    }
    if !w.comments.is_empty() {
        let c = &w.comments;
        sqlx::query(&COMMENTS.unnest)
            .bind(c.iter().map(|r| r.ticket_id).collect::<Vec<_>>())
            .bind(c.iter().map(|r| r.item.id).collect::<Vec<_>>())
            .bind(c.iter().map(|r| r.item.body.as_str()).collect::<Vec<_>>())
            .bind(c.iter().map(|r| r.item.internal).collect::<Vec<_>>())
            .bind(c.iter().map(|r| r.item.author.as_str()).collect::<Vec<_>>())
            .bind(c.iter().map(|r| r.item.created_at).collect::<Vec<_>>())
            .bind(c.iter().map(|r| r.position.position).collect::<Vec<_>>())
            .bind(
                c.iter()
                    .map(|r| r.position.prepare_offset)
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *conn)
            .await?;
    }
    if !w.attachments.is_empty() {
        let a = &w.attachments;
        sqlx::query(&ATTACHMENTS.unnest)
            .bind(a.iter().map(|r| r.ticket_id).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.item.id).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.item.name.as_str()).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.item.url.as_str()).collect::<Vec<_>>())
            .bind(
                a.iter()
                    .map(|r| r.item.mime_type.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(a.iter().map(|r| r.item.size).collect::<Vec<_>>())
            .bind(
                a.iter()
                    .map(|r| r.item.added_by.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(a.iter().map(|r| r.item.added_at).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.position.position).collect::<Vec<_>>())
            .bind(
                a.iter()
                    .map(|r| r.position.prepare_offset)
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *conn)
            .await?;
    }
    let relations = |present| {
        split(&w.relations, present)
            .into_iter()
            .map(|(t, r)| (t, r.to_string()))
            .collect()
    };
    let sets = [
        (split(&w.watchers, true), split(&w.watchers, false)),
        (split(&w.tags, true), split(&w.tags, false)),
        (relations(true), relations(false)),
    ];
    for ((table, column, kind), (present, absent)) in SETS.into_iter().zip(sets) {
        pairs(&mut *conn, table, column, kind, present, absent).await?;
    }
    Ok(())
}

/// Deletes the `absent` `(ticket_id, column)` pairs of `table` and inserts
/// the `present` ones; `kind` is the column's type (its values are bound as
/// text and cast).
async fn pairs(
    conn: &mut PgConnection,
    table: &str,
    column: &str,
    kind: &str,
    present: Vec<(Uuid, String)>,
    absent: Vec<(Uuid, String)>,
) -> Result<(), sqlx::Error> {
    let columns =
        |keys: Vec<(Uuid, String)>| -> (Vec<Uuid>, Vec<String>) { keys.into_iter().unzip() };
    if !absent.is_empty() {
        let (tickets, keys) = columns(absent);
        sqlx::query(&format!(
            "DELETE FROM {table} t USING UNNEST($1::uuid[], $2::text[]) AS d(ticket_id, k) \
             WHERE t.ticket_id = d.ticket_id AND t.{column} = d.k::{kind}"
        ))
        .bind(tickets)
        .bind(keys)
        .execute(&mut *conn)
        .await?;
    }
    if !present.is_empty() {
        let (tickets, keys) = columns(present);
        sqlx::query(&format!(
            "INSERT INTO {table} (ticket_id, {column}) \
             SELECT ticket_id, k::{kind} FROM UNNEST($1::uuid[], $2::text[]) AS d(ticket_id, k) \
             ON CONFLICT (ticket_id, {column}) DO NOTHING"
        ))
        .bind(tickets)
        .bind(keys)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
