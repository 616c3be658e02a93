//! The feed of inbox changes, `notification_changes`: one row per change
//! (a notification ADDED by the projection; READ, UNREAD, DELETED by its
//! recipient; an announcement ANNOUNCED to whom it concerns), written in the
//! transaction that makes the change, so a row is visible exactly when the
//! change is. Every server node tails the table ([`ChangeFeed`]) and pushes
//! each row to the subscribers it concerns; a subscriber that reconnects
//! passes the last `seq` it saw and reads the rows after it ([`after`]).
//!
//! Order: `seq` grows in commit order. SQLite has one writer at a time;
//! PostgreSQL writers take [`LOCK`] (transaction-scoped) before they write
//! the change and hold it to their commit, so no smaller `seq` can commit
//! after a reader has passed a larger one. The lock also orders the unread
//! counts: each change carries the count right after it.
//!
//! Rows older than [`RETENTION`] are pruned; a reader asking for changes
//! from before the oldest row left is told so ([`FeedError::TooOld`]) and
//! re-reads the inbox instead.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{broadcast, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bind::{execute, fetch, fetch_db, Arg};
use crate::db::{Dialect, ReadDb, ReadTx};
use crate::error::QueryError;

/// The advisory lock PostgreSQL writers of the feed hold to their commit.
const LOCK: i64 = 0x6e6f_7469_6663_6867;
/// How often each node looks for rows other nodes committed.
const POLL: Duration = Duration::from_millis(100);
/// Rows read per query of the tail.
const PAGE: i64 = 500;
/// How long a change stays in the feed.
pub const RETENTION: chrono::Duration = chrono::Duration::days(7);

/// What happened to an inbox: the contract's `NotificationChangeKind`, and
/// `Announced` for an announcement (no inbox of its own: its audience is
/// decided when it is pushed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Read,
    Unread,
    Deleted,
    Announced,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "ADDED",
            ChangeKind::Read => "READ",
            ChangeKind::Unread => "UNREAD",
            ChangeKind::Deleted => "DELETED",
            ChangeKind::Announced => "ANNOUNCED",
        }
    }

    fn parse(kind: &str) -> Option<ChangeKind> {
        [
            ChangeKind::Added,
            ChangeKind::Read,
            ChangeKind::Unread,
            ChangeKind::Deleted,
            ChangeKind::Announced,
        ]
        .into_iter()
        .find(|k| k.as_str() == kind)
    }
}

/// One row of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub seq: i64,
    /// Whose inbox; `None` for an announcement.
    pub recipient: Option<String>,
    pub kind: ChangeKind,
    /// The notifications (or the announcement) it is about.
    pub ids: Vec<Uuid>,
    /// The recipient's unread count right after it (0 for an announcement).
    pub unread_count: i64,
}

/// Why [`after`] cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("changes after {0} are no longer kept; re-read the inbox")]
    TooOld(i64),
    #[error(transparent)]
    Query(#[from] QueryError),
}

/// Takes the feed's lock (PostgreSQL; SQLite has one writer anyway). Call
/// before reading the counts a change will carry.
pub(crate) async fn lock(tx: &mut ReadTx) -> Result<(), sqlx::Error> {
    if tx.dialect() == Dialect::Postgres {
        fetch(tx, "SELECT pg_advisory_xact_lock($1)", &[Arg::Int(LOCK)]).await?;
    }
    Ok(())
}

/// One change to append.
pub(crate) struct NewChange<'a> {
    pub recipient: Option<&'a str>,
    pub kind: ChangeKind,
    pub ids: Vec<Uuid>,
    pub unread_count: i64,
}

/// Rows per multi-row insert (5 values each).
const ROWS_PER_INSERT: usize = 500;

/// Appends `changes` in `tx`, in order (after [`lock`]).
pub(crate) async fn record(tx: &mut ReadTx, changes: &[NewChange<'_>]) -> Result<(), sqlx::Error> {
    let now = Utc::now();
    for chunk in changes.chunks(ROWS_PER_INSERT) {
        let ids: Vec<serde_json::Value> = chunk.iter().map(|c| serde_json::json!(c.ids)).collect();
        let mut sql = String::from(
            "INSERT INTO notification_changes (recipient, kind, ids, unread_count, created_at) \
             VALUES ",
        );
        let mut args = Vec::with_capacity(chunk.len() * 5);
        for (i, (change, ids)) in chunk.iter().zip(&ids).enumerate() {
            let n = i * 5;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${})",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5
            ));
            args.extend([
                Arg::OptText(change.recipient),
                Arg::Text(change.kind.as_str()),
                Arg::Json(ids),
                Arg::Int(change.unread_count),
                Arg::Time(now),
            ]);
        }
        execute(tx, &sql, &args).await?;
    }
    Ok(())
}

const COLUMNS: &str = "seq, recipient, kind, ids, unread_count";

fn change_of(row: &crate::bind::AnyRow) -> Result<Change, sqlx::Error> {
    let kind = row.text("kind")?;
    Ok(Change {
        seq: row.int("seq")?,
        recipient: row.opt_text("recipient")?,
        kind: ChangeKind::parse(&kind).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "kind".into(),
            source: format!("unknown change kind {kind:?}").into(),
        })?,
        ids: row.decode("ids")?,
        unread_count: row.int("unread_count")?,
    })
}

/// Whether the changes after `seq` are all still kept, or some were pruned
/// ([`FeedError::TooOld`]): asked once before a resume reads [`after`].
pub async fn check_kept(db: &ReadDb, seq: i64) -> Result<(), FeedError> {
    let rows = fetch_db(
        db,
        "SELECT COALESCE(MIN(seq), 0) AS oldest, COALESCE(MAX(seq), 0) AS newest \
         FROM notification_changes",
        &[],
    )
    .await
    .map_err(QueryError::from)?;
    let (oldest, newest) = match rows.first() {
        Some(row) => (
            row.int("oldest").map_err(QueryError::from)?,
            row.int("newest").map_err(QueryError::from)?,
        ),
        None => (0, 0),
    };
    // Rows between `seq` and the oldest one left were pruned, unless the
    // feed was empty past `seq` all along.
    if oldest > seq + 1 && newest > seq {
        return Err(FeedError::TooOld(seq));
    }
    Ok(())
}

/// The changes of `recipient`'s inbox after `seq` (or, for `None`, the
/// announcements), oldest first, at most `limit`.
pub async fn after(
    db: &ReadDb,
    recipient: Option<&str>,
    seq: i64,
    limit: i64,
) -> Result<Vec<Change>, QueryError> {
    let rows = match recipient {
        Some(user) => {
            fetch_db(
                db,
                &format!(
                    "SELECT {COLUMNS} FROM notification_changes \
                     WHERE recipient = $1 AND seq > $2 ORDER BY seq LIMIT $3"
                ),
                &[Arg::Text(user), Arg::Int(seq), Arg::Int(limit)],
            )
            .await
        }
        None => {
            fetch_db(
                db,
                &format!(
                    "SELECT {COLUMNS} FROM notification_changes \
                     WHERE recipient IS NULL AND seq > $1 ORDER BY seq LIMIT $2"
                ),
                &[Arg::Int(seq), Arg::Int(limit)],
            )
            .await
        }
    }?;
    Ok(rows.iter().map(change_of).collect::<Result<_, _>>()?)
}

/// The newest `seq` in the feed (0 when empty).
pub async fn newest(db: &ReadDb) -> Result<i64, QueryError> {
    let rows = fetch_db(
        db,
        "SELECT COALESCE(MAX(seq), 0) AS newest FROM notification_changes",
        &[],
    )
    .await?;
    Ok(rows
        .first()
        .map(|r| r.int("newest"))
        .transpose()?
        .unwrap_or(0))
}

/// A node's tail of the feed: every row, in `seq` order, once committed,
/// broadcast to the subscriptions of this process. Cheap to clone.
#[derive(Clone)]
pub struct ChangeFeed {
    published: broadcast::Sender<Change>,
    /// Woken by this process's own writes so they are pushed without
    /// waiting for the next poll.
    wake: Arc<Notify>,
}

impl ChangeFeed {
    /// A feed whose subscribers may fall `capacity` changes behind before
    /// they are told they lagged.
    pub fn new(capacity: usize) -> ChangeFeed {
        ChangeFeed {
            published: broadcast::channel(capacity.max(1)).0,
            wake: Arc::new(Notify::new()),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.published.subscribe()
    }

    /// Tells the tail a change was just committed by this process.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Starts tailing from the newest row now in the table (changes made
    /// before this node started are read by [`after`] on request), and
    /// prunes rows older than [`RETENTION`] now and then.
    pub fn spawn(&self, db: ReadDb, shutdown: CancellationToken) -> JoinHandle<()> {
        let feed = self.clone();
        tokio::spawn(async move {
            let mut seen = loop {
                match newest(&db).await {
                    Ok(seq) => break seq,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the inbox change feed; retrying");
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                }
            };
            let mut polls: u64 = 0;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = feed.wake.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
                match feed.tail(&db, seen).await {
                    Ok(last) => seen = last,
                    Err(e) => tracing::warn!(error = %e, "cannot read the inbox change feed"),
                }
                polls += 1;
                // About every ten minutes.
                if polls.is_multiple_of(6_000) {
                    if let Err(e) = prune(&db).await {
                        tracing::warn!(error = %e, "cannot prune the inbox change feed");
                    }
                }
            }
        })
    }

    /// Publishes every row after `seen`; returns the last `seq` published.
    async fn tail(&self, db: &ReadDb, mut seen: i64) -> Result<i64, QueryError> {
        loop {
            let rows = fetch_db(
                db,
                &format!(
                    "SELECT {COLUMNS} FROM notification_changes WHERE seq > $1 \
                     ORDER BY seq LIMIT $2"
                ),
                &[Arg::Int(seen), Arg::Int(PAGE)],
            )
            .await?;
            let full = rows.len() as i64 == PAGE;
            for row in &rows {
                let change = change_of(row)?;
                seen = change.seq;
                // Nobody listening is fine.
                let _ = self.published.send(change);
            }
            if !full {
                return Ok(seen);
            }
        }
    }
}

/// Deletes the rows older than [`RETENTION`].
async fn prune(db: &ReadDb) -> Result<u64, QueryError> {
    let mut tx = db.begin().await?;
    let pruned = execute(
        &mut tx,
        "DELETE FROM notification_changes WHERE created_at < $1",
        &[Arg::Time(Utc::now() - RETENTION)],
    )
    .await?;
    tx.commit().await?;
    Ok(pruned)
}
