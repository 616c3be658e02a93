//! auth.md, "Who may do what", as `decide` enforces it.

use super::*;

fn comment(internal: bool) -> Command {
    Command::Comment {
        comment_id: COMMENT,
        body: "hello".into(),
        internal,
    }
}

fn attach() -> Command {
    Command::AddAttachment {
        attachment_id: ATTACHMENT,
        name: "a.png".into(),
        url: "/a.png".into(),
        mime_type: None,
        size: None,
    }
}

/// Every command but Create, each of which would change the ticket.
fn every_command() -> Vec<Command> {
    vec![
        Command::Update {
            request: Some("New".into()),
            description: None,
        },
        Command::Assign {
            assignee_id: "bob".into(),
            assignee_roles: Some(vec![Role::Agent]),
        },
        Command::ChangeStatus {
            status: TicketStatus::InProgress,
            comment: None,
        },
        Command::ChangePriority {
            priority: TicketPriority::Critical,
        },
        comment(false),
        comment(true),
        attach(),
        Command::AddTag { tag: "x".into() },
        Command::Relate {
            related_id: OTHER_TICKET,
            related: RelatedTicket::Live,
        },
        Command::Watch {
            user_id: "erin".into(),
        },
        Command::Move {
            queue: "billing".into(),
        },
        Command::Delete { reason: None },
    ]
}

#[test]
fn it_should_answer_not_found_when_the_actor_cannot_see_the_ticket() {
    for actor in [stranger(), other_agent()] {
        for command in every_command() {
            given(vec![created()])
                .as_actor(actor.clone())
                .when(command)
                .then_expect_error(DomainError::NotFound);
        }
    }
}

#[test]
fn it_should_answer_not_found_before_deleted_for_a_hidden_deleted_ticket() {
    let deleted = then(&admin(), TicketChange::Deleted { reason: None });
    given(vec![created(), deleted])
        .as_actor(stranger())
        .when(comment(false))
        .then_expect_error(DomainError::NotFound);
}

#[test]
fn it_should_let_a_requester_comment_attach_and_watch_for_themselves() {
    for command in [
        comment(false),
        attach(),
        Command::Unwatch {
            user_id: "alice".into(),
        },
    ] {
        given(vec![created()])
            .as_actor(requester())
            .when(command)
            .ticket();
    }
    given(vec![created()])
        .as_actor(requester())
        .when(Command::Watch {
            user_id: "alice".into(),
        })
        .then_expect(vec![TicketChange::WatcherAdded {
            user_id: "alice".into(),
        }]);
}

#[test]
fn it_should_let_a_requester_watch_a_ticket_they_see_as_a_watcher() {
    let watching = then(
        &agent(),
        TicketChange::WatcherAdded {
            user_id: "mallory".into(),
        },
    );
    given(vec![created(), watching])
        .as_actor(stranger())
        .when(comment(false))
        .ticket();
}

#[test]
fn it_should_forbid_a_requester_an_internal_comment() {
    given(vec![created()])
        .as_actor(requester())
        .when(comment(true))
        .then_expect_forbidden();
}

#[test]
fn it_should_forbid_a_requester_to_watch_for_someone_else() {
    for command in [
        Command::Watch {
            user_id: "erin".into(),
        },
        Command::Unwatch {
            user_id: "erin".into(),
        },
    ] {
        given(vec![created()])
            .as_actor(requester())
            .when(command)
            .then_expect_forbidden();
    }
}

#[test]
fn it_should_forbid_a_requester_everything_else() {
    let allowed = |c: &Command| {
        matches!(
            c,
            Command::Comment {
                internal: false,
                ..
            } | Command::AddAttachment { .. }
        )
    };
    for command in every_command().into_iter().filter(|c| !allowed(c)) {
        given(vec![created()])
            .as_actor(requester())
            .when(command)
            .then_expect_forbidden();
    }
}

#[test]
fn it_should_let_an_agent_do_everything_but_delete_on_tickets_they_see() {
    for command in every_command() {
        let then = given(vec![created()])
            .as_actor(agent())
            .when(command.clone());
        if matches!(command, Command::Delete { .. }) {
            then.then_expect_forbidden();
        } else {
            then.ticket();
        }
    }
}

#[test]
fn it_should_let_an_agent_act_on_a_ticket_they_are_assigned_outside_their_queues() {
    let assigned = then(
        &admin(),
        TicketChange::Assigned {
            assignee_id: "carol".into(),
            first_response: true,
        },
    );
    given(vec![created(), assigned])
        .as_actor(other_agent())
        .when(comment(true))
        .ticket();
}

#[test]
fn it_should_let_an_admin_and_the_system_do_everything() {
    for actor in [admin(), Actor::system()] {
        for command in every_command() {
            given(vec![created()])
                .as_actor(actor.clone())
                .when(command)
                .ticket();
        }
    }
}
