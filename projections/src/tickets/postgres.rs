//! The tickets projection's writes on PostgreSQL: uuid, timestamptz, jsonb.

use domain::Ticket;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{sql, TicketWrite};
use crate::db::RowPosition;
use crate::error::ApplyError;

pub(super) async fn load(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<(RowPosition, serde_json::Value)>, ApplyError> {
    let row: Option<(i64, i64, serde_json::Value)> = sqlx::query_as(sql::LOAD)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|(position, prepare_offset, state)| {
        let position = RowPosition {
            position,
            prepare_offset,
        };
        (position, state)
    }))
}

/// The ticket's row, unless it holds a later event already.
pub(super) async fn write_ticket(
    conn: &mut PgConnection,
    t: &Ticket,
    state: &serde_json::Value,
    position: RowPosition,
) -> Result<(), sqlx::Error> {
    sqlx::query(sql::UPSERT_TICKET)
        .bind(t.id)
        .bind(&t.reference)
        .bind(&t.request)
        .bind(&t.description)
        .bind(t.status.as_str())
        .bind(t.priority.as_str())
        .bind(&t.queue)
        .bind(&t.created_by)
        .bind(&t.assigned_to)
        .bind(t.created_at)
        .bind(t.updated_at)
        .bind(t.first_response_at)
        .bind(t.resolved_at)
        .bind(t.deleted)
        .bind(version(t.version))
        .bind(state)
        .bind(position.position)
        .bind(position.prepare_offset)
        .execute(conn)
        .await?;
    Ok(())
}

/// The activity and child rows of one event.
pub(super) async fn write_event(
    conn: &mut PgConnection,
    w: &TicketWrite<'_>,
) -> Result<(), sqlx::Error> {
    let t = w.ticket;
    sqlx::query(sql::INSERT_ACTIVITY)
        .bind(w.position.position)
        .bind(w.position.prepare_offset)
        .bind(w.event_id)
        .bind(t.id)
        .bind(version(t.version))
        .bind(w.event_type)
        .bind(w.actor)
        .bind(w.occurred_at)
        .bind(&w.changes)
        .execute(&mut *conn)
        .await?;
    for c in &w.comments_added {
        sqlx::query(sql::INSERT_COMMENT)
            .bind(t.id)
            .bind(c.id)
            .bind(&c.body)
            .bind(c.internal)
            .bind(&c.author)
            .bind(c.created_at)
            .bind(w.position.position)
            .bind(w.position.prepare_offset)
            .execute(&mut *conn)
            .await?;
    }
    for a in &w.attachments_added {
        sqlx::query(sql::INSERT_ATTACHMENT)
            .bind(t.id)
            .bind(a.id)
            .bind(&a.name)
            .bind(&a.url)
            .bind(&a.mime_type)
            .bind(a.size)
            .bind(&a.added_by)
            .bind(a.added_at)
            .bind(w.position.position)
            .bind(w.position.prepare_offset)
            .execute(&mut *conn)
            .await?;
    }
    for (query, values) in [
        (sql::INSERT_WATCHER, &w.watchers_added),
        (sql::DELETE_WATCHER, &w.watchers_removed),
        (sql::INSERT_TAG, &w.tags_added),
        (sql::DELETE_TAG, &w.tags_removed),
    ] {
        for value in values {
            sqlx::query(query)
                .bind(t.id)
                .bind(*value)
                .execute(&mut *conn)
                .await?;
        }
    }
    for (query, values) in [
        (sql::INSERT_RELATION, &w.related_added),
        (sql::DELETE_RELATION, &w.related_removed),
    ] {
        for value in values {
            sqlx::query(query)
                .bind(t.id)
                .bind(*value)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// Stream versions are far below `i64::MAX`; saturate rather than wrap.
fn version(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
