//! Pure translations between the store's vocabulary and the `eventstore` client's:
//! positions, expected versions, the `$all` filter, stored events and errors.
//! Nothing here does I/O, so all of it is unit-tested without a server.

use eventstore::{
    CurrentRevision, EventData, ExpectedRevision, StreamPosition, SubscriptionFilter,
};
use serde::{Deserialize, Serialize};
use tonic::Code;

use crate::{ExpectedVersion, NewEvent, Position, RecordedEvent, StoreError};

/// The server's position of an event in `$all` as the store's. Same fields,
/// same order (commit, then prepare), so cursors compare as the log does.
pub(crate) fn position_from_server(p: eventstore::Position) -> Position {
    Position {
        commit: p.commit,
        prepare: p.prepare,
    }
}

pub(crate) fn position_to_server(p: Position) -> eventstore::Position {
    eventstore::Position {
        commit: p.commit,
        prepare: p.prepare,
    }
}

/// Where a forward read or a subscription of `$all` starts for "after `after`".
/// [`Position::START`] is the very beginning; any other position is the event
/// the caller last saw, which the caller must then skip (a read starting at a
/// position includes the event there).
pub(crate) fn start_after(after: Position) -> StreamPosition<eventstore::Position> {
    if after == Position::START {
        StreamPosition::Start
    } else {
        StreamPosition::Position(position_to_server(after))
    }
}

/// The store's expected version as the client's expected revision. Revisions
/// and versions both count from 0, so `Exact(n)` is the same number.
pub(crate) fn expected_revision(expected: ExpectedVersion) -> ExpectedRevision {
    match expected {
        ExpectedVersion::Any => ExpectedRevision::Any,
        ExpectedVersion::NoStream => ExpectedRevision::NoStream,
        ExpectedVersion::Exact(n) => ExpectedRevision::Exact(n),
    }
}

/// The server's view of a stream's last revision, as the store reports it in a
/// conflict (`None`: no such stream).
pub(crate) fn actual_version(current: CurrentRevision) -> Option<u64> {
    match current {
        CurrentRevision::Current(n) => Some(n),
        CurrentRevision::NoStream => None,
    }
}

/// The server-side filter for reading `$all`: only streams of this store.
///
/// Without a namespace, every stream whose name does not start with `$` (the
/// server's own: `$stats-…`, `$$<stream>` metadata, projection outputs…);
/// with one, only the streams under it, which also keeps out the streams of
/// anything else sharing the server. Filtering on stream names rather than
/// event types also drops the `$>` links projections write, whatever their
/// target. The few `$`-typed events the server writes into ordinary streams
/// (`$streamDeleted` tombstones) are dropped by [`is_application_event`].
pub(crate) fn log_filter(namespace: &str) -> SubscriptionFilter {
    if namespace.is_empty() {
        SubscriptionFilter::on_stream_name().regex("^[^$]")
    } else {
        SubscriptionFilter::on_stream_name().add_prefix(namespace)
    }
}

/// Whether an event read from `$all` belongs to the application: neither a
/// system stream nor a system event type. Applied to every event on the client
/// too, as a second line behind the server-side filter.
pub(crate) fn is_application_event(stream: &str, event_type: &str) -> bool {
    !stream.starts_with('$') && !event_type.starts_with('$')
}

/// How the store's `schema_version` and `metadata` travel in an event's
/// user metadata: one JSON object, so any metadata value survives the trip.
#[derive(Serialize, Deserialize)]
struct Envelope {
    schema_version: i32,
    metadata: serde_json::Value,
}

/// A new event as the client sends it, under its own id: the server then
/// de-duplicates with the same ids as the store does.
pub(crate) fn event_data(event: &NewEvent) -> Result<EventData, StoreError> {
    let invalid = |e: serde_json::Error| StoreError::Invalid(format!("event {}: {e}", event.id));
    EventData::json(&event.event_type, &event.data)
        .map_err(invalid)?
        .id(event.id)
        .metadata_as_json(&Envelope {
            schema_version: event.schema_version,
            metadata: event.metadata.clone(),
        })
        .map_err(invalid)
}

/// A stored event back in the store's terms, its stream named without the
/// store's namespace. Anything that does not decode is [`StoreError::Corrupt`].
pub(crate) fn recorded_event(
    event: &eventstore::RecordedEvent,
    namespace: &str,
) -> Result<RecordedEvent, StoreError> {
    let corrupt = |what: String| {
        StoreError::Corrupt(format!(
            "event {} at {}@{}: {what}",
            event.id, event.stream_id, event.revision
        ))
    };
    let stream_id = event
        .stream_id
        .strip_prefix(namespace)
        .ok_or_else(|| corrupt(format!("stream outside the namespace {namespace:?}")))?;
    let data = serde_json::from_slice(&event.data)
        .map_err(|e| corrupt(format!("data is not JSON: {e}")))?;
    let envelope: Envelope = serde_json::from_slice(&event.custom_metadata)
        .map_err(|e| corrupt(format!("metadata is not this store's: {e}")))?;
    Ok(RecordedEvent {
        id: event.id,
        position: position_from_server(event.position),
        stream_id: stream_id.to_string(),
        version: event.revision,
        event_type: event.event_type.clone(),
        schema_version: envelope.schema_version,
        data,
        metadata: envelope.metadata,
        recorded_at: event.created,
        // EventStoreDB events carry no hash: see `chain` and the `esdb` module.
        hash: String::new(),
    })
}

/// Whether an error is worth another attempt after a pause: the connection
/// dropped, the node went away or stepped down as leader, or it did not answer
/// in time. Everything else will fail the same way again.
pub(crate) fn is_transient(e: &eventstore::Error) -> bool {
    use eventstore::Error as E;
    match e {
        E::ServerError(_)
        | E::NotLeaderException(_)
        | E::ConnectionClosed
        | E::GrpcConnectionError(_)
        | E::DeadlineExceeded => true,
        E::Grpc { code, .. } => matches!(
            code,
            Code::Unavailable
                | Code::Unknown
                | Code::Aborted
                | Code::Cancelled
                | Code::ResourceExhausted
                | Code::Internal
        ),
        _ => false,
    }
}

/// Whether the client gave up on its connection for good. The 4.0.0 client
/// ends its connection task when it cannot (re)connect, and every later call
/// then fails with `ConnectionClosed`; only a new client connects again.
pub(crate) fn needs_new_client(e: &eventstore::Error) -> bool {
    matches!(
        e,
        eventstore::Error::ConnectionClosed | eventstore::Error::GrpcConnectionError(_)
    )
}

/// Every client error as the store's typed error. `stream` and `expected` say
/// what the failed call was about (for `$all`: `"$all"` and `Any`).
pub(crate) fn store_error(
    e: eventstore::Error,
    stream: &str,
    expected: ExpectedVersion,
) -> StoreError {
    use eventstore::Error as E;
    match e {
        E::WrongExpectedVersion { current, .. } => StoreError::Conflict {
            stream: stream.to_string(),
            expected,
            actual: actual_version(current),
        },
        E::ResourceDeleted => StoreError::StreamDeleted(stream.to_string()),
        // The client could not decode what the server sent.
        E::InternalParsingError(detail) => StoreError::Corrupt(detail),
        E::Grpc {
            code: Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition,
            message,
        } => StoreError::Invalid(format!(
            "EventStoreDB refused the request on {stream}: {message}"
        )),
        E::ResourceNotFound | E::ResourceAlreadyExists => {
            StoreError::Invalid(format!("EventStoreDB on {stream}: {e}"))
        }
        // Credentials, server version and client state are for an operator to
        // fix; the store cannot be used until then, which is what
        // `Unavailable` tells callers. Transient failures land here too.
        E::AccessDenied
        | E::UnsupportedFeature
        | E::ServerError(_)
        | E::NotLeaderException(_)
        | E::ConnectionClosed
        | E::GrpcConnectionError(_)
        | E::Grpc { .. }
        | E::InternalClientError
        | E::DeadlineExceeded
        | E::InitializationError(_)
        | E::IllegalStateError(_) => StoreError::Unavailable(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
