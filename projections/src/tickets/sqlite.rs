//! The tickets projection's writes on SQLite: uuids, times and JSON as text
//! (times with nine fraction digits, so text order is time order).

use chrono::{DateTime, SecondsFormat, Utc};
use domain::Ticket;
use sqlx::SqliteConnection;
use uuid::Uuid;

use super::{sql, TicketWrite};
use crate::db::RowPosition;
use crate::error::ApplyError;

pub(super) async fn load(
    conn: &mut SqliteConnection,
    id: Uuid,
) -> Result<Option<(RowPosition, serde_json::Value)>, ApplyError> {
    let row: Option<(i64, i64, String)> = sqlx::query_as(sql::LOAD)
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    row.map(|(position, prepare_offset, state)| {
        let position = RowPosition {
            position,
            prepare_offset,
        };
        serde_json::from_str(&state)
            .map(|state| (position, state))
            .map_err(|e| {
                ApplyError::Poison(format!("stored state of ticket {id} is not JSON: {e}"))
            })
    })
    .transpose()
}

/// The ticket's row, unless it holds a later event already.
pub(super) async fn write_ticket(
    conn: &mut SqliteConnection,
    t: &Ticket,
    state: &serde_json::Value,
    position: RowPosition,
) -> Result<(), sqlx::Error> {
    let id = t.id.to_string();
    sqlx::query(sql::UPSERT_TICKET)
        .bind(&id)
        .bind(&t.reference)
        .bind(&t.request)
        .bind(&t.description)
        .bind(t.status.as_str())
        .bind(t.priority.as_str())
        .bind(&t.queue)
        .bind(&t.created_by)
        .bind(&t.assigned_to)
        .bind(time(t.created_at))
        .bind(time(t.updated_at))
        .bind(t.first_response_at.map(time))
        .bind(t.resolved_at.map(time))
        .bind(t.deleted)
        .bind(version(t.version))
        .bind(state.to_string())
        .bind(position.position)
        .bind(position.prepare_offset)
        .execute(conn)
        .await?;
    Ok(())
}

/// The activity and child rows of one event.
pub(super) async fn write_event(
    conn: &mut SqliteConnection,
    w: &TicketWrite<'_>,
) -> Result<(), sqlx::Error> {
    let t = w.ticket;
    let id = t.id.to_string();
    sqlx::query(sql::INSERT_ACTIVITY)
        .bind(w.position.position)
        .bind(w.position.prepare_offset)
        .bind(w.event_id.to_string())
        .bind(&id)
        .bind(version(t.version))
        .bind(w.event_type)
        .bind(w.actor)
        .bind(time(w.occurred_at))
        .bind(w.changes.to_string())
        .execute(&mut *conn)
        .await?;
    for c in &w.comments_added {
        sqlx::query(sql::INSERT_COMMENT)
            .bind(&id)
            .bind(c.id.to_string())
            .bind(&c.body)
            .bind(c.internal)
            .bind(&c.author)
            .bind(time(c.created_at))
            .bind(w.position.position)
            .bind(w.position.prepare_offset)
            .execute(&mut *conn)
            .await?;
    }
    for a in &w.attachments_added {
        sqlx::query(sql::INSERT_ATTACHMENT)
            .bind(&id)
            .bind(a.id.to_string())
            .bind(&a.name)
            .bind(&a.url)
            .bind(&a.mime_type)
            .bind(a.size)
            .bind(&a.added_by)
            .bind(time(a.added_at))
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
                .bind(&id)
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
                .bind(&id)
                .bind(value.to_string())
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

/// RFC 3339 UTC with exactly nine fraction digits: fixed width, so comparing
/// the text compares the times (keyset pagination relies on it).
pub(crate) fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}
