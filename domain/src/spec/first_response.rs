//! When the response clock stops (`firstResponseDate`).

use super::*;

fn public_comment() -> Command {
    Command::Comment {
        comment_id: COMMENT,
        body: "Looking into it".into(),
        internal: false,
    }
}

fn commented(first_response: bool) -> TicketChange {
    TicketChange::Commented {
        comment_id: COMMENT,
        body: "Looking into it".into(),
        internal: false,
        first_response,
    }
}

fn assign_bob() -> Command {
    Command::Assign {
        assignee_id: "bob".into(),
        assignee_roles: Some(vec![Role::Agent]),
    }
}

#[test]
fn it_should_count_an_agents_first_public_comment_as_the_first_response() {
    let ticket = given(vec![created()])
        .as_actor(agent())
        .when(public_comment())
        .then_expect(vec![commented(true)])
        .ticket();
    assert_eq!(ticket.first_response_at, Some(minutes(60)));
}

#[test]
fn it_should_count_an_assignment_by_staff_as_the_first_response() {
    let ticket = given(vec![created()])
        .as_actor(admin())
        .when(assign_bob())
        .then_expect(vec![TicketChange::Assigned {
            assignee_id: "bob".into(),
            first_response: true,
        }])
        .ticket();
    assert_eq!(ticket.first_response_at, Some(minutes(60)));
}

#[test]
fn it_should_not_count_an_internal_comment_as_a_response() {
    given(vec![created()])
        .as_actor(agent())
        .when(Command::Comment {
            comment_id: COMMENT,
            body: "note to self".into(),
            internal: true,
        })
        .then_expect(vec![TicketChange::Commented {
            comment_id: COMMENT,
            body: "note to self".into(),
            internal: true,
            first_response: false,
        }]);
}

#[test]
fn it_should_not_count_a_requesters_own_comment_as_a_response() {
    given(vec![created()])
        .as_actor(requester())
        .when(public_comment())
        .then_expect(vec![commented(false)]);
}

#[test]
fn it_should_not_count_staff_replying_on_their_own_ticket() {
    let own_ticket = event(
        &agent(),
        t0(),
        TicketChange::Created {
            ticket_id: TICKET,
            reference: "TCK-000001".into(),
            request: "Laptop".into(),
            description: None,
            priority: TicketPriority::Low,
            queue: "support".into(),
            tags: vec![],
        },
    );
    given(vec![own_ticket])
        .as_actor(agent())
        .when(public_comment())
        .then_expect(vec![commented(false)]);
}

#[test]
fn it_should_count_only_the_first_response() {
    let answered = then(&agent(), commented(true));
    let ticket = given(vec![created(), answered])
        .as_actor(admin())
        .when(Command::Comment {
            comment_id: Uuid::from_u128(0xd),
            body: "Me too".into(),
            internal: false,
        })
        .then_expect(vec![TicketChange::Commented {
            comment_id: Uuid::from_u128(0xd),
            body: "Me too".into(),
            internal: false,
            first_response: false,
        }])
        .ticket();
    assert_eq!(ticket.first_response_at, Some(minutes(1)));
}
