//! SLA warnings and breaches: `given(history).at(now)` says which SLA events
//! are due. The ticket is MEDIUM: first response within 8 h, resolution
//! within 3 days, warnings 2 h before each.

use super::*;
use crate::{decide_sla, SlaPolicy, SlaTarget};

fn hours(n: i64) -> DateTime<Utc> {
    t0() + Duration::hours(n)
}

fn at(time: DateTime<Utc>, change: TicketChange) -> TicketEvent {
    event(&agent(), time, change)
}

fn status_at(time: DateTime<Utc>, status: TicketStatus) -> TicketEvent {
    at(time, TicketChange::StatusChanged { status })
}

fn responded_at(time: DateTime<Utc>) -> TicketEvent {
    at(
        time,
        TicketChange::Assigned {
            assignee_id: "bob".into(),
            first_response: true,
        },
    )
}

fn sla_due(history: Vec<TicketEvent>, now: DateTime<Utc>) -> Vec<TicketChange> {
    let ticket = fold(&history).expect("the history creates the ticket");
    decide_sla(&ticket, &history, &SlaPolicy::default(), now)
}

fn warning(target: SlaTarget, due_at: DateTime<Utc>) -> TicketChange {
    TicketChange::SlaWarning { target, due_at }
}

fn breach(target: SlaTarget, due_at: DateTime<Utc>) -> TicketChange {
    TicketChange::SlaBreached { target, due_at }
}

#[test]
fn it_should_warn_before_the_first_response_target() {
    assert_eq!(
        sla_due(vec![created()], hours(6)),
        vec![warning(SlaTarget::FirstResponse, hours(8))]
    );
}

#[test]
fn it_should_not_warn_before_the_warning_time() {
    assert_eq!(sla_due(vec![created()], hours(5)), vec![]);
}

#[test]
fn it_should_breach_the_first_response_target_after_it_without_a_late_warning() {
    assert_eq!(
        sla_due(vec![created()], hours(9)),
        vec![breach(SlaTarget::FirstResponse, hours(8))]
    );
}

#[test]
fn it_should_breach_after_a_recorded_warning() {
    let warned = at(hours(6), warning(SlaTarget::FirstResponse, hours(8)));
    assert_eq!(
        sla_due(vec![created(), warned], hours(8)),
        vec![breach(SlaTarget::FirstResponse, hours(8))]
    );
}

#[test]
fn it_should_pause_the_clock_while_the_ticket_is_on_hold() {
    let history = vec![
        created(),
        status_at(hours(1), TicketStatus::OnHold),
        status_at(hours(3), TicketStatus::Open),
    ];
    // Two hours on hold push the due time from 8 h to 10 h.
    assert_eq!(
        sla_due(history.clone(), hours(9)),
        vec![warning(SlaTarget::FirstResponse, hours(10))]
    );
    assert_eq!(
        sla_due(history, hours(11)),
        vec![breach(SlaTarget::FirstResponse, hours(10))]
    );
}

#[test]
fn it_should_not_breach_while_the_ticket_stays_on_hold() {
    let history = vec![created(), status_at(hours(1), TicketStatus::OnHold)];
    assert_eq!(sla_due(history, hours(100)), vec![]);
}

#[test]
fn it_should_still_breach_a_target_missed_before_the_hold() {
    let history = vec![created(), status_at(hours(9), TicketStatus::OnHold)];
    assert_eq!(
        sla_due(history, hours(10)),
        vec![breach(SlaTarget::FirstResponse, hours(8))]
    );
}

#[test]
fn it_should_not_breach_the_first_response_once_responded() {
    let history = vec![created(), responded_at(hours(1))];
    assert_eq!(sla_due(history, hours(20)), vec![]);
}

#[test]
fn it_should_breach_the_resolution_target_of_a_responded_ticket() {
    let history = vec![created(), responded_at(hours(1))];
    assert_eq!(
        sla_due(history, hours(73)),
        vec![breach(SlaTarget::Resolution, hours(72))]
    );
}

#[test]
fn it_should_not_breach_anything_once_resolved() {
    let history = vec![
        created(),
        responded_at(hours(1)),
        status_at(hours(2), TicketStatus::Resolved),
    ];
    assert_eq!(sla_due(history, hours(500)), vec![]);
}

#[test]
fn it_should_carry_on_the_resolution_clock_when_a_ticket_is_reopened() {
    let history = vec![
        created(),
        responded_at(hours(1)),
        status_at(hours(2), TicketStatus::Resolved),
        status_at(hours(100), TicketStatus::Open),
    ];
    // Two hours ran before the resolution; 70 remain from the reopening.
    assert_eq!(
        sla_due(history, hours(171)),
        vec![breach(SlaTarget::Resolution, hours(170))]
    );
}

#[test]
fn it_should_record_each_warning_and_breach_only_once() {
    let warned = at(hours(6), warning(SlaTarget::FirstResponse, hours(8)));
    assert_eq!(sla_due(vec![created(), warned], hours(7)), vec![]);
    let breached = at(hours(8), breach(SlaTarget::FirstResponse, hours(8)));
    assert_eq!(sla_due(vec![created(), breached], hours(20)), vec![]);
}

#[test]
fn it_should_measure_the_time_run_against_a_raised_priority() {
    let raised = at(
        hours(0),
        TicketChange::PriorityChanged {
            priority: TicketPriority::Critical,
        },
    );
    assert_eq!(
        sla_due(vec![created(), raised], hours(2)),
        vec![breach(SlaTarget::FirstResponse, hours(1))]
    );
}

#[test]
fn it_should_raise_nothing_on_a_deleted_ticket() {
    let deleted = at(hours(1), TicketChange::Deleted { reason: None });
    assert_eq!(sla_due(vec![created(), deleted], hours(100)), vec![]);
}

#[test]
fn sla_events_are_recorded_on_the_ticket_once_and_change_no_contract_field() {
    let warned = at(hours(6), warning(SlaTarget::FirstResponse, hours(8)));
    let again = at(hours(7), warning(SlaTarget::FirstResponse, hours(8)));
    let history = vec![created(), warned, again];
    let ticket = fold(&history).unwrap();
    assert_eq!(ticket.sla_warnings, vec![SlaTarget::FirstResponse]);
    assert!(ticket.sla_breaches.is_empty());
    for step in crate::steps(&history).iter().skip(1) {
        assert_eq!(step.changes, vec![]);
    }
}
