//! Missing and deleted tickets.

use super::*;

fn deleted() -> TicketEvent {
    then(&admin(), TicketChange::Deleted { reason: None })
}

#[test]
fn it_should_answer_not_found_for_a_command_on_a_missing_ticket() {
    given(vec![])
        .when(Command::Unassign)
        .then_expect_error(DomainError::NotFound);
}

#[test]
fn it_should_let_an_admin_delete_a_ticket_with_a_trimmed_reason() {
    let ticket = given(vec![created()])
        .when(Command::Delete {
            reason: Some("  duplicate of TCK-2 ".into()),
        })
        .then_expect(vec![TicketChange::Deleted {
            reason: Some("duplicate of TCK-2".into()),
        }])
        .ticket();
    assert!(ticket.deleted);
}

#[test]
fn it_should_record_a_blank_delete_reason_as_none() {
    given(vec![created()])
        .when(Command::Delete {
            reason: Some(" ".into()),
        })
        .then_expect(vec![TicketChange::Deleted { reason: None }]);
}

#[test]
fn it_should_reject_a_delete_reason_over_1000_characters() {
    given(vec![created()])
        .when(Command::Delete {
            reason: Some("r".repeat(1_001)),
        })
        .then_expect_invalid();
}

#[test]
fn it_should_refuse_every_command_on_a_deleted_ticket() {
    let commands = [
        Command::Update {
            request: Some("x".into()),
            description: None,
        },
        Command::Unassign,
        Command::ChangePriority {
            priority: TicketPriority::Low,
        },
        Command::Comment {
            comment_id: COMMENT,
            body: "hello?".into(),
            internal: false,
        },
        Command::Watch {
            user_id: "dave".into(),
        },
        Command::Delete { reason: None },
    ];
    for command in commands {
        given(vec![created(), deleted()])
            .when(command)
            .then_expect_error(DomainError::Deleted);
    }
}

#[test]
fn it_should_still_answer_already_exists_when_creating_over_a_deleted_ticket() {
    given(vec![created(), deleted()])
        .when(Command::Create {
            ticket_id: TICKET,
            reference: "TCK-000001".into(),
            request: "again".into(),
            description: None,
            priority: TicketPriority::Low,
            queue: "support".into(),
            tags: vec![],
        })
        .then_expect_error(DomainError::AlreadyExists);
}

#[test]
fn it_should_answer_forbidden_before_deleted_when_the_role_may_not_run_the_command() {
    given(vec![created(), deleted()])
        .as_actor(requester())
        .when(Command::Unassign)
        .then_expect_forbidden();
}
