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

fn server_event(stream: &str, data: &[u8], custom_metadata: &[u8]) -> eventstore::RecordedEvent {
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
