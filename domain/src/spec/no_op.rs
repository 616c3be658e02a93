//! A command that would change nothing appends nothing, so retries and double
//! clicks are harmless.

use super::*;

fn assigned_to_bob() -> TicketEvent {
    then(
        &agent(),
        TicketChange::Assigned {
            assignee_id: "bob".into(),
            first_response: true,
        },
    )
}

fn rich_history() -> Vec<TicketEvent> {
    vec![
        created(),
        assigned_to_bob(),
        then(&agent(), TicketChange::TagAdded { tag: "fire".into() }),
        then(
            &agent(),
            TicketChange::WatcherAdded {
                user_id: "erin".into(),
            },
        ),
        then(
            &agent(),
            TicketChange::RelatedAdded {
                related_id: OTHER_TICKET,
            },
        ),
    ]
}

#[test]
fn it_should_append_nothing_for_a_command_that_changes_nothing() {
    let no_ops = [
        Command::Assign {
            assignee_id: " bob ".into(),
            assignee_roles: Some(vec![Role::Agent]),
        },
        Command::AddTag { tag: "FIRE".into() },
        Command::RemoveTag {
            tag: "water".into(),
        },
        Command::Watch {
            user_id: "erin".into(),
        },
        Command::Unwatch {
            user_id: "frank".into(),
        },
        Command::ChangePriority {
            priority: TicketPriority::Medium,
        },
        Command::Move {
            queue: "support".into(),
        },
        Command::Relate {
            related_id: OTHER_TICKET,
            related: RelatedTicket::Live,
        },
        Command::Unrelate {
            related_id: Uuid::from_u128(0x99),
            related: RelatedTicket::Live,
        },
        Command::Update {
            request: Some("Printer on fire".into()),
            description: Some("".into()),
        },
        Command::Update {
            request: None,
            description: None,
        },
    ];
    for command in no_ops {
        given(rich_history()).when(command).then_expect_nothing();
    }
}

#[test]
fn it_should_append_nothing_when_unassigning_an_unassigned_ticket() {
    given(vec![created()])
        .when(Command::Unassign)
        .then_expect_nothing();
}
