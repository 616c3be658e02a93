//! The `announcements` table: every published announcement, written by the
//! notifications projection from `AnnouncementPublished` events, and read
//! newest first by those it is addressed to.

use domain::announcement::Announcement;
use domain::Actor;
use uuid::Uuid;

use crate::bind::{execute, fetch_db, AnyRow, Arg};
use crate::db::{ReadDb, ReadTx, RowPosition};
use crate::error::QueryError;

const COLUMNS: &str = "id, title, body, roles, teams, published_by, created_at";

fn announcement_of(row: &AnyRow) -> Result<Announcement, sqlx::Error> {
    Ok(Announcement {
        id: row.id("id")?,
        title: row.text("title")?,
        body: row.text("body")?,
        roles: row.decode("roles")?,
        teams: row.decode("teams")?,
        published_by: row.text("published_by")?,
        published_at: row.time("created_at")?,
    })
}

/// Writes one announcement (a replayed one changes nothing).
pub(super) async fn save(
    tx: &mut ReadTx,
    announcement: &Announcement,
    position: RowPosition,
) -> Result<u64, sqlx::Error> {
    execute(
        tx,
        "INSERT INTO announcements (id, title, body, roles, teams, published_by, created_at, \
         position, prepare_offset) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (id) DO NOTHING",
        &[
            Arg::Id(announcement.id),
            Arg::Text(&announcement.title),
            Arg::Text(&announcement.body),
            Arg::Json(&serde_json::json!(announcement.roles)),
            Arg::Json(&serde_json::json!(announcement.teams)),
            Arg::Text(&announcement.published_by),
            Arg::Time(announcement.published_at),
            Arg::Int(position.position),
            Arg::Int(position.prepare_offset),
        ],
    )
    .await
}

/// One announcement by id, whoever it is addressed to.
pub async fn announcement(db: &ReadDb, id: Uuid) -> Result<Option<Announcement>, QueryError> {
    let rows = fetch_db(
        db,
        &format!("SELECT {COLUMNS} FROM announcements WHERE id = $1"),
        &[Arg::Id(id)],
    )
    .await?;
    Ok(rows.first().map(announcement_of).transpose()?)
}

/// Rows read per query while looking for those addressed to the caller.
const PAGE: i64 = 200;
/// At most this many announcements are looked at for one call: a bound on
/// the work of a caller to whom few of many are addressed.
const SCANNED: i64 = 10_000;

/// Up to `first` announcements addressed to `actor`, newest first.
#[tracing::instrument(name = "announcements.list", skip(db, actor), fields(user = %actor.user_id), err)]
pub async fn announcements(
    db: &ReadDb,
    actor: &Actor,
    first: usize,
) -> Result<Vec<Announcement>, QueryError> {
    let mut found = vec![];
    let mut before = (i64::MAX, i64::MAX);
    let mut scanned = 0;
    while found.len() < first && scanned < SCANNED {
        let rows = fetch_db(
            db,
            &format!(
                "SELECT {COLUMNS}, position, prepare_offset FROM announcements \
                 WHERE (position, prepare_offset) < ($1, $2) \
                 ORDER BY position DESC, prepare_offset DESC LIMIT $3"
            ),
            &[Arg::Int(before.0), Arg::Int(before.1), Arg::Int(PAGE)],
        )
        .await?;
        scanned += rows.len() as i64;
        for row in &rows {
            before = (row.int("position")?, row.int("prepare_offset")?);
            let announcement = announcement_of(row)?;
            if announcement.is_addressed_to(actor) && found.len() < first {
                found.push(announcement);
            }
        }
        if (rows.len() as i64) < PAGE {
            break;
        }
    }
    Ok(found)
}
