//! The users projection: the latest `UserProfileRecorded` of each `user-<id>`
//! stream, in `users`.

use async_trait::async_trait;
use domain::Role;
use serde::Deserialize;
use store::RecordedEvent;

use crate::db::{ReadTx, RowPosition};
use crate::error::ApplyError;
use crate::runner::Projection;

/// The checkpoint name of [`UsersProjection`].
pub const NAME: &str = "users";

const STREAM_PREFIX: &str = "user-";
const PROFILE_RECORDED: &str = "UserProfileRecorded";

/// Writes `users` from `UserProfileRecorded` events.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsersProjection;

/// The payload the API records (`api::users::UserProfile`); only read here.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    id: String,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    roles: Vec<Role>,
    teams: Vec<String>,
}

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
        if !event.stream_id.starts_with(STREAM_PREFIX) || event.event_type != PROFILE_RECORDED {
            return Ok(());
        }
        let position = RowPosition::of(event.position)?;
        let profile: Profile = serde_json::from_value(event.data.clone())
            .map_err(|e| ApplyError::Poison(format!("cannot decode {PROFILE_RECORDED}: {e}")))?;
        let roles = serde_json::json!(profile.roles);
        let teams = serde_json::json!(profile.teams);
        match tx {
            ReadTx::Sqlite(tx) => {
                sqlx::query(UPSERT)
                    .bind(&profile.id)
                    .bind(&profile.first_name)
                    .bind(&profile.last_name)
                    .bind(&profile.email)
                    .bind(roles.to_string())
                    .bind(teams.to_string())
                    .bind(position.position)
                    .bind(position.prepare_offset)
                    .execute(&mut **tx)
                    .await?;
            }
            ReadTx::Postgres(tx) => {
                sqlx::query(UPSERT)
                    .bind(&profile.id)
                    .bind(&profile.first_name)
                    .bind(&profile.last_name)
                    .bind(&profile.email)
                    .bind(roles)
                    .bind(teams)
                    .bind(position.position)
                    .bind(position.prepare_offset)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(())
    }
}
