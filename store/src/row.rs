//! Stored rows back into [`RecordedEvent`]s.
//!
//! Everything read from the log is checked on the way out, because a projection
//! that panics on one bad row stops forever: a malformed row (bad JSON, a negative
//! version, an id that is no UUID) becomes [`StoreError::Corrupt`] naming the row,
//! and the caller decides what to do.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Position, RecordedEvent, StoreError};

/// The columns every read selects, in the order the row types below expect.
pub(crate) const EVENT_COLUMNS: &str =
    "position, id, stream_id, version, event_type, schema_version, data, metadata, recorded_at, hash";

/// A row of SQLite's `events`: ids, payloads and times are text there.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SqliteEventRow {
    position: i64,
    id: String,
    stream_id: String,
    version: i64,
    event_type: String,
    schema_version: i32,
    data: String,
    metadata: String,
    recorded_at: DateTime<Utc>,
    hash: String,
}

impl TryFrom<SqliteEventRow> for RecordedEvent {
    type Error = StoreError;

    fn try_from(row: SqliteEventRow) -> Result<Self, StoreError> {
        let at = row.position;
        Ok(RecordedEvent {
            id: Uuid::parse_str(&row.id)
                .map_err(|e| corrupt(at, format!("id {:?}: {e}", row.id)))?,
            position: position(at)?,
            version: version(at, row.version)?,
            data: serde_json::from_str(&row.data).map_err(|e| corrupt(at, format!("data: {e}")))?,
            metadata: serde_json::from_str(&row.metadata)
                .map_err(|e| corrupt(at, format!("metadata: {e}")))?,
            stream_id: row.stream_id,
            event_type: row.event_type,
            schema_version: row.schema_version,
            recorded_at: row.recorded_at,
            hash: row.hash,
        })
    }
}

/// A row of PostgreSQL's `events`: the column types already guarantee UUIDs and
/// JSON, so only the numbers need checking.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct PgEventRow {
    position: i64,
    id: Uuid,
    stream_id: String,
    version: i64,
    event_type: String,
    schema_version: i32,
    data: serde_json::Value,
    metadata: serde_json::Value,
    recorded_at: DateTime<Utc>,
    hash: String,
}

impl TryFrom<PgEventRow> for RecordedEvent {
    type Error = StoreError;

    fn try_from(row: PgEventRow) -> Result<Self, StoreError> {
        Ok(RecordedEvent {
            id: row.id,
            position: position(row.position)?,
            version: version(row.position, row.version)?,
            stream_id: row.stream_id,
            event_type: row.event_type,
            schema_version: row.schema_version,
            data: row.data,
            metadata: row.metadata,
            recorded_at: row.recorded_at,
            hash: row.hash,
        })
    }
}

/// Decodes a batch, stopping at the first bad row.
pub(crate) fn decode_all<R>(rows: Vec<R>) -> Result<Vec<RecordedEvent>, StoreError>
where
    RecordedEvent: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(RecordedEvent::try_from).collect()
}

/// A stored position: positions start at 1 (0 is [`Position::START`]).
pub(crate) fn position(raw: i64) -> Result<Position, StoreError> {
    match u64::try_from(raw) {
        Ok(p) if p > 0 => Ok(Position::from_sequence(p)),
        _ => Err(StoreError::Corrupt(format!("stored position {raw}"))),
    }
}

/// A stored stream version of the row at `at`.
pub(crate) fn version(at: i64, raw: i64) -> Result<u64, StoreError> {
    u64::try_from(raw).map_err(|_| corrupt(at, format!("version {raw}")))
}

/// A position or version as a SQL bound: the log never gets near `i64::MAX`, so
/// anything above reads as "beyond everything".
pub(crate) fn sql_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A read limit as a SQL bound.
pub(crate) fn sql_limit(max: usize) -> i64 {
    i64::try_from(max).unwrap_or(i64::MAX)
}

fn corrupt(position: i64, what: String) -> StoreError {
    StoreError::Corrupt(format!("event at position {position}: {what}"))
}
