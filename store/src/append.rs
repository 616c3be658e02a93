//! The append rules both SQL backends apply while they hold their writer lock.
//!
//! Each backend only gathers facts (which of the ids are stored, the stream's
//! current version) and writes; what those facts mean is decided here, once, so
//! the backends cannot drift apart. The order matters: a repeated append is
//! recognised *before* the expected version is checked, because a client that
//! retries after a lost reply must get its original result even though the stream
//! has moved on since (its own append moved it).

mod group;

pub(crate) use group::{plan, AppendRequest, FactRow, GroupFacts, GroupPlan, Row};

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{AppendResult, AppendedEvent, ExpectedVersion, NewEvent, Position, StoreError};

/// An event id that is already stored, and where.
#[derive(Debug, Clone)]
pub(crate) struct StoredId {
    pub id: Uuid,
    pub stream_id: String,
    pub version: u64,
    pub position: Position,
    pub recorded_at: DateTime<Utc>,
    pub hash: String,
}

/// What the writer must do with an append that passed the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Every event is stored already: answer with the original result, write nothing.
    AlreadyAppended(AppendResult),
    /// Write the events with versions `first_version`, `first_version + 1`, ...
    Write { first_version: u64 },
}

/// Which uniqueness an insert broke (another writer got there first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UniqueViolation {
    StreamVersion,
    EventId,
}

/// Why an append transaction stopped: a rule said no, or the database did.
/// Kept apart so the backend can look at a unique violation before it becomes a
/// [`StoreError`].
#[derive(Debug)]
pub(crate) enum AppendFailure {
    Rule(StoreError),
    Database(sqlx::Error),
}

impl From<StoreError> for AppendFailure {
    fn from(e: StoreError) -> Self {
        AppendFailure::Rule(e)
    }
}

impl From<AppendFailure> for StoreError {
    fn from(failure: AppendFailure) -> Self {
        match failure {
            AppendFailure::Rule(e) => e,
            AppendFailure::Database(e) => e.into(),
        }
    }
}

impl From<sqlx::Error> for AppendFailure {
    fn from(e: sqlx::Error) -> Self {
        AppendFailure::Database(e)
    }
}

/// Rejects what no backend can take, before touching the database.
pub(crate) fn validate(stream: &str, events: &[NewEvent]) -> Result<(), StoreError> {
    if stream.trim().is_empty() {
        return Err(StoreError::Invalid(
            "the stream name must not be empty".into(),
        ));
    }
    if events.is_empty() {
        return Err(StoreError::Invalid(format!(
            "an append to {stream} must carry at least one event"
        )));
    }
    let mut seen = HashSet::with_capacity(events.len());
    if let Some(dup) = events.iter().find(|e| !seen.insert(e.id)) {
        return Err(StoreError::Invalid(format!(
            "event id {} appears twice in one append to {stream}",
            dup.id
        )));
    }
    Ok(())
}

/// Applies the idempotency rule, then the expected-version rule.
///
/// `stored` are the rows whose id is among the events' ids (any order);
/// `current` is the stream's last version (`None`: no such stream).
pub(crate) fn decide(
    stream: &str,
    expected: ExpectedVersion,
    events: &[NewEvent],
    mut stored: Vec<StoredId>,
    current: Option<u64>,
) -> Result<Decision, StoreError> {
    if !stored.is_empty() {
        stored.sort_by_key(|s| s.version);
        return repeated(stream, events, &stored).map(Decision::AlreadyAppended);
    }
    let matches = match expected {
        ExpectedVersion::Any => true,
        ExpectedVersion::NoStream => current.is_none(),
        ExpectedVersion::Exact(n) => current == Some(n),
    };
    if !matches {
        return Err(StoreError::Conflict {
            stream: stream.to_string(),
            expected,
            actual: current,
        });
    }
    Ok(Decision::Write {
        first_version: current.map_or(0, |v| v + 1),
    })
}

/// After an insert broke a uniqueness, decides again on a fresh read. Another
/// writer (one not sharing our lock: another process on SQLite, or one bypassing
/// the store) got in between, so the append either repeats what that writer did,
/// or it conflicts with it.
pub(crate) fn after_unique_violation(
    violation: UniqueViolation,
    stream: &str,
    expected: ExpectedVersion,
    events: &[NewEvent],
    stored: Vec<StoredId>,
    current: Option<u64>,
) -> Result<AppendResult, StoreError> {
    match decide(stream, expected, events, stored, current)? {
        Decision::AlreadyAppended(result) => Ok(result),
        // The fresh read says we could write, yet the database said no: the
        // other writer's version is what we raced for, so it is a conflict even
        // under `Any` (the caller reloads and retries, as for any conflict).
        Decision::Write { .. } => match violation {
            UniqueViolation::StreamVersion => Err(StoreError::Conflict {
                stream: stream.to_string(),
                expected,
                actual: current,
            }),
            UniqueViolation::EventId => Err(StoreError::IdempotencyMismatch {
                stream: stream.to_string(),
                detail: "an event id was stored concurrently by another append".into(),
            }),
        },
    }
}

/// Tells which uniqueness a database error broke, if it is a unique violation
/// on the events table at all.
pub(crate) fn unique_violation(e: &sqlx::Error) -> Option<UniqueViolation> {
    let db = e.as_database_error()?;
    if db.kind() != sqlx::error::ErrorKind::UniqueViolation {
        return None;
    }
    // PostgreSQL names the constraint; SQLite only names the columns.
    let message = db.message();
    match db.constraint() {
        Some("events_id_unique") => Some(UniqueViolation::EventId),
        Some("events_stream_version_unique") => Some(UniqueViolation::StreamVersion),
        Some(_) => None,
        None if message.contains("events.id") => Some(UniqueViolation::EventId),
        None if message.contains("events.stream_id") => Some(UniqueViolation::StreamVersion),
        None => None,
    }
}

/// `stored` sorted by version. A repeat only if it is exactly the same append:
/// every id, in the same stream, at consecutive versions in the same order.
fn repeated(
    stream: &str,
    events: &[NewEvent],
    stored: &[StoredId],
) -> Result<AppendResult, StoreError> {
    let mismatch = |detail: String| StoreError::IdempotencyMismatch {
        stream: stream.to_string(),
        detail,
    };
    if let Some(elsewhere) = stored.iter().find(|s| s.stream_id != stream) {
        return Err(mismatch(format!(
            "event {} is stored in stream {}",
            elsewhere.id, elsewhere.stream_id
        )));
    }
    if stored.len() != events.len() {
        return Err(mismatch(format!(
            "{} of the {} event ids are stored already",
            stored.len(),
            events.len()
        )));
    }
    let first = &stored[0];
    let same_append = events
        .iter()
        .zip(stored)
        .enumerate()
        .all(|(i, (event, row))| event.id == row.id && row.version == first.version + i as u64);
    if !same_append {
        return Err(mismatch(
            "the event ids are stored, but not as one append in this order".into(),
        ));
    }
    let last = &stored[stored.len() - 1];
    Ok(AppendResult {
        last_version: last.version,
        first_position: first.position,
        last_position: last.position,
        events: stored
            .iter()
            .map(|row| AppendedEvent {
                position: row.position,
                recorded_at: row.recorded_at,
                hash: row.hash.clone(),
            })
            .collect(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An event with a fresh id and an empty payload (the group and queue tests
    /// use it too).
    pub(crate) fn event() -> NewEvent {
        NewEvent {
            id: Uuid::new_v4(),
            event_type: "Tested".into(),
            schema_version: 1,
            data: serde_json::json!({}),
            metadata: serde_json::json!({}),
        }
    }

    fn stored(e: &NewEvent, stream: &str, version: u64, position: u64) -> StoredId {
        StoredId {
            id: e.id,
            stream_id: stream.into(),
            version,
            position: Position::from_sequence(position),
            recorded_at: at(position),
            hash: format!("h{position}"),
        }
    }

    fn at(position: u64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + position as i64, 0).expect("a valid time")
    }

    /// A retry after the stream moved on is still recognised as the same append.
    #[test]
    fn a_full_repeat_wins_over_a_stale_expected_version() {
        let (a, b) = (event(), event());
        let rows = vec![stored(&b, "s", 4, 11), stored(&a, "s", 3, 10)];
        let decision = decide("s", ExpectedVersion::Exact(2), &[a, b], rows, Some(9)).unwrap();
        assert_eq!(
            decision,
            Decision::AlreadyAppended(AppendResult {
                last_version: 4,
                first_position: Position::from_sequence(10),
                last_position: Position::from_sequence(11),
                events: vec![
                    AppendedEvent {
                        position: Position::from_sequence(10),
                        recorded_at: at(10),
                        hash: "h10".into(),
                    },
                    AppendedEvent {
                        position: Position::from_sequence(11),
                        recorded_at: at(11),
                        hash: "h11".into(),
                    },
                ],
            })
        );
    }

    /// The same ids in another order are not the same append.
    #[test]
    fn stored_ids_in_another_order_are_a_mismatch() {
        let (a, b) = (event(), event());
        let rows = vec![stored(&b, "s", 0, 1), stored(&a, "s", 1, 2)];
        let err = decide("s", ExpectedVersion::Any, &[a, b], rows, Some(1)).unwrap_err();
        assert!(matches!(err, StoreError::IdempotencyMismatch { .. }));
    }

    /// Ids stored under another stream are a caller bug, not a repeat.
    #[test]
    fn ids_stored_in_another_stream_are_a_mismatch() {
        let a = event();
        let rows = vec![stored(&a, "other", 0, 1)];
        let err = decide("s", ExpectedVersion::Any, &[a], rows, None).unwrap_err();
        assert!(matches!(err, StoreError::IdempotencyMismatch { .. }));
    }

    /// Two events with one id cannot both be stored; say so before the database does.
    #[test]
    fn an_append_repeating_an_id_is_invalid() {
        let a = event();
        let err = validate("s", &[a.clone(), a]).unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)));
    }
}
