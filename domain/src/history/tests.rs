use super::*;
use crate::spec::{agent, created, event, minutes, one_of_each, t0, then};
use crate::{fold, TicketChange, TicketStatus};
use serde_json::json;

#[test]
fn diff_compares_every_serialised_field_but_the_update_time_version_and_sla_records() {
    let mut history = one_of_each();
    history.pop(); // Deleted
    let ticket = fold(&history).unwrap();
    let mut keys: Vec<_> = fields(&ticket).keys().cloned().collect();
    // SLA records are not contract fields: their events carry what happened.
    keys.retain(|k| {
        !["updatedDate", "version", "slaWarnings", "slaBreaches"].contains(&k.as_str())
    });
    keys.sort();
    let mut diffed: Vec<_> = DIFFED_FIELDS.iter().map(|f| f.to_string()).collect();
    diffed.sort();
    assert_eq!(keys, diffed);
}

#[test]
fn creation_changes_every_non_null_field_from_null() {
    let ticket = fold(&[created()]).unwrap();
    let changes = diff(None, &ticket);
    let fields: Vec<_> = changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "id",
            "reference",
            "request",
            "status",
            "priority",
            "queue",
            "createdBy",
            "watchers",
            "tags",
            "relatedTickets",
            "comments",
            "attachments",
            "createdDate",
            "deleted",
        ]
    );
    assert!(changes.iter().all(|c| c.old_value.is_null()));
}

#[test]
fn a_status_change_shows_the_old_and_new_status_and_resolution_time() {
    let history = [
        created(),
        then(
            &agent(),
            TicketChange::StatusChanged {
                status: TicketStatus::Resolved,
            },
        ),
    ];
    let step = step_at(&history, 1).unwrap();
    assert_eq!(
        step.changes,
        vec![
            FieldChange {
                field: "status".into(),
                old_value: json!("OPEN"),
                new_value: json!("RESOLVED"),
            },
            FieldChange {
                field: "resolvedDate".into(),
                old_value: Value::Null,
                new_value: json!("2024-03-01T09:01:00Z"),
            },
        ]
    );
    assert_eq!(
        serde_json::to_value(&step.changes[0]).unwrap(),
        json!({"field": "status", "oldValue": "OPEN", "newValue": "RESOLVED"})
    );
}

#[test]
fn there_is_one_step_per_event_numbered_by_version() {
    let events = one_of_each();
    let steps = steps(&events);
    assert_eq!(steps.len(), events.len());
    for (index, step) in steps.iter().enumerate() {
        assert_eq!(step.version, index as u64);
        assert_eq!(step.after.version, step.version);
        assert_eq!(step.before.is_none(), index == 0);
        assert_eq!(Some(step), step_at(&events, step.version).as_ref());
    }
    assert_eq!(step_at(&events, events.len() as u64), None);
    assert_eq!(as_of_version(&events, events.len() as u64), None);
}

#[test]
fn time_travel_stops_at_the_last_event_at_or_before_the_instant() {
    let history = [
        created(),
        event(
            &agent(),
            minutes(5),
            TicketChange::TagAdded { tag: "a".into() },
        ),
        event(
            &agent(),
            minutes(10),
            TicketChange::TagAdded { tag: "b".into() },
        ),
    ];
    assert_eq!(
        as_of_time(&history, t0() - chrono::Duration::seconds(1)),
        None
    );
    assert_eq!(as_of_time(&history, t0()).unwrap().version, 0);
    assert_eq!(as_of_time(&history, minutes(5)).unwrap().tags, ["a"]);
    assert_eq!(as_of_time(&history, minutes(9)).unwrap().version, 1);
    assert_eq!(as_of_time(&history, minutes(99)), fold(&history));
}

#[test]
fn an_event_without_a_ticket_yields_no_ticket() {
    let orphan = then(&agent(), TicketChange::Unassigned);
    assert_eq!(fold(&[orphan]), None);
}

#[test]
fn a_second_created_event_only_advances_the_version() {
    let first = fold(&[created()]).unwrap();
    let again = fold(&[created(), then(&agent(), created().change)]).unwrap();
    assert_eq!(again.version, 1);
    assert_eq!(again.request, first.request);
    assert_eq!(again.created_by, first.created_by);
}

/// `diff` compares typed fields and serialises only changed ones; it must
/// say exactly what comparing the two whole serialisations says.
#[test]
fn diff_agrees_with_comparing_whole_serialisations() {
    fn reference(before: Option<&Ticket>, after: &Ticket) -> Vec<FieldChange> {
        let old = before.map(fields).unwrap_or_default();
        let new = fields(after);
        DIFFED_FIELDS
            .iter()
            .filter_map(|field| {
                let old_value = old.get(*field).cloned().unwrap_or(Value::Null);
                let new_value = new.get(*field).cloned().unwrap_or(Value::Null);
                (old_value != new_value).then(|| FieldChange {
                    field: (*field).to_string(),
                    old_value,
                    new_value,
                })
            })
            .collect()
    }
    let history = one_of_each();
    let states: Vec<Ticket> = (1..=history.len())
        .filter_map(|n| fold(&history[..n]))
        .collect();
    assert!(states.len() > 10, "a long enough history");
    let mut compared = 0;
    for after in &states {
        assert_eq!(diff(None, after), reference(None, after));
        for before in &states {
            assert_eq!(diff(Some(before), after), reference(Some(before), after));
            compared += 1;
        }
    }
    assert!(compared > 100);
}

/// Activity rows store a diff serialised straight to text; that text must
/// be what serialising through a `Value` (sorted keys) gave, so rows written
/// before and after read alike.
#[test]
fn a_diff_serialised_straight_to_text_reads_as_through_a_value() {
    let history = one_of_each();
    let states: Vec<Ticket> = (1..=history.len())
        .filter_map(|n| fold(&history[..n]))
        .collect();
    let mut pairs: Vec<(Option<&Ticket>, &Ticket)> = states.iter().map(|s| (None, s)).collect();
    pairs.extend(states.windows(2).map(|w| (Some(&w[0]), &w[1])));
    let mut compared = 0;
    for (before, after) in pairs {
        let changes = diff(before, after);
        compared += changes.len();
        assert_eq!(
            serde_json::to_string(&changes).unwrap(),
            serde_json::to_value(&changes).unwrap().to_string()
        );
    }
    assert!(compared > 20, "{compared} changes compared");
}

#[test]
fn steps_kept_are_the_steps_asked_for_and_stop_ends_the_fold() {
    let events = vec![
        created(),
        then(&agent(), TicketChange::TagAdded { tag: "a".into() }),
        then(&agent(), TicketChange::TagAdded { tag: "b".into() }),
        then(&agent(), TicketChange::TagAdded { tag: "c".into() }),
    ];
    let all = steps(&events);
    let odd = steps_kept(
        &events,
        |i, _, _| if i % 2 == 1 { Keep::Yes } else { Keep::No },
    );
    assert_eq!(odd.len(), 2);
    assert_eq!(odd[0], (1, all[1].clone()));
    assert_eq!(odd[1], (3, all[3].clone()));
    let first_two = steps_kept(&events, |i, before, after| {
        assert_eq!(before.map(|t| t.version + 1).unwrap_or(0), after.version);
        if i < 2 {
            Keep::Yes
        } else {
            Keep::Stop
        }
    });
    assert_eq!(
        first_two.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        [0, 1]
    );
}
