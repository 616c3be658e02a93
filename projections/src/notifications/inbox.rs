//! Reading an inbox, and marking notifications read, unread or deleted.
//!
//! Marking is a user's action on the read model, not an event: it writes
//! `notification_reads`, `notification_read_counts` and
//! `notification_deletions`, which no projection writes and a rebuild
//! leaves alone. Notification ids are deterministic, so the flags still
//! apply to the rebuilt notifications. A deleted notification is gone from
//! every query; it is also marked read, so unread counts stay
//! `notification_counts.total - notification_read_counts.read_count`: two
//! primary-key lookups, however large the inbox. Each marking that changes
//! something appends its row to the change feed ([`super::changes`]) in
//! its transaction, with the unread count after it.

use chrono::{DateTime, Utc};
use store::Position;
use uuid::Uuid;

use std::collections::HashMap;

use domain::notify::NotificationPreferences;

use super::changes::{self, ChangeKind, NewChange};
use crate::bind::{any_id, execute, fetch, fetch_db, Arg};
use crate::db::{ReadDb, ReadTx, RowPosition};
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
    /// The contract's `NotificationReason` name.
    pub reason: String,
    /// Every ticket it covers, `ticket_id` first.
    pub ticket_ids: Vec<Uuid>,
    /// Who caused it; `None` for the SLA process.
    pub actor: Option<String>,
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
const NOT_DELETED: &str = "NOT EXISTS (SELECT 1 FROM notification_deletions d \
    WHERE d.recipient = n.recipient AND d.notification_id = n.id)";
/// The columns [`notification_of`] reads.
const COLUMNS: &str = "n.id, n.recipient, n.event_type, n.title, n.body, n.ticket_id, \
    n.require_interaction, n.created_at, n.position, n.prepare_offset, n.reason, \
    n.ticket_ids, n.actor";

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
        "SELECT {COLUMNS}, {IS_READ} AS is_read \
         FROM notifications n WHERE n.recipient = $1 \
         AND (n.position, n.prepare_offset) < ($2, $3) AND {NOT_DELETED} {} \
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
        "SELECT {COLUMNS}, {IS_READ} AS is_read \
         FROM notifications n WHERE n.id = $1 AND n.recipient = $2 AND {NOT_DELETED}"
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
        reason: row.text("reason")?,
        ticket_ids: row.decode("ticket_ids")?,
        actor: row.opt_text("actor")?,
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
    let rows = fetch_db(db, UNREAD, &[Arg::Text(user)]).await?;
    Ok(unread_of(rows.first())?)
}

const UNREAD: &str =
    "SELECT COALESCE((SELECT total FROM notification_counts WHERE recipient = $1), 0) \
     - COALESCE((SELECT read_count FROM notification_read_counts WHERE recipient = $1), 0) \
     AS unread";

fn unread_of(row: Option<&crate::bind::AnyRow>) -> Result<i64, sqlx::Error> {
    Ok(row
        .map(|r| r.int("unread"))
        .transpose()?
        .unwrap_or(0)
        .max(0))
}

/// Each of `users`' unread count, as `tx` sees them.
pub(super) async fn unread_counts(
    tx: &mut ReadTx,
    users: &[String],
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let mut counts = HashMap::new();
    if users.is_empty() {
        return Ok(counts);
    }
    let sql = format!(
        "SELECT c.recipient, c.total - COALESCE(r.read_count, 0) AS unread \
         FROM notification_counts c \
         LEFT JOIN notification_read_counts r ON r.recipient = c.recipient \
         WHERE {}",
        any_id(tx, "c.recipient", 1)
    );
    for row in fetch(tx, &sql, &[Arg::Texts(users)]).await? {
        counts.insert(row.text("recipient")?, row.int("unread")?.max(0));
    }
    Ok(counts)
}

/// Which of `ids` are in `user`'s inbox and not deleted.
async fn own(tx: &mut ReadTx, user: &str, ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let sql = format!(
        "SELECT n.id FROM notifications n WHERE n.recipient = $1 AND {} AND {NOT_DELETED} \
         ORDER BY n.position, n.prepare_offset",
        any_id(tx, "n.id", 2)
    );
    fetch(tx, &sql, &[Arg::Text(user), Arg::Ids(ids)])
        .await?
        .iter()
        .map(|row| row.id("id"))
        .collect()
}

/// Marks `ids` of `user`'s inbox read (those of another inbox, unknown or
/// deleted ones change nothing). Returns the ids that were unread.
async fn read_in(tx: &mut ReadTx, user: &str, ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    let now = Utc::now();
    let mut marked = vec![];
    for id in ids {
        let inserted = execute(
            tx,
            "INSERT INTO notification_reads (recipient, notification_id, read_at) \
             VALUES ($1, $2, $3) ON CONFLICT (recipient, notification_id) DO NOTHING",
            &[Arg::Text(user), Arg::Id(*id), Arg::Time(now)],
        )
        .await?;
        if inserted > 0 {
            marked.push(*id);
        }
    }
    count_reads(tx, user, i64::try_from(marked.len()).unwrap_or(i64::MAX)).await?;
    Ok(marked)
}

/// Ends a marking: if it changed anything, appends its feed row with the
/// unread count after it, then commits.
async fn finish(
    mut tx: ReadTx,
    user: &str,
    kind: ChangeKind,
    ids: Vec<Uuid>,
) -> Result<u64, QueryError> {
    let changed = ids.len() as u64;
    if !ids.is_empty() {
        let rows = fetch(&mut tx, UNREAD, &[Arg::Text(user)]).await?;
        let unread_count = unread_of(rows.first())?;
        changes::record(
            &mut tx,
            &[NewChange {
                recipient: Some(user),
                kind,
                ids,
                unread_count,
            }],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(changed)
}

/// Marks `ids` of `user`'s inbox read; ids of other inboxes, unknown or
/// deleted ones are ignored. Returns how many were unread.
#[tracing::instrument(name = "notifications.mark_read", skip(db, ids), err)]
pub async fn mark_read(db: &ReadDb, user: &str, ids: &[Uuid]) -> Result<u64, QueryError> {
    let mut tx = db.begin().await?;
    changes::lock(&mut tx).await?;
    let ids = own(&mut tx, user, ids).await?;
    let marked = read_in(&mut tx, user, &ids).await?;
    finish(tx, user, ChangeKind::Read, marked).await
}

/// Marks `ids` of `user`'s inbox unread again; ids of other inboxes, unknown,
/// deleted and unread ones change nothing. Returns how many were read.
#[tracing::instrument(name = "notifications.mark_unread", skip(db, ids), err)]
pub async fn mark_unread(db: &ReadDb, user: &str, ids: &[Uuid]) -> Result<u64, QueryError> {
    let mut tx = db.begin().await?;
    changes::lock(&mut tx).await?;
    let ids = own(&mut tx, user, ids).await?;
    let mut unmarked = vec![];
    for id in ids {
        let deleted = execute(
            &mut tx,
            "DELETE FROM notification_reads WHERE recipient = $1 AND notification_id = $2",
            &[Arg::Text(user), Arg::Id(id)],
        )
        .await?;
        if deleted > 0 {
            unmarked.push(id);
        }
    }
    count_reads(
        &mut tx,
        user,
        -i64::try_from(unmarked.len()).unwrap_or(i64::MAX),
    )
    .await?;
    finish(tx, user, ChangeKind::Unread, unmarked).await
}

/// Marks every notification of `user` read. Returns how many were unread.
#[tracing::instrument(name = "notifications.mark_all_read", skip(db), err)]
pub async fn mark_all_read(db: &ReadDb, user: &str) -> Result<u64, QueryError> {
    let now = Utc::now();
    let mut tx = db.begin().await?;
    changes::lock(&mut tx).await?;
    let marked = fetch(
        &mut tx,
        "INSERT INTO notification_reads (recipient, notification_id, read_at) \
         SELECT recipient, id, $2 FROM notifications WHERE recipient = $1 \
         ON CONFLICT (recipient, notification_id) DO NOTHING RETURNING notification_id",
        &[Arg::Text(user), Arg::Time(now)],
    )
    .await?
    .iter()
    .map(|row| row.id("notification_id"))
    .collect::<Result<Vec<_>, _>>()?;
    count_reads(
        &mut tx,
        user,
        i64::try_from(marked.len()).unwrap_or(i64::MAX),
    )
    .await?;
    finish(tx, user, ChangeKind::Read, marked).await
}

/// Deletes `ids` from `user`'s inbox: gone from every query and count, for
/// good (a rebuild does not bring them back). Ids of other inboxes, unknown
/// and deleted ones change nothing. Returns how many were deleted.
#[tracing::instrument(name = "notifications.delete", skip(db, ids), err)]
pub async fn delete(db: &ReadDb, user: &str, ids: &[Uuid]) -> Result<u64, QueryError> {
    let now = Utc::now();
    let mut tx = db.begin().await?;
    changes::lock(&mut tx).await?;
    let ids = own(&mut tx, user, ids).await?;
    for id in &ids {
        execute(
            &mut tx,
            "INSERT INTO notification_deletions (recipient, notification_id, deleted_at) \
             VALUES ($1, $2, $3) ON CONFLICT (recipient, notification_id) DO NOTHING",
            &[Arg::Text(user), Arg::Id(*id), Arg::Time(now)],
        )
        .await?;
    }
    // Deleted notifications count as read: the unread count drops.
    read_in(&mut tx, user, &ids).await?;
    finish(tx, user, ChangeKind::Deleted, ids).await
}

/// `user`'s notification preferences as the projection has applied them
/// (everything on for a user it has no row of).
pub async fn preferences(db: &ReadDb, user: &str) -> Result<NotificationPreferences, QueryError> {
    let rows = fetch_db(
        db,
        "SELECT preferences FROM notification_users WHERE id = $1",
        &[Arg::Text(user)],
    )
    .await?;
    Ok(match rows.first() {
        Some(row) => row.decode("preferences")?,
        None => NotificationPreferences::default(),
    })
}

/// Adds `delta` (negative when marked unread) to `user`'s read count.
async fn count_reads(tx: &mut ReadTx, user: &str, delta: i64) -> Result<(), sqlx::Error> {
    if delta == 0 {
        return Ok(());
    }
    execute(
        tx,
        "INSERT INTO notification_read_counts (recipient, read_count) VALUES ($1, $2) \
         ON CONFLICT (recipient) DO UPDATE \
         SET read_count = notification_read_counts.read_count + excluded.read_count",
        &[Arg::Text(user), Arg::Int(delta)],
    )
    .await?;
    Ok(())
}
