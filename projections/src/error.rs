//! Errors of the projections: one for the runner's callers, one for
//! handlers, one for the queries the API asks of the read models.

use store::{Position, StoreError};
use uuid::Uuid;

/// Why a projection stopped or a status could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// An event the projection cannot apply. The projection is stopped at the
    /// event before it (recorded as `failed` in its checkpoint row): fix the
    /// handler or the log and restart; retrying as is fails the same way.
    #[error("projection {projection} stopped at event {event_id} (position {position}): {reason}")]
    Poison {
        projection: String,
        event_id: Uuid,
        position: Position,
        reason: String,
    },
    /// The read-model database failed; the runner retries by itself.
    #[error("read-model database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The event store failed; the runner retries by itself.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A batch's task was cancelled (the runtime is shutting down). The batch
    /// either committed or rolled back; the next run carries on from the
    /// checkpoint.
    #[error("a batch was interrupted: {0}")]
    Interrupted(String),
    /// A checkpoint row holds something that is not a position or state: a bug
    /// or a manual edit. Fix the row.
    #[error("corrupt checkpoint of {projection}: {detail}")]
    CorruptCheckpoint { projection: String, detail: String },
}

/// What a handler reports for one event.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The event cannot be applied (undecodable, or it makes no sense on the
    /// state the read model holds). Stops the projection; never skipped.
    #[error("{0}")]
    Poison(String),
    /// The database failed; the whole batch is rolled back and retried.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Why a query of a read model failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The `after` cursor is not one this API handed out: a client error.
    #[error("invalid cursor {0:?}")]
    InvalidCursor(String),
    /// The database failed, or a row does not decode; retrying later may
    /// succeed.
    #[error("read-model database error: {0}")]
    Database(#[from] sqlx::Error),
}
