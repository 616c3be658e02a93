//! The `projection_checkpoints` table: how far each projection got, and whether
//! it is running or stopped on a poison event.
//!
//! A checkpoint row is only ever written inside the transaction that wrote the
//! batch it records, so the read model and its checkpoint cannot disagree.

use std::str::FromStr;

use sqlx::Row;
use store::Position;

use crate::db::{ReadDb, ReadTx};
use crate::error::ProjectionError;

/// Whether a projection is applying events or stopped on one it cannot apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectionState {
    Running,
    Failed,
    /// Only in [`crate::report::status_report`]: a rebuild of it runs. Never
    /// stored in a checkpoint row.
    Rebuilding,
}

impl ProjectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectionState::Running => "running",
            ProjectionState::Failed => "failed",
            ProjectionState::Rebuilding => "rebuilding",
        }
    }
}

/// One projection's checkpoint row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionStatus {
    pub name: String,
    /// The last event applied (`Position::START` before the first).
    pub position: Position,
    pub state: ProjectionState,
    /// Why a failed projection stopped, naming the event and its position.
    pub error: Option<String>,
}

/// Every projection's checkpoint, by name (a rebuild's own progress row
/// left out: see [`crate::report::status_report`]).
#[tracing::instrument(skip_all, err)]
pub async fn status(db: &ReadDb) -> Result<Vec<ProjectionStatus>, ProjectionError> {
    let mut rows = all_rows(db).await?;
    rows.retain(|s| !s.name.starts_with("rebuild:"));
    Ok(rows)
}

/// Every checkpoint row, a running rebuild's included.
pub(crate) async fn all_rows(db: &ReadDb) -> Result<Vec<ProjectionStatus>, ProjectionError> {
    const SQL: &str =
        "SELECT name, position, state, error FROM projection_checkpoints ORDER BY name";
    let rows: Vec<(String, String, String, Option<String>)> = match db {
        ReadDb::Sqlite(pool) => sqlx::query_as(SQL).fetch_all(pool).await?,
        ReadDb::Postgres(pool) => sqlx::query_as(SQL).fetch_all(pool).await?,
    };
    rows.into_iter()
        .map(|(name, position, state, error)| {
            let position = parse_position(&name, &position)?;
            let state = parse_state(&name, &state)?;
            Ok(ProjectionStatus {
                name,
                position,
                state,
                error,
            })
        })
        .collect()
}

/// The projection's checkpoint as last committed, `START` if it has none,
/// read outside any transaction (where to start reading the log; each batch
/// checks it again under [`load`]).
pub(crate) async fn read(db: &ReadDb, name: &str) -> Result<Position, ProjectionError> {
    const SQL: &str = "SELECT position FROM projection_checkpoints WHERE name = $1";
    let position: Option<String> = match db {
        ReadDb::Sqlite(pool) => {
            sqlx::query_scalar(SQL)
                .bind(name)
                .fetch_optional(pool)
                .await?
        }
        ReadDb::Postgres(pool) => {
            sqlx::query_scalar(SQL)
                .bind(name)
                .fetch_optional(pool)
                .await?
        }
    };
    match position {
        Some(position) => parse_position(name, &position),
        None => Ok(Position::START),
    }
}

/// The projection's checkpoint, `START` if it has none. On PostgreSQL the row is
/// locked until the transaction ends, so two runners of one projection take
/// turns instead of applying the same batch twice.
pub(crate) async fn load(tx: &mut ReadTx, name: &str) -> Result<Position, ProjectionError> {
    let position: Option<String> = match tx {
        ReadTx::Sqlite(tx) => {
            sqlx::query("SELECT position FROM projection_checkpoints WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut **tx)
                .await?
                .map(|row| row.try_get(0))
                .transpose()?
        }
        ReadTx::Postgres(tx) => {
            sqlx::query("SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE")
                .bind(name)
                .fetch_optional(&mut **tx)
                .await?
                .map(|row| row.try_get(0))
                .transpose()?
        }
    };
    match position {
        Some(position) => parse_position(name, &position),
        None => Ok(Position::START),
    }
}

/// Records `position` as the last event applied, with the projection's state.
pub(crate) async fn save(
    tx: &mut ReadTx,
    name: &str,
    position: Position,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    let state = match error {
        None => ProjectionState::Running,
        Some(_) => ProjectionState::Failed,
    };
    let query = |now: &'static str| {
        format!(
            "INSERT INTO projection_checkpoints (name, position, updated_at, state, error) \
             VALUES ($1, $2, {now}, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position, \
             updated_at = excluded.updated_at, state = excluded.state, error = excluded.error"
        )
    };
    match tx {
        ReadTx::Sqlite(tx) => {
            sqlx::query(&query("strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"))
                .bind(name)
                .bind(position.to_cursor())
                .bind(state.as_str())
                .bind(error)
                .execute(&mut **tx)
                .await?;
        }
        ReadTx::Postgres(tx) => {
            sqlx::query(&query("now()"))
                .bind(name)
                .bind(position.to_cursor())
                .bind(state.as_str())
                .bind(error)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

fn parse_position(name: &str, position: &str) -> Result<Position, ProjectionError> {
    Position::from_str(position).map_err(|e| ProjectionError::CorruptCheckpoint {
        projection: name.to_string(),
        detail: e.to_string(),
    })
}

fn parse_state(name: &str, state: &str) -> Result<ProjectionState, ProjectionError> {
    match state {
        "running" => Ok(ProjectionState::Running),
        "failed" => Ok(ProjectionState::Failed),
        other => Err(ProjectionError::CorruptCheckpoint {
            projection: name.to_string(),
            detail: format!("unknown state {other:?}"),
        }),
    }
}

/// Deletes the checkpoint row `name`, if there is one.
pub(crate) async fn delete(db: &ReadDb, name: &str) -> Result<(), sqlx::Error> {
    const SQL: &str = "DELETE FROM projection_checkpoints WHERE name = $1";
    match db {
        ReadDb::Sqlite(pool) => {
            sqlx::query(SQL).bind(name).execute(pool).await?;
        }
        ReadDb::Postgres(pool) => {
            sqlx::query(SQL).bind(name).execute(pool).await?;
        }
    }
    Ok(())
}
