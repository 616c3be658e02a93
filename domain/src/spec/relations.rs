//! Related tickets.

use super::*;

#[test]
fn it_should_relate_another_ticket() {
    let ticket = given(vec![created()])
        .when(Command::Relate {
            related_id: OTHER_TICKET,
        })
        .then_expect(vec![TicketChange::RelatedAdded {
            related_id: OTHER_TICKET,
        }])
        .ticket();
    assert_eq!(ticket.related, vec![OTHER_TICKET]);
}

#[test]
fn it_should_not_relate_a_ticket_to_itself() {
    given(vec![created()])
        .when(Command::Relate { related_id: TICKET })
        .then_expect_invalid();
    given(vec![created()])
        .when(Command::Unrelate { related_id: TICKET })
        .then_expect_invalid();
}

#[test]
fn it_should_unrelate_a_related_ticket() {
    let related = then(
        &agent(),
        TicketChange::RelatedAdded {
            related_id: OTHER_TICKET,
        },
    );
    let ticket = given(vec![created(), related])
        .when(Command::Unrelate {
            related_id: OTHER_TICKET,
        })
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
