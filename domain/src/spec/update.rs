//! Editing the request and description, moving, assigning and watching.

use super::*;

#[test]
fn it_should_update_only_the_fields_that_change() {
    given(vec![created()])
        .when(Command::Update {
            request: Some(" Printer on fire ".into()),
            description: Some(" Third floor ".into()),
        })
        .then_expect(vec![TicketChange::Updated {
            request: None,
            description: Some(Some("Third floor".into())),
        }]);
}

#[test]
fn it_should_clear_the_description_when_given_an_empty_one() {
    let described = then(
        &agent(),
        TicketChange::Updated {
            request: None,
            description: Some(Some("Third floor".into())),
        },
    );
    let ticket = given(vec![created(), described])
        .when(Command::Update {
            request: None,
            description: Some("".into()),
        })
        .then_expect(vec![TicketChange::Updated {
            request: None,
            description: Some(None),
        }])
        .ticket();
    assert_eq!(ticket.description, None);
}

#[test]
fn it_should_validate_an_updated_request_like_a_new_one() {
    given(vec![created()])
        .when(Command::Update {
            request: Some(" ".into()),
            description: None,
        })
        .then_expect_invalid();
}

#[test]
fn it_should_move_a_ticket_to_a_trimmed_queue() {
    given(vec![created()])
        .when(Command::Move {
            queue: " facilities ".into(),
        })
        .then_expect(vec![TicketChange::QueueChanged {
            queue: "facilities".into(),
        }]);
}

#[test]
fn it_should_validate_the_new_queue_like_a_new_ticket() {
    for queue in [" ".to_string(), "q".repeat(65)] {
        given(vec![created()])
            .when(Command::Move { queue })
            .then_expect_invalid();
    }
}

#[test]
fn it_should_not_assign_an_unknown_user() {
    given(vec![created()])
        .when(Command::Assign {
            assignee_id: "ghost".into(),
            assignee_roles: None,
        })
        .then_expect_invalid();
}

#[test]
fn it_should_only_assign_agents_or_admins() {
    given(vec![created()])
        .when(Command::Assign {
            assignee_id: "alice".into(),
            assignee_roles: Some(vec![Role::Requester]),
        })
        .then_expect_invalid();
    given(vec![created()])
        .when(Command::Assign {
            assignee_id: "dave".into(),
            assignee_roles: Some(vec![Role::Requester, Role::Admin]),
        })
        .ticket();
}

#[test]
fn it_should_reassign_and_unassign() {
    let ticket = given(vec![created()])
        .as_actor(agent())
        .when(Command::Assign {
            assignee_id: "bob".into(),
            assignee_roles: Some(vec![Role::Agent]),
        })
        .ticket();
    assert_eq!(ticket.assigned_to.as_deref(), Some("bob"));
    let assigned = then(
        &agent(),
        TicketChange::Assigned {
            assignee_id: "bob".into(),
            first_response: true,
        },
    );
    let ticket = given(vec![created(), assigned])
        .when(Command::Unassign)
        .then_expect(vec![TicketChange::Unassigned])
        .ticket();
    assert_eq!(ticket.assigned_to, None);
}

#[test]
fn it_should_keep_watchers_sorted_and_unique() {
    let watched = |who: &str| {
        then(
            &admin(),
            TicketChange::WatcherAdded {
                user_id: who.into(),
            },
        )
    };
    let ticket = given(vec![created(), watched("zoe"), watched("adam")])
        .when(Command::Watch {
            user_id: " max ".into(),
        })
        .ticket();
    assert_eq!(ticket.watchers, ["adam", "max", "zoe"]);
}
