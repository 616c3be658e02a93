//! Properties of the whole domain, over random command sequences run through
//! `decide` and `evolve` the way the command service does: every accepted
//! event is appended, every refusal appends nothing.

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::history::DIFFED_FIELDS;
use domain::*;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

const TICKET: Uuid = Uuid::from_u128(1);

fn actors() -> Vec<Actor> {
    vec![
        Actor::new("dave", vec![Role::Admin], vec![]),
        Actor::new("bob", vec![Role::Agent], vec!["support".into()]),
        Actor::new("carol", vec![Role::Agent], vec!["billing".into()]),
        Actor::new("alice", vec![Role::Requester], vec![]),
    ]
}

fn user() -> impl Strategy<Value = String> {
    select(vec!["dave", "bob", "carol", "alice", "erin", ""]).prop_map(String::from)
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "",
            "  ",
            "Printer on fire",
            " Printer smoking ",
            "VPN"
        ])
        .prop_map(String::from),
        "[a-z ]{1,30}",
        Just("x".repeat(201)),
    ]
}

fn tag() -> impl Strategy<Value = String> {
    select(vec![
        "bug",
        "Bug",
        "needs triage",
        "os:linux",
        "c++",
        "",
        "vip",
    ])
    .prop_map(String::from)
}

fn queue() -> impl Strategy<Value = String> {
    select(vec!["support", "billing", " support ", "", "facilities"]).prop_map(String::from)
}

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

fn related() -> impl Strategy<Value = Uuid> {
    select(vec![TICKET, Uuid::from_u128(2), Uuid::from_u128(3)])
}

/// What the caller found of the other ticket: mostly a live one.
fn related_ticket() -> impl Strategy<Value = RelatedTicket> {
    prop_oneof![
        3 => Just(RelatedTicket::Live),
        1 => Just(RelatedTicket::Unknown),
        1 => Just(RelatedTicket::Deleted {
            reference: "TCK-000002".into()
        }),
    ]
}

fn status() -> impl Strategy<Value = TicketStatus> {
    select(TicketStatus::ALL.to_vec())
}

fn priority() -> impl Strategy<Value = TicketPriority> {
    select(TicketPriority::ALL.to_vec())
}

fn create() -> impl Strategy<Value = Command> {
    (
        text(),
        prop::option::of(text()),
        priority(),
        queue(),
        prop::collection::vec(tag(), 0..3),
    )
        .prop_map(
            |(request, description, priority, queue, tags)| Command::Create {
                ticket_id: TICKET,
                reference: "TCK-000001".into(),
                request,
                description,
                priority,
                queue,
                tags,
            },
        )
}

fn valid_create() -> impl Strategy<Value = Command> {
    (
        priority(),
        select(vec!["support", "billing"]),
        prop::collection::vec(tag(), 0..3),
    )
        .prop_map(|(priority, queue, tags)| Command::Create {
            ticket_id: TICKET,
            reference: "TCK-000001".into(),
            request: "Printer on fire".into(),
            description: None,
            priority,
            queue: queue.into(),
            tags: tags
                .into_iter()
                .filter(|t| t != "c++" && !t.is_empty())
                .collect(),
        })
}

fn command() -> impl Strategy<Value = Command> {
    let roles = prop::option::of(select(vec![
        vec![Role::Agent],
        vec![Role::Admin],
        vec![Role::Requester],
    ]));
    prop_oneof![
        1 => create(),
        3 => (prop::option::of(text()), prop::option::of(text()))
            .prop_map(|(request, description)| Command::Update { request, description }),
        3 => (user(), roles).prop_map(|(assignee_id, assignee_roles)| Command::Assign {
            assignee_id,
            assignee_roles,
        }),
        2 => Just(Command::Unassign),
        6 => (status(), prop::option::of((uuid(), text())))
            .prop_map(|(status, comment)| Command::ChangeStatus { status, comment }),
        2 => priority().prop_map(|priority| Command::ChangePriority { priority }),
        5 => (uuid(), text(), any::<bool>()).prop_map(|(comment_id, body, internal)| {
            Command::Comment { comment_id, body, internal }
        }),
        2 => (uuid(), text(), select(vec!["/a", "https://x/y", "ftp://z"]), prop::option::of(-1..3i64))
            .prop_map(|(attachment_id, name, url, size)| Command::AddAttachment {
                attachment_id,
                name,
                url: url.into(),
                mime_type: None,
                size,
            }),
        3 => tag().prop_map(|tag| Command::AddTag { tag }),
        2 => tag().prop_map(|tag| Command::RemoveTag { tag }),
        2 => (related(), related_ticket())
            .prop_map(|(related_id, related)| Command::Relate { related_id, related }),
        1 => (related(), related_ticket())
            .prop_map(|(related_id, related)| Command::Unrelate { related_id, related }),
        3 => user().prop_map(|user_id| Command::Watch { user_id }),
        2 => user().prop_map(|user_id| Command::Unwatch { user_id }),
        2 => queue().prop_map(|queue| Command::Move { queue }),
        1 => prop::option::of(text()).prop_map(|reason| Command::Delete { reason }),
    ]
}

/// Who acts (an index into `actors()`), what they ask, and how many seconds
/// after the previous command (sometimes none: two events may share a time).
fn script() -> impl Strategy<Value = Vec<(usize, Command, i64)>> {
    // The first Create is valid, so most scripts exercise a live ticket; later
    // ones (valid or not) hit an existing ticket.
    let first = (0..4usize, valid_create(), Just(0i64));
    let rest = prop::collection::vec((0..4usize, command(), 0..120i64), 0..60);
    (first, rest).prop_map(|(first, mut rest)| {
        rest.insert(0, first);
        rest
    })
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap()
}

/// Runs the script; returns every accepted event and the state as it was
/// evolved one event at a time.
fn run(script: &[(usize, Command, i64)]) -> (Vec<TicketEvent>, Option<Ticket>) {
    let actors = actors();
    let mut now = t0();
    let mut state: Option<Ticket> = None;
    let mut events = vec![];
    for (who, command, gap) in script {
        now += Duration::seconds(*gap);
        if let Ok(accepted) = decide(state.as_ref(), command, &actors[*who], now) {
            for event in accepted {
                state = evolve(state, &event);
                events.push(event);
            }
        }
    }
    (events, state)
}

fn serialised(ticket: &Ticket) -> serde_json::Map<String, Value> {
    match serde_json::to_value(ticket).unwrap() {
        Value::Object(map) => map,
        other => panic!("a ticket serialises to an object, not {other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every script starts from a created ticket, so the properties below are
    /// never vacuous.
    #[test]
    fn every_script_creates_a_ticket(script in script()) {
        let (events, _) = run(&script);
        prop_assert!(!events.is_empty());
    }

    /// (1) Folding the whole log gives the state built event by event.
    #[test]
    fn folding_all_events_equals_applying_them_one_by_one(script in script()) {
        let (events, state) = run(&script);
        prop_assert_eq!(fold(&events), state);
    }

    /// Versions count events, and no command leaves the ticket's invariants
    /// broken (sorted, unique lists; a status consistent with its dates).
    #[test]
    fn versions_count_events_and_lists_stay_sorted(script in script()) {
        let (events, _) = run(&script);
        for (index, step) in steps(&events).iter().enumerate() {
            let t = &step.after;
            prop_assert_eq!(t.version, index as u64);
            prop_assert!(t.tags.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(t.watchers.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(t.related.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(t.tags.len() <= 50);
            prop_assert!(!t.related.contains(&t.id));
            let resolved = matches!(t.status, TicketStatus::Resolved | TicketStatus::Closed);
            prop_assert_eq!(t.resolved_at.is_some(), resolved);
        }
    }

    /// (2) Changes chain: each field's old value is the new value of its
    /// previous change, starting from the state right after creation.
    #[test]
    fn every_field_change_starts_where_the_previous_one_ended(script in script()) {
        let (events, _) = run(&script);
        let steps = steps(&events);
        let Some(created) = steps.first() else { return Ok(()) };
        prop_assert!(created.changes.iter().all(|c| c.old_value.is_null()));
        let after_creation = serialised(&created.after);
        let mut last: HashMap<&str, Value> = DIFFED_FIELDS
            .iter()
            .map(|f| (*f, after_creation.get(*f).cloned().unwrap_or(Value::Null)))
            .collect();
        for step in &steps[1..] {
            prop_assert_eq!(&step.changes, &diff(step.before.as_ref(), &step.after));
            for change in &step.changes {
                let field = change.field.as_str();
                prop_assert_ne!(&change.old_value, &change.new_value);
                prop_assert_eq!(Some(&change.old_value), last.get(field), "field {}", field);
                last.insert(DIFFED_FIELDS.iter().find(|f| **f == field).unwrap(), change.new_value.clone());
            }
        }
        let end = serialised(&steps.last().unwrap().after);
        for field in DIFFED_FIELDS {
            prop_assert_eq!(&last[field], end.get(field).unwrap_or(&Value::Null));
        }
    }

    /// (3) Every event survives the store's encoding.
    #[test]
    fn every_event_decodes_to_itself(script in script()) {
        let (events, _) = run(&script);
        for event in events {
            let encoded = encode(&event);
            let decoded = decode(encoded.event_type, encoded.schema_version, &encoded.data);
            prop_assert_eq!(decoded, Ok(event));
        }
    }

    /// (4) History steps and time travel by version agree.
    #[test]
    fn a_step_ends_in_the_state_as_of_its_version(script in script()) {
        let (events, _) = run(&script);
        for version in 0..=events.len() as u64 {
            let step = step_at(&events, version);
            prop_assert_eq!(step.map(|s| s.after), as_of_version(&events, version));
        }
    }

    /// Time travel to an event's time gives the state after the last event
    /// recorded at that instant.
    #[test]
    fn time_travel_to_an_events_time_includes_every_event_of_that_instant(script in script()) {
        let (events, _) = run(&script);
        for event in &events {
            let expected = fold(&events.iter().filter(|e| e.at <= event.at).cloned().collect::<Vec<_>>());
            prop_assert_eq!(as_of_time(&events, event.at), expected);
        }
    }
}
