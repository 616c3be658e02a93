//! The status workflow and the resolution time.

use super::*;
use TicketStatus::*;

fn change_to(status: TicketStatus) -> Command {
    Command::ChangeStatus {
        status,
        comment: None,
    }
}

/// A new ticket is open; every other status is one allowed step away.
fn history_at(from: TicketStatus) -> Vec<TicketEvent> {
    match from {
        Open => vec![created()],
        other => vec![created(), status(other)],
    }
}

#[test]
fn it_should_follow_the_status_workflow() {
    let allowed = [
        (Open, vec![InProgress, OnHold, Resolved, Closed]),
        (InProgress, vec![Open, OnHold, Resolved, Closed]),
        (OnHold, vec![Open, InProgress, Resolved, Closed]),
        (Resolved, vec![Open, InProgress, Closed]),
        (Closed, vec![Open]),
    ];
    for (from, targets) in allowed {
        for to in TicketStatus::ALL {
            let then = given(history_at(from))
                .as_actor(agent())
                .when(change_to(to));
            if from == to {
                then.then_expect_nothing();
            } else if targets.contains(&to) {
                then.then_expect(vec![TicketChange::StatusChanged { status: to }]);
            } else {
                then.then_expect_invalid();
            }
        }
    }
}

#[test]
fn it_should_not_reopen_a_closed_ticket_to_in_progress() {
    given(vec![created(), status(Closed)])
        .when(change_to(InProgress))
        .then_expect_invalid();
}

#[test]
fn it_should_not_put_a_resolved_ticket_on_hold() {
    given(vec![created(), status(Resolved)])
        .when(change_to(OnHold))
        .then_expect_invalid();
}

#[test]
fn it_should_append_nothing_when_the_status_is_unchanged_even_with_a_comment() {
    given(vec![created(), status(InProgress)])
        .when(Command::ChangeStatus {
            status: InProgress,
            comment: Some((COMMENT, "still on it".into())),
        })
        .then_expect_nothing();
}

#[test]
fn it_should_add_a_public_comment_after_the_status_change() {
    given(vec![created()])
        .as_actor(agent())
        .when(Command::ChangeStatus {
            status: Resolved,
            comment: Some((COMMENT, "  Replaced the fuser ".into())),
        })
        .then_expect(vec![
            TicketChange::StatusChanged { status: Resolved },
            TicketChange::Commented {
                comment_id: COMMENT,
                body: "Replaced the fuser".into(),
                internal: false,
                first_response: true,
            },
        ]);
}

#[test]
fn it_should_reject_a_blank_comment_on_a_status_change() {
    given(vec![created()])
        .when(Command::ChangeStatus {
            status: Resolved,
            comment: Some((COMMENT, " ".into())),
        })
        .then_expect_invalid();
}

#[test]
fn it_should_stamp_the_resolution_time_when_resolving() {
    let ticket = given(vec![created()]).when(change_to(Resolved)).ticket();
    assert_eq!(ticket.resolved_at, Some(minutes(60)));
}

#[test]
fn it_should_stamp_the_resolution_time_when_closing_an_unresolved_ticket() {
    let ticket = given(vec![created()]).when(change_to(Closed)).ticket();
    assert_eq!(ticket.resolved_at, Some(minutes(60)));
}

#[test]
fn it_should_keep_the_resolution_time_when_closing_a_resolved_ticket() {
    let ticket = given(vec![created(), status(Resolved)])
        .when(change_to(Closed))
        .ticket();
    assert_eq!(ticket.resolved_at, Some(minutes(1)));
}

#[test]
fn it_should_clear_the_resolution_time_when_reopening() {
    for (history, to) in [
        (vec![created(), status(Closed)], Open),
        (vec![created(), status(Resolved)], InProgress),
        (vec![created(), status(Resolved)], Open),
    ] {
        let ticket = given(history).when(change_to(to)).ticket();
        assert_eq!(ticket.resolved_at, None);
    }
}
