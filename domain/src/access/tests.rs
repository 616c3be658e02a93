use super::*;
use crate::fold;
use crate::spec::{admin, agent, created, other_agent, requester, stranger, then, COMMENT};
use crate::TicketChange;

fn ticket() -> Ticket {
    fold(&[created()]).unwrap()
}

#[test]
fn an_admin_sees_every_ticket() {
    assert!(can_see(&admin(), &ticket()));
    assert!(can_see(&Actor::system(), &ticket()));
}

#[test]
fn an_agent_sees_the_tickets_of_their_teams_queues() {
    assert!(can_see(&agent(), &ticket()));
    assert!(!can_see(&other_agent(), &ticket()));
}

#[test]
fn an_agent_sees_tickets_they_created_are_assigned_to_or_watch() {
    let carol = other_agent();
    let mut ticket = ticket();
    ticket.assigned_to = Some("carol".into());
    assert!(can_see(&carol, &ticket));
    ticket.assigned_to = None;
    ticket.watchers = vec!["carol".into()];
    assert!(can_see(&carol, &ticket));
    ticket.watchers = vec![];
    ticket.created_by = "carol".into();
    assert!(can_see(&carol, &ticket));
}

#[test]
fn a_requester_sees_only_tickets_they_created_or_watch() {
    let mut ticket = ticket();
    assert!(can_see(&requester(), &ticket));
    assert!(!can_see(&stranger(), &ticket));
    ticket.watchers = vec!["mallory".into()];
    assert!(can_see(&stranger(), &ticket));
    // Being the assignee gives a requester nothing: only staff work tickets.
    ticket.watchers = vec![];
    ticket.assigned_to = Some("mallory".into());
    assert!(!can_see(&stranger(), &ticket));
}

#[test]
fn a_subscriber_hears_of_an_event_if_they_could_see_the_ticket_before_or_after_it() {
    let before = ticket();
    let mut after = before.clone();
    after.queue = "billing".into();
    let moved = then(
        &admin(),
        TicketChange::QueueChanged {
            queue: "billing".into(),
        },
    );
    assert!(may_receive(&agent(), Some(&before), &after, &moved));
    assert!(may_receive(&other_agent(), Some(&before), &after, &moved));
    assert!(!may_receive(&stranger(), Some(&before), &after, &moved));
    assert!(may_receive(&other_agent(), None, &after, &moved));
}

#[test]
fn a_requester_never_receives_an_internal_comment_event() {
    let note = |internal| {
        then(
            &agent(),
            TicketChange::Commented {
                comment_id: COMMENT,
                body: "note".into(),
                internal,
                first_response: false,
            },
        )
    };
    let t = ticket();
    assert!(!may_receive(&requester(), Some(&t), &t, &note(true)));
    assert!(may_receive(&requester(), Some(&t), &t, &note(false)));
    assert!(may_receive(&agent(), Some(&t), &t, &note(true)));
    let both = Actor::new("alice", vec![Role::Requester, Role::Agent], vec![]);
    assert!(may_receive(&both, Some(&t), &t, &note(true)));
}

#[test]
fn a_requester_reads_a_ticket_without_its_internal_comments() {
    let history = [
        created(),
        then(
            &agent(),
            TicketChange::Commented {
                comment_id: COMMENT,
                body: "note".into(),
                internal: true,
                first_response: false,
            },
        ),
    ];
    let ticket = fold(&history).unwrap();
    assert!(redact(&requester(), &ticket).comments.is_empty());
    assert_eq!(redact(&agent(), &ticket), ticket);
}

#[test]
fn a_relation_finds_a_hidden_ticket_as_it_finds_a_missing_one() {
    let ticket = ticket();
    assert_eq!(related_ticket(&admin(), None), RelatedTicket::Unknown);
    assert_eq!(
        related_ticket(&other_agent(), Some(&ticket)),
        RelatedTicket::Unknown
    );
    assert_eq!(related_ticket(&agent(), Some(&ticket)), RelatedTicket::Live);
}

#[test]
fn a_relation_finds_a_deleted_ticket_by_its_reference() {
    let history = [
        created(),
        then(&admin(), TicketChange::Deleted { reason: None }),
    ];
    let ticket = fold(&history).unwrap();
    assert_eq!(
        related_ticket(&agent(), Some(&ticket)),
        RelatedTicket::Deleted {
            reference: "TCK-000001".into()
        }
    );
    assert_eq!(
        related_ticket(&other_agent(), Some(&ticket)),
        RelatedTicket::Unknown
    );
}

#[test]
fn the_system_actor_is_an_admin() {
    let system = Actor::system();
    assert_eq!(system.user_id, "system");
    assert!(system.has_role(Role::Admin));
    assert!(system.is_staff());
    assert!(!requester().is_staff());
}

#[test]
fn the_visibility_of_a_query_is_the_rule_of_can_see() {
    assert_eq!(visibility(&admin()), Visibility::Everything);
    let teams = vec!["support".to_string()];
    match visibility(&Actor::new("r", vec![Role::Requester], teams.clone())) {
        Visibility::Involved {
            user,
            assigned,
            queues,
        } => assert_eq!((user, assigned, queues.len()), ("r", false, 0)),
        other => panic!("a requester sees {other:?}"),
    }
    match visibility(&Actor::new("a", vec![Role::Agent], teams)) {
        Visibility::Involved {
            assigned, queues, ..
        } => assert!(assigned && queues == ["support".to_string()]),
        other => panic!("an agent sees {other:?}"),
    }
}

#[test]
fn queue_figures_are_for_admins_and_the_queues_agents_work_in() {
    assert!(can_see_queue(&admin(), "billing"));
    assert!(can_see_queue(&agent(), &ticket().queue));
    assert!(!can_see_queue(&other_agent(), &ticket().queue));
    assert!(!can_see_queue(&requester(), &ticket().queue));
}

#[test]
fn sla_warnings_and_breaches_reach_staff_only() {
    let t = ticket();
    for change in [
        TicketChange::SlaWarning {
            target: crate::SlaTarget::FirstResponse,
            due_at: crate::spec::t0(),
        },
        TicketChange::SlaBreached {
            target: crate::SlaTarget::Resolution,
            due_at: crate::spec::t0(),
        },
    ] {
        let event = then(&Actor::system(), change);
        assert!(!may_receive(&requester(), Some(&t), &t, &event));
        assert!(may_receive(&agent(), Some(&t), &t, &event));
        assert!(may_receive(&admin(), Some(&t), &t, &event));
    }
}
