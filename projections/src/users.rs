//! The users projection: the latest `UserProfileRecorded` of each `user-<id>`
//! stream, in `users`.

use async_trait::async_trait;
use domain::codec::user::{self, UserEvent, PROFILE_RECORDED};
use store::RecordedEvent;

use crate::db::{ReadTx, RowPosition};
use crate::error::ApplyError;
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
        let UserEvent::ProfileRecorded(profile) =
            user::decode(&event.event_type, event.schema_version, &event.data).map_err(|e| {
                ApplyError::Poison(format!("cannot decode {PROFILE_RECORDED}: {e}"))
            })?;
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
