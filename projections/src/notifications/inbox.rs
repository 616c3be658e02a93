//! Reading an inbox and marking notifications read.
//!
//! Marking read is a user's action on the read model, not an event: it
//! writes `notification_reads` and `notification_read_counts`, which no
//! projection writes and a rebuild leaves alone. Notification ids are
//! deterministic, so the flags still apply to the rebuilt notifications.
//! Unread counts are `notification_counts.total - notification_read_counts.read_count`:
//! two primary-key lookups, however large the inbox.

use chrono::{DateTime, Utc};
use store::Position;
use uuid::Uuid;

use crate::bind::{execute, fetch_db, Arg};
use crate::db::{ReadDb, RowPosition};
use crate::error::QueryError;

/// The contract's `Notification`.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: Uuid,
    pub recipient: String,
    /// The contract's `SupportTicketEventType` name, e.g. `ASSIGNED`.
    pub event_type: String,
    pub title: String,
    pub body: String,
    pub ticket_id: Uuid,
    /// Where the web app shows the ticket, `/support/tickets/<ticket id>`,
    /// and the tag that lets a browser fold notifications of one ticket
    /// together, `ticket-<ticket id>`: both made from the ticket's id when
    /// read, not stored.
    pub url: String,
    pub tag: String,
    pub require_interaction: bool,
    pub read: bool,
    pub created_at: DateTime<Utc>,
    /// Log position of the event; the paging cursor is its
    /// [`Position::to_cursor`] text (`"42"` on the SQL stores).
    pub position: Position,
}

impl Notification {
    pub fn cursor(&self) -> String {
        self.position.to_cursor()
    }
}

/// One page of an inbox, newest first: the contract's `NotificationConnection`.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
    /// Unread notifications in the whole inbox (not only this page).
    pub unread_count: i64,
}

const IS_READ: &str = "EXISTS (SELECT 1 FROM notification_reads r \
    WHERE r.recipient = n.recipient AND r.notification_id = n.id)";

/// Up to `first` notifications of `user` older than the cursor `after`
/// (newest first), optionally only unread ones. Keyset paging on
/// `(recipient, position, prepare_offset)`.
#[tracing::instrument(name = "notifications.page", skip(db), err)]
pub async fn notifications(
    db: &ReadDb,
    user: &str,
    unread_only: bool,
    first: usize,
    after: Option<&str>,
) -> Result<NotificationPage, QueryError> {
    let before = match after {
        None => RowPosition {
            position: i64::MAX,
            prepare_offset: i64::MAX,
        },
        Some(cursor) => cursor
            .parse::<Position>()
            .ok()
            .and_then(|p| RowPosition::of(p).ok())
            .ok_or_else(|| QueryError::InvalidCursor(cursor.to_string()))?,
    };
    let limit = i64::try_from(first.min(1000)).unwrap_or(1000) + 1;
    let sql = format!(
        "SELECT n.id, n.recipient, n.event_type, n.title, n.body, n.ticket_id, \
         n.require_interaction, n.created_at, n.position, n.prepare_offset, {IS_READ} AS is_read \
         FROM notifications n WHERE n.recipient = $1 \
         AND (n.position, n.prepare_offset) < ($2, $3) {} \
         ORDER BY n.position DESC, n.prepare_offset DESC LIMIT $4",
        if unread_only {
            format!("AND NOT {IS_READ}")
        } else {
            String::new()
        }
    );
    let rows = fetch_db(
        db,
        &sql,
        &[
            Arg::Text(user),
            Arg::Int(before.position),
            Arg::Int(before.prepare_offset),
            Arg::Int(limit),
        ],
    )
    .await?;
    let mut items = rows
        .iter()
        .map(notification_of)
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let has_next_page = items.len() > first;
    items.truncate(first);
    Ok(NotificationPage {
        end_cursor: items.last().map(Notification::cursor),
        has_next_page,
        unread_count: unread_count(db, user).await?,
        items,
    })
}

/// The notification `id` in `user`'s inbox, if it is there: one primary-key
/// lookup, for pushing a notification just committed to a live subscriber
/// (the inbox's pages may have moved on by the time it is read).
#[tracing::instrument(name = "notifications.get", skip(db), err)]
pub async fn notification(
    db: &ReadDb,
    user: &str,
    id: Uuid,
) -> Result<Option<Notification>, QueryError> {
    let sql = format!(
        "SELECT n.id, n.recipient, n.event_type, n.title, n.body, n.ticket_id, \
         n.require_interaction, n.created_at, n.position, n.prepare_offset, {IS_READ} AS is_read \
         FROM notifications n WHERE n.id = $1 AND n.recipient = $2"
    );
    let rows = fetch_db(db, &sql, &[Arg::Id(id), Arg::Text(user)]).await?;
    Ok(rows.first().map(notification_of).transpose()?)
}

/// One row of the `notifications` queries above.
fn notification_of(row: &crate::bind::AnyRow) -> Result<Notification, sqlx::Error> {
    let ticket_id = row.id("ticket_id")?;
    Ok(Notification {
        id: row.id("id")?,
        recipient: row.text("recipient")?,
        event_type: row.text("event_type")?,
        title: row.text("title")?,
        body: row.text("body")?,
        ticket_id,
        url: format!("/support/tickets/{ticket_id}"),
        tag: format!("ticket-{ticket_id}"),
        require_interaction: row.bool("require_interaction")?,
        read: row.bool("is_read")?,
        created_at: row.time("created_at")?,
        position: RowPosition {
            position: row.int("position")?,
            prepare_offset: row.int("prepare_offset")?,
        }
        .to_position()
        .ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "position".into(),
            source: "not a log position".into(),
        })?,
    })
}

/// Unread notifications of `user`.
pub async fn unread_count(db: &ReadDb, user: &str) -> Result<i64, QueryError> {
    let rows = fetch_db(
        db,
        "SELECT COALESCE((SELECT total FROM notification_counts WHERE recipient = $1), 0) \
         - COALESCE((SELECT read_count FROM notification_read_counts WHERE recipient = $1), 0) \
         AS unread",
        &[Arg::Text(user)],
    )
    .await?;
    Ok(rows
        .first()
        .map(|r| r.int("unread"))
        .transpose()?
        .unwrap_or(0)
        .max(0))
}

/// Marks `ids` of `user`'s inbox read; ids of other inboxes or unknown ones
/// are ignored. Returns how many were unread.
#[tracing::instrument(name = "notifications.mark_read", skip(db, ids), err)]
pub async fn mark_read(db: &ReadDb, user: &str, ids: &[Uuid]) -> Result<u64, QueryError> {
    let now = Utc::now();
    let mut tx = db.begin().await?;
    let mut marked = 0;
    for id in ids {
        marked += execute(
            &mut tx,
            "INSERT INTO notification_reads (recipient, notification_id, read_at) \
             SELECT recipient, id, $3 FROM notifications WHERE recipient = $1 AND id = $2 \
             ON CONFLICT (recipient, notification_id) DO NOTHING",
            &[Arg::Text(user), Arg::Id(*id), Arg::Time(now)],
        )
        .await?;
    }
    count_reads(&mut tx, user, i64::try_from(marked).unwrap_or(i64::MAX)).await?;
    tx.commit().await?;
    Ok(marked)
}

/// Marks `ids` of `user`'s inbox unread again; ids of other inboxes, unknown
/// ones and unread ones change nothing. Returns how many were read.
#[tracing::instrument(name = "notifications.mark_unread", skip(db, ids), err)]
pub async fn mark_unread(db: &ReadDb, user: &str, ids: &[Uuid]) -> Result<u64, QueryError> {
    let mut tx = db.begin().await?;
    let mut unmarked = 0;
    for id in ids {
        unmarked += execute(
            &mut tx,
            "DELETE FROM notification_reads WHERE recipient = $1 AND notification_id = $2",
            &[Arg::Text(user), Arg::Id(*id)],
        )
        .await?;
    }
    count_reads(&mut tx, user, -i64::try_from(unmarked).unwrap_or(i64::MAX)).await?;
    tx.commit().await?;
    Ok(unmarked)
}

/// Marks every notification of `user` read. Returns how many were unread.
#[tracing::instrument(name = "notifications.mark_all_read", skip(db), err)]
pub async fn mark_all_read(db: &ReadDb, user: &str) -> Result<u64, QueryError> {
    let now = Utc::now();
    let mut tx = db.begin().await?;
    let marked = execute(
        &mut tx,
        "INSERT INTO notification_reads (recipient, notification_id, read_at) \
         SELECT recipient, id, $2 FROM notifications WHERE recipient = $1 \
         ON CONFLICT (recipient, notification_id) DO NOTHING",
        &[Arg::Text(user), Arg::Time(now)],
    )
    .await?;
    count_reads(&mut tx, user, i64::try_from(marked).unwrap_or(i64::MAX)).await?;
    tx.commit().await?;
    Ok(marked)
}

/// Adds `delta` (negative when marked unread) to `user`'s read count.
async fn count_reads(
    tx: &mut crate::db::ReadTx,
    user: &str,
    delta: i64,
) -> Result<(), sqlx::Error> {
    if delta == 0 {
        return Ok(());
    }
    let marked = delta;
    execute(
        tx,
        "INSERT INTO notification_read_counts (recipient, read_count) VALUES ($1, $2) \
         ON CONFLICT (recipient) DO UPDATE \
         SET read_count = notification_read_counts.read_count + excluded.read_count",
        &[Arg::Text(user), Arg::Int(marked)],
    )
    .await?;
    Ok(())
}
