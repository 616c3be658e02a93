//! Related tickets. A relation command carries what the caller found of the
//! other ticket ([`RelatedTicket`]); the caller records the mirror on it.

use super::*;

fn relate(related: RelatedTicket) -> Command {
    Command::Relate {
        related_id: OTHER_TICKET,
        related,
    }
}

fn unrelate(related: RelatedTicket) -> Command {
    Command::Unrelate {
        related_id: OTHER_TICKET,
        related,
    }
}

/// The other ticket, deleted since the caller last looked.
fn deleted_other() -> RelatedTicket {
    RelatedTicket::Deleted {
        reference: "TCK-000002".into(),
    }
}

fn related_to_other() -> TicketEvent {
    then(
        &agent(),
        TicketChange::RelatedAdded {
            related_id: OTHER_TICKET,
        },
    )
}

#[test]
fn it_should_relate_another_ticket() {
    let ticket = given(vec![created()])
        .when(relate(RelatedTicket::Live))
        .then_expect(vec![TicketChange::RelatedAdded {
            related_id: OTHER_TICKET,
        }])
        .ticket();
    assert_eq!(ticket.related, vec![OTHER_TICKET]);
}

#[test]
fn it_should_not_relate_a_ticket_to_itself() {
    given(vec![created()])
        .when(Command::Relate {
            related_id: TICKET,
            related: RelatedTicket::Live,
        })
        .then_expect_invalid();
    given(vec![created()])
        .when(Command::Unrelate {
            related_id: TICKET,
            related: RelatedTicket::Live,
        })
        .then_expect_invalid();
}

#[test]
fn it_should_not_relate_a_ticket_to_a_deleted_ticket() {
    given(vec![created()])
        .when(relate(deleted_other()))
        .then_expect_error(DomainError::Invalid(
            "ticket TCK-000002 is deleted and cannot be related".into(),
        ));
}

#[test]
fn it_should_refuse_a_deleted_ticket_even_when_it_is_already_related() {
    given(vec![created(), related_to_other()])
        .when(relate(deleted_other()))
        .then_expect_error(DomainError::Invalid(
            "ticket TCK-000002 is deleted and cannot be related".into(),
        ));
}

#[test]
fn it_should_not_relate_a_deleted_ticket_to_another() {
    let deleted = then(&admin(), TicketChange::Deleted { reason: None });
    given(vec![created(), deleted])
        .when(relate(RelatedTicket::Live))
        .then_expect_error(DomainError::Deleted);
}

#[test]
fn it_should_not_relate_or_unrelate_a_ticket_that_does_not_exist_or_is_hidden() {
    let unknown = DomainError::Invalid(format!("related ticket {OTHER_TICKET} does not exist"));
    given(vec![created()])
        .when(relate(RelatedTicket::Unknown))
        .then_expect_error(unknown.clone());
    given(vec![created(), related_to_other()])
        .when(unrelate(RelatedTicket::Unknown))
        .then_expect_error(unknown);
}

#[test]
fn it_should_answer_not_found_for_a_hidden_ticket_whatever_the_related_ticket_is() {
    for related in [RelatedTicket::Unknown, deleted_other()] {
        given(vec![created()])
            .as_actor(stranger())
            .when(relate(related))
            .then_expect_error(DomainError::NotFound);
    }
}

#[test]
fn it_should_unrelate_a_related_ticket() {
    let ticket = given(vec![created(), related_to_other()])
        .when(unrelate(RelatedTicket::Live))
        .then_expect(vec![TicketChange::RelatedRemoved {
            related_id: OTHER_TICKET,
        }])
        .ticket();
    assert!(ticket.related.is_empty());
}

#[test]
fn it_should_unrelate_a_ticket_deleted_since_it_was_related() {
    let ticket = given(vec![created(), related_to_other()])
        .when(unrelate(deleted_other()))
        .then_expect(vec![TicketChange::RelatedRemoved {
            related_id: OTHER_TICKET,
        }])
        .ticket();
    assert!(ticket.related.is_empty());
}

#[test]
fn it_should_keep_related_tickets_sorted_and_unique() {
    let ids = [Uuid::from_u128(9), Uuid::from_u128(3), Uuid::from_u128(9)];
    let mut history = vec![created()];
    history.extend(
        ids.iter()
            .map(|id| then(&agent(), TicketChange::RelatedAdded { related_id: *id })),
    );
    let ticket = fold(&history).unwrap();
    assert_eq!(ticket.related, vec![Uuid::from_u128(3), Uuid::from_u128(9)]);
}
