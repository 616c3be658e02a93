use super::*;
use crate::spec::{one_of_each, t0};
use crate::TicketPriority;
use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

#[test]
fn every_event_type_has_one_distinct_stored_name() {
    let mut names: Vec<_> = TicketEventType::ALL.into_iter().map(stored_name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), TicketEventType::ALL.len());
    for kind in TicketEventType::ALL {
        assert_eq!(stored(kind).0, kind);
    }
}

#[test]
fn every_kind_of_event_survives_encoding_and_decoding() {
    let events = one_of_each();
    let kinds: std::collections::HashSet<_> = events.iter().map(TicketEvent::event_type).collect();
    assert_eq!(kinds.len(), TicketEventType::ALL.len(), "one of each kind");
    for event in events {
        let encoded = encode(&event);
        let decoded = decode(encoded.event_type, encoded.schema_version, &encoded.data);
        assert_eq!(decoded, Ok(event));
    }
}

/// Pins the stored format: changing it breaks every stream already written.
#[test]
fn a_created_event_is_stored_in_the_documented_shape() {
    let event = TicketEvent {
        actor: "alice".into(),
        at: t0(),
        change: TicketChange::Created {
            ticket_id: Uuid::from_u128(1),
            reference: "TCK-000001".into(),
            request: "Printer on fire".into(),
            description: None,
            priority: TicketPriority::High,
            queue: "support".into(),
            tags: vec!["hardware".into()],
        },
    };
    let encoded = encode(&event);
    assert_eq!(encoded.event_type, "TicketCreated");
    assert_eq!(encoded.schema_version, 2);
    assert_eq!(
        encoded.data,
        json!({
            "actor": "alice",
            "at": "2024-03-01T09:00:00Z",
            "ticketId": "00000000-0000-0000-0000-000000000001",
            "reference": "TCK-000001",
            "request": "Printer on fire",
            "description": null,
            "priority": "HIGH",
            "queue": "support",
            "tags": ["hardware"],
        })
    );
}

#[test]
fn an_update_tells_a_cleared_description_from_an_untouched_one() {
    let cleared = TicketChange::Updated {
        request: None,
        description: Some(None),
    };
    let event = TicketEvent {
        actor: "bob".into(),
        at: t0(),
        change: cleared,
    };
    let encoded = encode(&event);
    assert_eq!(encoded.data["description"], Value::Null);
    assert!(encoded.data.get("request").is_none());
    let untouched = json!({"actor": "bob", "at": "2024-03-01T09:00:00Z", "request": "x"});
    let decoded = decode("TicketUpdated", 1, &untouched).unwrap();
    assert_eq!(
        decoded.change,
        TicketChange::Updated {
            request: Some("x".into()),
            description: None,
        }
    );
}

#[test]
fn a_version_1_created_event_is_upcast_with_its_title_as_the_request() {
    let v1 = json!({
        "actor": "alice",
        "at": "2023-11-05T14:30:00.250+01:00",
        "ticketId": "6f1c2a52-3b4d-4e5f-8a9b-0c1d2e3f4a5b",
        "reference": "TCK-000007",
        "title": "VPN drops every hour",
        "description": "Since Monday",
        "priority": "CRITICAL",
        "queue": "network"
    });
    let event = decode("TicketCreated", 1, &v1).unwrap();
    assert_eq!(event.actor, "alice");
    assert_eq!(event.at.to_rfc3339(), "2023-11-05T13:30:00.250+00:00");
    assert_eq!(
        event.change,
        TicketChange::Created {
            ticket_id: "6f1c2a52-3b4d-4e5f-8a9b-0c1d2e3f4a5b".parse().unwrap(),
            reference: "TCK-000007".into(),
            request: "VPN drops every hour".into(),
            description: Some("Since Monday".into()),
            priority: TicketPriority::Critical,
            queue: "network".into(),
            tags: vec![],
        }
    );
}

#[test]
fn decoding_an_unknown_type_fails_with_unknown_type() {
    assert_eq!(
        decode("TicketExploded", 1, &json!({})),
        Err(DecodeError::UnknownType("TicketExploded".into()))
    );
}

#[test]
fn decoding_an_unknown_version_fails_with_unknown_version() {
    for (event_type, version) in [
        ("TicketCreated", 3),
        ("TicketCreated", 0),
        ("TicketAssigned", 2),
    ] {
        assert_eq!(
            decode(event_type, version, &json!({})),
            Err(DecodeError::UnknownVersion {
                event_type: event_type.into(),
                version
            })
        );
    }
}

#[test]
fn decoding_a_bad_payload_fails_with_bad_payload() {
    let at = "2024-03-01T09:00:00Z";
    for (event_type, data) in [
        ("TicketUnassigned", json!([])),
        ("TicketCreated", json!("nope")),
        ("TicketUnassigned", json!({"at": at})),
        ("TicketUnassigned", json!({"actor": "a", "at": "yesterday"})),
        (
            "TicketStatusChanged",
            json!({"actor": "a", "at": at, "status": "LOST"}),
        ),
        ("TicketAssigned", json!({"actor": "a", "at": at})),
    ] {
        let version = if event_type == "TicketCreated" { 2 } else { 1 };
        assert!(
            matches!(
                decode(event_type, version, &data),
                Err(DecodeError::BadPayload { .. })
            ),
            "{event_type} {data}"
        );
    }
}

/// The stored name is the variant, whatever the payload says: a stray `type`
/// field (never written by `encode`) neither overrides it nor breaks decoding.
#[test]
fn a_type_field_in_the_payload_does_not_override_the_stored_name() {
    let data = json!({
        "actor": "a",
        "at": "2024-03-01T09:00:00Z",
        "type": "TicketUnassigned",
        "tag": "vip",
    });
    let decoded = decode("TicketTagAdded", 1, &data).map(|e| e.change);
    assert_eq!(decoded, Ok(TicketChange::TagAdded { tag: "vip".into() }));
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-zA-Z0-9:_-]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::hash_map(
                prop_oneof![
                    Just("actor".to_string()),
                    Just("at".to_string()),
                    Just("title".to_string()),
                    Just("tags".to_string()),
                    "[a-zA-Z]{1,10}"
                ],
                inner,
                0..8
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    /// Whatever the log holds, decoding answers; it never panics.
    #[test]
    fn decoding_never_panics_on_any_input(
        index in 0..STORED.len() + 1,
        version in -1..4i32,
        data in any_json(),
    ) {
        let event_type = STORED.get(index).map_or("Nonsense", |(_, name, _)| *name);
        let _ = decode(event_type, version, &data);
    }
}
