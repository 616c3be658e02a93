//! The `users` read model's one query: a user's latest profile.

use projections::ReadDb;

use crate::error::ApiError;
use crate::users::UserProfile;

/// first name, last name, email, roles, teams (JSON as `J`).
type UserRow<J> = (Option<String>, Option<String>, Option<String>, J, J);

/// The latest profile of `id` in the `users` read model.
#[tracing::instrument(name = "find user", skip(db), err)]
pub async fn find_user(db: &ReadDb, id: &str) -> Result<Option<UserProfile>, ApiError> {
    const SQL: &str = "SELECT first_name, last_name, email, roles, teams FROM users WHERE id = $1";
    let row = match db {
        ReadDb::Sqlite(pool) => {
            let row: Option<UserRow<String>> =
                sqlx::query_as(SQL).bind(id).fetch_optional(pool).await?;
            match row {
                None => None,
                Some((f, l, e, roles, teams)) => Some((
                    f,
                    l,
                    e,
                    serde_json::from_str(&roles).map_err(ApiError::internal)?,
                    serde_json::from_str(&teams).map_err(ApiError::internal)?,
                )),
            }
        }
        ReadDb::Postgres(pool) => {
            let row: Option<UserRow<serde_json::Value>> =
                sqlx::query_as(SQL).bind(id).fetch_optional(pool).await?;
            row
        }
    };
    let Some((first_name, last_name, email, roles, teams)) = row else {
        return Ok(None);
    };
    Ok(Some(UserProfile {
        id: id.to_string(),
        first_name,
        last_name,
        email,
        roles: serde_json::from_value(roles).map_err(ApiError::internal)?,
        teams: serde_json::from_value(teams).map_err(ApiError::internal)?,
    }))
}
