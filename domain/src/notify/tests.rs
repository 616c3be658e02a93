use super::*;
use crate::fold;
use crate::spec::{admin, agent, created, other_agent, requester, stranger, t0, then};
use crate::{SlaTarget, TicketChange};
use uuid::Uuid;

fn ticket() -> Ticket {
    fold(&[created()]).unwrap()
}

fn comment(body: &str, internal: bool) -> TicketEvent {
    then(
        &admin(),
        TicketChange::Commented {
            comment_id: Uuid::nil(),
            body: body.into(),
            internal,
            first_response: false,
        },
    )
}

fn why(
    actor: &Actor,
    before: Option<&Ticket>,
    after: &Ticket,
    event: &TicketEvent,
) -> Option<Reason> {
    why_with(
        actor,
        &NotificationPreferences::default(),
        false,
        before,
        after,
        event,
    )
}

fn why_with(
    actor: &Actor,
    preferences: &NotificationPreferences,
    mentioned: bool,
    before: Option<&Ticket>,
    after: &Ticket,
    event: &TicketEvent,
) -> Option<Reason> {
    reason(
        &Recipient {
            actor,
            preferences,
            mentioned,
        },
        before,
        after,
        event,
    )
}

#[test]
fn mentions_are_ids_after_an_at_sign_without_trailing_punctuation() {
    assert_eq!(
        mentions("@bob please look, cc @carol.smith and @ada-1. Thanks @bob"),
        vec!["ada-1", "bob", "carol.smith"]
    );
    assert_eq!(mentions("write to ada@example.com"), Vec::<String>::new());
    assert_eq!(mentions("@ alone, @@double, (@dave)"), vec!["dave"]);
}

#[test]
fn a_new_ticket_alerts_the_agents_of_its_queue_but_not_its_creator_or_other_queues() {
    let created = created();
    let after = ticket();
    assert_eq!(why(&agent(), None, &after, &created), Some(Reason::Queue));
    assert_eq!(why(&other_agent(), None, &after, &created), None);
    assert_eq!(why(&requester(), None, &after, &created), None);
    // An admin is not an agent of the queue unless they have the role.
    assert_eq!(why(&admin(), None, &after, &created), None);
}

#[test]
fn an_sla_alert_goes_to_the_queue_only_while_nobody_is_assigned() {
    let before = ticket();
    let warning = then(
        &Actor::system(),
        TicketChange::SlaWarning {
            target: SlaTarget::FirstResponse,
            due_at: t0(),
        },
    );
    assert_eq!(
        why(&agent(), Some(&before), &before, &warning),
        Some(Reason::Queue)
    );
    let mut assigned = before.clone();
    assigned.assigned_to = Some("carol".into());
    assert_eq!(why(&agent(), Some(&assigned), &assigned, &warning), None);
    assert_eq!(
        why(&other_agent(), Some(&assigned), &assigned, &warning),
        Some(Reason::AssignedToYou)
    );
    // SLA events are staff-only: the requester who created the ticket hears nothing.
    assert_eq!(why(&requester(), Some(&before), &before, &warning), None);
}

#[test]
fn a_mention_notifies_who_may_see_the_comment_and_nobody_else() {
    let t = ticket();
    let public = comment("@alice @bob @mallory", false);
    let internal = comment("@alice @bob", true);
    assert_eq!(
        why_with(&agent(), &Default::default(), true, Some(&t), &t, &public),
        Some(Reason::Mentioned)
    );
    // The creator is mentioned and created it: the mention is the reason.
    assert_eq!(
        why_with(
            &requester(),
            &Default::default(),
            true,
            Some(&t),
            &t,
            &public
        ),
        Some(Reason::Mentioned)
    );
    // A requester never hears of an internal note, mentioned or not.
    assert_eq!(
        why_with(
            &requester(),
            &Default::default(),
            true,
            Some(&t),
            &t,
            &internal
        ),
        None
    );
    assert_eq!(
        why_with(&agent(), &Default::default(), true, Some(&t), &t, &internal),
        Some(Reason::Mentioned)
    );
    // Someone who cannot see the ticket is not told of it.
    assert_eq!(
        why_with(
            &stranger(),
            &Default::default(),
            true,
            Some(&t),
            &t,
            &public
        ),
        None
    );
}

#[test]
fn a_muted_reason_falls_back_to_the_next_and_a_muted_event_type_to_nothing() {
    let t = ticket();
    let public = comment("@alice", false);
    let no_mentions = NotificationPreferences {
        muted_reasons: vec![Reason::Mentioned],
        ..Default::default()
    };
    assert_eq!(
        why_with(&requester(), &no_mentions, true, Some(&t), &t, &public),
        Some(Reason::YourTicket)
    );
    let no_comments = NotificationPreferences {
        muted_event_types: vec![TicketEventType::Commented],
        ..Default::default()
    };
    assert_eq!(
        why_with(&requester(), &no_comments, true, Some(&t), &t, &public),
        None
    );
    let no_support_queue = NotificationPreferences {
        muted_queues: vec!["support".into()],
        ..Default::default()
    };
    assert_eq!(
        why_with(&agent(), &no_support_queue, false, None, &t, &created()),
        None
    );
}

#[test]
fn a_change_of_preferences_keeps_what_it_leaves_out_and_validates_queues() {
    let first = NotificationPreferences::default()
        .changed(PreferencesChange {
            muted_reasons: Some(vec![Reason::Watching, Reason::Queue, Reason::Watching]),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(first.muted_reasons, vec![Reason::Watching, Reason::Queue]);
    let second = first
        .changed(PreferencesChange {
            muted_queues: Some(vec!["billing".into()]),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(second.muted_reasons, first.muted_reasons);
    assert_eq!(second.muted_queues, vec!["billing"]);
    assert!(first
        .changed(PreferencesChange {
            muted_queues: Some(vec!["   ".into()]),
            ..Default::default()
        })
        .is_err());
}
