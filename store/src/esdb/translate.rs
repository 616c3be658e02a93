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
mod tests {
    use super::*;
    use std::collections::HashMap;

    use eventstore::{Endpoint, GrpcConnectionError};

    fn position(commit: u64, prepare: u64) -> Position {
        Position { commit, prepare }
    }

    /// A cursor made from a server position parses back to the same position,
    /// including the two-number form the SQL backends never produce.
    #[test]
    fn a_server_position_survives_the_cursor_round_trip() {
        for (commit, prepare) in [(0, 0), (1234, 1234), (1234, 1300), (u64::MAX, u64::MAX - 1)] {
            let server = eventstore::Position { commit, prepare };
            let cursor = position_from_server(server).to_cursor();
            let parsed: Position = cursor.parse().unwrap();
            assert_eq!(position_to_server(parsed), server, "cursor {cursor}");
        }
    }

    /// The store orders positions exactly as the server does: by commit, then by
    /// prepare (the events of one multi-event append share a commit position).
    #[test]
    fn positions_order_as_the_server_orders_them() {
        let mut pairs = [(10, 12), (10, 10), (9, 20), (11, 11), (10, 11)];
        let mut ours: Vec<Position> = pairs.iter().map(|&(c, p)| position(c, p)).collect();
        ours.sort();
        pairs.sort_by_key(|&(commit, prepare)| eventstore::Position { commit, prepare });
        let theirs: Vec<Position> = pairs.iter().map(|&(c, p)| position(c, p)).collect();
        assert_eq!(ours, theirs);
        assert_eq!(ours.first(), Some(&position(9, 20)));
        assert!(Position::START < ours[0]);
    }

    /// Reading after START starts at the beginning of `$all`; reading after any
    /// other position starts at that very position (the caller skips it).
    #[test]
    fn reading_after_start_begins_at_the_beginning_of_the_log() {
        assert_eq!(start_after(Position::START), StreamPosition::Start);
        assert_eq!(
            start_after(position(7, 5)),
            StreamPosition::Position(eventstore::Position {
                commit: 7,
                prepare: 5
            })
        );
    }

    /// Each expected version has the server-side counterpart with the same meaning.
    #[test]
    fn expected_versions_map_to_the_same_expected_revisions() {
        assert_eq!(
            expected_revision(ExpectedVersion::Any),
            ExpectedRevision::Any
        );
        assert_eq!(
            expected_revision(ExpectedVersion::NoStream),
            ExpectedRevision::NoStream
        );
        assert_eq!(
            expected_revision(ExpectedVersion::Exact(0)),
            ExpectedRevision::Exact(0)
        );
        assert_eq!(
            expected_revision(ExpectedVersion::Exact(41)),
            ExpectedRevision::Exact(41)
        );
    }

    /// A wrong expected version is a conflict carrying the stream's actual
    /// version, `None` when the stream does not exist.
    #[test]
    fn a_wrong_expected_version_is_a_conflict_with_the_actual_version() {
        let conflict = |current| {
            store_error(
                eventstore::Error::WrongExpectedVersion {
                    expected: ExpectedRevision::Exact(3),
                    current,
                },
                "ticket-1",
                ExpectedVersion::Exact(3),
            )
        };
        match conflict(CurrentRevision::Current(5)) {
            StoreError::Conflict {
                stream,
                expected,
                actual,
            } => {
                assert_eq!(stream, "ticket-1");
                assert_eq!(expected, ExpectedVersion::Exact(3));
                assert_eq!(actual, Some(5));
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert!(matches!(
            conflict(CurrentRevision::NoStream),
            StoreError::Conflict { actual: None, .. }
        ));
    }

    /// Every client error lands on the store error callers can act on.
    #[test]
    fn client_errors_map_to_the_store_errors_callers_branch_on() {
        use eventstore::Error as E;
        let map = |e| store_error(e, "ticket-1", ExpectedVersion::Any);

        assert!(matches!(map(E::ResourceDeleted), StoreError::StreamDeleted(s) if s == "ticket-1"));
        assert!(matches!(
            map(E::InternalParsingError("bad".into())),
            StoreError::Corrupt(_)
        ));
        for invalid in [
            E::ResourceNotFound,
            E::ResourceAlreadyExists,
            E::Grpc {
                code: Code::InvalidArgument,
                message: "bad position".into(),
            },
        ] {
            assert!(matches!(map(invalid), StoreError::Invalid(_)));
        }
        for unavailable in [
            E::ServerError("gone".into()),
            E::NotLeaderException(Endpoint {
                host: "node2".into(),
                port: 2113,
            }),
            E::ConnectionClosed,
            E::GrpcConnectionError(GrpcConnectionError::MaxDiscoveryAttemptReached(3)),
            E::GrpcConnectionError(GrpcConnectionError::Grpc("refused".into())),
            E::Grpc {
                code: Code::Unavailable,
                message: "down".into(),
            },
            E::AccessDenied,
            E::UnsupportedFeature,
            E::InternalClientError,
            E::DeadlineExceeded,
            E::InitializationError("tls".into()),
            E::IllegalStateError("state".into()),
        ] {
            assert!(matches!(map(unavailable), StoreError::Unavailable(_)));
        }
    }

    /// Lost connections, leader changes and timeouts are retried; refusals,
    /// conflicts and bad credentials are not, since they would fail again.
    #[test]
    fn only_connection_and_leader_failures_are_retried() {
        use eventstore::Error as E;
        assert!(is_transient(&E::ConnectionClosed));
        assert!(is_transient(&E::ServerError("gone".into())));
        assert!(is_transient(&E::DeadlineExceeded));
        assert!(is_transient(&E::NotLeaderException(Endpoint {
            host: "node2".into(),
            port: 2113
        })));
        assert!(is_transient(&E::GrpcConnectionError(
            GrpcConnectionError::Grpc("refused".into())
        )));
        assert!(!is_transient(&E::AccessDenied));
        assert!(!is_transient(&E::ResourceDeleted));
        assert!(!is_transient(&E::WrongExpectedVersion {
            expected: ExpectedRevision::NoStream,
            current: CurrentRevision::Current(0),
        }));
        assert!(!is_transient(&E::Grpc {
            code: Code::InvalidArgument,
            message: "bad".into()
        }));

        assert!(needs_new_client(&E::ConnectionClosed));
        assert!(!needs_new_client(&E::ServerError("gone".into())));
    }

    /// The server-side filter keeps system streams out and, with a namespace,
    /// everything outside it. The filter's fields are private to the client, so
    /// this reads them from its `Debug` form.
    #[test]
    fn the_log_filter_selects_application_streams_by_name() {
        let plain = format!("{:?}", log_filter(""));
        assert!(plain.contains("based_on_stream: true"), "{plain}");
        assert!(plain.contains(r#"regex: Some("^[^$]")"#), "{plain}");

        let namespaced = format!("{:?}", log_filter("test-42/"));
        assert!(namespaced.contains("based_on_stream: true"), "{namespaced}");
        assert!(
            namespaced.contains(r#"prefixes: ["test-42/"]"#),
            "{namespaced}"
        );
        assert!(namespaced.contains("regex: None"), "{namespaced}");
    }

    /// Application events pass; system streams and system event types do not.
    #[test]
    fn only_application_events_pass_the_client_side_filter() {
        assert!(is_application_event("ticket-0b7e", "TicketCreated"));
        assert!(is_application_event("user-42", "ProfileUpdated"));
        assert!(is_application_event(
            "ticket-references",
            "ReferenceReserved"
        ));
        assert!(!is_application_event(
            "$stats-127.0.0.1:2113",
            "$statsCollected"
        ));
        assert!(!is_application_event("$$ticket-0b7e", "$metadata"));
        assert!(!is_application_event("$ce-ticket", "$>"));
        assert!(!is_application_event("$ce-ticket", "TicketCreated"));
        assert!(!is_application_event("ticket-0b7e", "$streamDeleted"));
    }

    fn server_event(
        stream: &str,
        data: &[u8],
        custom_metadata: &[u8],
    ) -> eventstore::RecordedEvent {
        eventstore::RecordedEvent {
            stream_id: stream.into(),
            id: uuid::Uuid::new_v4(),
            revision: 3,
            event_type: "TicketCreated".into(),
            data: data.to_vec().into(),
            metadata: HashMap::new(),
            custom_metadata: custom_metadata.to_vec().into(),
            is_json: true,
            position: eventstore::Position {
                commit: 100,
                prepare: 120,
            },
            created: chrono::Utc::now(),
        }
    }

    /// What an append sends comes back whole: data, metadata, schema version,
    /// id, version and position, the stream named without the namespace.
    #[test]
    fn a_stored_event_decodes_to_what_was_appended() {
        let metadata = serde_json::json!({"correlation_id": "c-1"});
        let envelope = serde_json::to_vec(&serde_json::json!({
            "schema_version": 2,
            "metadata": metadata,
        }))
        .unwrap();
        let server = server_event("ns/ticket-1", br#"{"title":"Printer"}"#, &envelope);
        let event = recorded_event(&server, "ns/").unwrap();
        assert_eq!(event.id, server.id);
        assert_eq!(event.stream_id, "ticket-1");
        assert_eq!(event.version, 3);
        assert_eq!(event.position, position(100, 120));
        assert_eq!(event.event_type, "TicketCreated");
        assert_eq!(event.schema_version, 2);
        assert_eq!(event.data, serde_json::json!({"title": "Printer"}));
        assert_eq!(event.metadata, metadata);

        let sent = NewEvent {
            id: uuid::Uuid::new_v4(),
            event_type: "TicketCreated".into(),
            schema_version: 2,
            data: serde_json::json!({}),
            metadata: serde_json::json!(null),
        };
        assert!(event_data(&sent).is_ok());
    }

    /// Events written by someone else (no envelope, or not JSON) are reported
    /// as corrupt, never unwrapped.
    #[test]
    fn an_event_that_is_not_ours_is_corrupt_not_a_panic() {
        let no_envelope = server_event("ticket-1", b"{}", b"");
        assert!(matches!(
            recorded_event(&no_envelope, ""),
            Err(StoreError::Corrupt(_))
        ));
        let not_json = server_event(
            "ticket-1",
            b"\x00binary",
            br#"{"schema_version":1,"metadata":{}}"#,
        );
        assert!(matches!(
            recorded_event(&not_json, ""),
            Err(StoreError::Corrupt(_))
        ));
        let elsewhere = server_event(
            "other/ticket-1",
            b"{}",
            br#"{"schema_version":1,"metadata":{}}"#,
        );
        assert!(matches!(
            recorded_event(&elsewhere, "ns/"),
            Err(StoreError::Corrupt(_))
        ));
    }
}
