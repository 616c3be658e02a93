//! The users projection: the latest `UserProfileRecorded` of each `user-<id>`
//! stream, in `users`, and the queries the API asks of it: [`find_user`], and
//! [`list_users`] for the reference client's development sign-in.

use async_trait::async_trait;
use domain::codec::user::{self, UserEvent, PROFILE_RECORDED};
use store::RecordedEvent;

use crate::bind::{execute, fetch_db, Arg};
use crate::db::{ReadDb, ReadTx, RowPosition};
use crate::error::{ApplyError, QueryError};
use crate::runner::Projection;

/// The checkpoint name of [`UsersProjection`].
pub const NAME: &str = "users";

/// Writes `users` from `UserProfileRecorded` events.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsersProjection;

const UPSERT: &str =
    "INSERT INTO users (id, first_name, last_name, email, roles, teams, position, \
    prepare_offset) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
    ON CONFLICT (id) DO UPDATE SET first_name = excluded.first_name, \
    last_name = excluded.last_name, email = excluded.email, roles = excluded.roles, \
    teams = excluded.teams, position = excluded.position, \
    prepare_offset = excluded.prepare_offset \
    WHERE (users.position, users.prepare_offset) < (excluded.position, excluded.prepare_offset)";

#[async_trait]
impl Projection for UsersProjection {
    fn name(&self) -> &str {
        NAME
    }

    fn tables(&self) -> &[&'static str] {
        &["users"]
    }

    async fn apply(&self, tx: &mut ReadTx, event: &RecordedEvent) -> Result<(), ApplyError> {
        if !event.stream_id.starts_with(domain::USER_STREAM_PREFIX)
            || event.event_type != PROFILE_RECORDED
        {
            return Ok(());
        }
        let position = RowPosition::of(event.position)?;
        let profile = match user::decode(&event.event_type, event.schema_version, &event.data)
            .map_err(|e| ApplyError::Poison(format!("cannot decode {PROFILE_RECORDED}: {e}")))?
        {
            UserEvent::ProfileRecorded(profile) => profile,
            UserEvent::PreferencesSet(_) => return Ok(()),
        };
        let roles = serde_json::json!(profile.roles);
        let teams = serde_json::json!(profile.teams);
        execute(
            tx,
            UPSERT,
            &[
                Arg::Text(&profile.id),
                Arg::OptText(profile.first_name.as_deref()),
                Arg::OptText(profile.last_name.as_deref()),
                Arg::OptText(profile.email.as_deref()),
                Arg::Json(&roles),
                Arg::Json(&teams),
                Arg::Int(position.position),
                Arg::Int(position.prepare_offset),
            ],
        )
        .await?;
        Ok(())
    }
}

/// Up to `limit` recorded profiles, by id: who the reference client offers
/// for a one-click sign-in in development mode.
#[tracing::instrument(name = "list users", skip(db), err)]
pub async fn list_users(db: &ReadDb, limit: i64) -> Result<Vec<domain::UserProfile>, QueryError> {
    let rows = fetch_db(
        db,
        "SELECT id, first_name, last_name, email, roles, teams FROM users ORDER BY id LIMIT $1",
        &[Arg::Int(limit)],
    )
    .await?;
    rows.iter()
        .map(|row| {
            Ok(domain::UserProfile {
                id: row.text("id")?,
                first_name: row.opt_text("first_name")?,
                last_name: row.opt_text("last_name")?,
                email: row.opt_text("email")?,
                roles: row.decode("roles")?,
                teams: row.decode("teams")?,
            })
        })
        .collect()
}

/// The latest profile of `id`, if one was recorded.
#[tracing::instrument(name = "find user", skip(db), err)]
pub async fn find_user(db: &ReadDb, id: &str) -> Result<Option<domain::UserProfile>, QueryError> {
    let rows = fetch_db(
        db,
        "SELECT first_name, last_name, email, roles, teams FROM users WHERE id = $1",
        &[Arg::Text(id)],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(domain::UserProfile {
        id: id.to_string(),
        first_name: row.opt_text("first_name")?,
        last_name: row.opt_text("last_name")?,
        email: row.opt_text("email")?,
        roles: row.decode("roles")?,
        teams: row.decode("teams")?,
    }))
}
