//! The delivery rule and the hub interest, as specifications.

use super::*;
use chrono::Utc;
use domain::{Command, TicketPriority};
use fanout::Delivery;

fn created(queue: &str, by: &str) -> (Ticket, TicketEvent) {
    let actor = Actor::new(by, vec![Role::Requester], vec![]);
    let command = Command::Create {
        ticket_id: Uuid::new_v4(),
        reference: "TCK-000001".into(),
        request: "Printer".into(),
        description: None,
        priority: TicketPriority::High,
        queue: queue.into(),
        tags: vec![],
    };
    let events = domain::decide(None, &command, &actor, Utc::now()).unwrap();
    (domain::fold(&events).unwrap(), events[0].clone())
}

/// A requester receives their own ticket's events and never another's, even
/// with a filter that names the other ticket.
#[test]
fn a_requester_receives_only_tickets_they_may_see() {
    let (mine, e1) = created("support", "alice");
    let (theirs, e2) = created("support", "bob");
    let alice = Actor::new("alice", vec![Role::Requester], vec![]);
    let all = Selection::Filter(SubscriptionFilter::default());
    assert!(matches(&all, &alice, None, &mine, &e1));
    assert!(!matches(&all, &alice, None, &theirs, &e2));
    assert!(!matches(
        &Selection::Ticket(theirs.id),
        &alice,
        None,
        &theirs,
        &e2
    ));
}

/// An agent's team stream holds their queues' tickets only.
#[test]
fn a_team_subscription_keeps_the_agents_queues() {
    let (support, e1) = created("support", "alice");
    let (billing, e2) = created("billing", "alice");
    let agent = Actor::new("sam", vec![Role::Agent], vec!["support".into()]);
    assert!(matches(&Selection::Team, &agent, None, &support, &e1));
    assert!(!matches(&Selection::Team, &agent, None, &billing, &e2));
}

/// Filter conditions all have to hold.
#[test]
fn every_filter_condition_must_hold() {
    let (t, e) = created("support", "alice");
    let admin = Actor::new("root", vec![Role::Admin], vec![]);
    let high = SubscriptionFilter {
        priorities: Some(vec![super::super::types::TicketPriority::High]),
        ..Default::default()
    };
    assert!(matches(
        &Selection::Filter(high.clone()),
        &admin,
        None,
        &t,
        &e
    ));
    let billing = SubscriptionFilter {
        queues: Some(vec!["billing".into()]),
        ..high
    };
    assert!(!matches(&Selection::Filter(billing), &admin, None, &t, &e));
}

/// One ticket's life as the hub delivers it: created by a requester in
/// `support`, assigned, watched, moved to `billing`, an internal note,
/// unassigned, unwatched.
fn life() -> (Uuid, Vec<Delivery>) {
    let id = Uuid::new_v4();
    let alice = Actor::new("alice", vec![Role::Requester], vec![]);
    let root = Actor::new("root", vec![Role::Admin], vec![]);
    let commands = vec![
        (
            alice,
            Command::Create {
                ticket_id: id,
                reference: "TCK-000001".into(),
                request: "Printer".into(),
                description: None,
                priority: TicketPriority::High,
                queue: "support".into(),
                tags: vec![],
            },
        ),
        (
            root.clone(),
            Command::Assign {
                assignee_id: "sam".into(),
                assignee_roles: Some(vec![Role::Agent]),
            },
        ),
        (
            root.clone(),
            Command::Watch {
                user_id: "carol".into(),
            },
        ),
        (
            root.clone(),
            Command::Move {
                queue: "billing".into(),
            },
        ),
        (
            root.clone(),
            Command::Comment {
                comment_id: Uuid::new_v4(),
                body: "internal".into(),
                internal: true,
            },
        ),
        (root.clone(), Command::Unassign),
        (
            root,
            Command::Unwatch {
                user_id: "carol".into(),
            },
        ),
    ];
    let mut state: Option<Ticket> = None;
    let mut deliveries = Vec::new();
    for (actor, command) in commands {
        for event in domain::decide(state.as_ref(), &command, &actor, Utc::now()).unwrap() {
            let after = domain::evolve(state.clone(), &event).unwrap();
            let recorded = store::RecordedEvent {
                id: Uuid::new_v4(),
                position: store::Position::from_sequence(deliveries.len() as u64 + 1),
                stream_id: domain::stream_name(id),
                version: after.version,
                event_type: event.event_type().as_str().into(),
                schema_version: 1,
                data: serde_json::Value::Null,
                metadata: serde_json::Value::Null,
                recorded_at: Utc::now(),
                hash: String::new(),
            };
            deliveries.push(Delivery {
                recorded,
                changes: domain::diff(state.as_ref(), &after),
                before: state.replace(after.clone()),
                after,
                event,
                memo: Default::default(),
            });
        }
    }
    (id, deliveries)
}

/// The hub offers a subscriber only the events its interest touches: for
/// every viewer and selection, every event `matches` accepts is touched by
/// the interest, so narrowing never loses an event.
#[test]
fn an_interest_covers_every_event_the_subscription_accepts() {
    let (id, life) = life();
    let viewers = [
        Actor::new("alice", vec![Role::Requester], vec![]),
        Actor::new("bob", vec![Role::Requester], vec![]),
        Actor::new("sam", vec![Role::Agent], vec!["support".into()]),
        Actor::new("kim", vec![Role::Agent], vec!["billing".into()]),
        Actor::new("carol", vec![Role::Agent], vec![]),
        Actor::new("root", vec![Role::Admin], vec![]),
    ];
    let filter = |f: SubscriptionFilter| Selection::Filter(f);
    let selections = [
        Selection::Ticket(id),
        Selection::Ticket(Uuid::new_v4()),
        Selection::Mine,
        Selection::Team,
        filter(SubscriptionFilter::default()),
        filter(SubscriptionFilter {
            queues: Some(vec!["billing".into()]),
            ..Default::default()
        }),
        filter(SubscriptionFilter {
            assigned_to_user_id: Some("sam".into()),
            ..Default::default()
        }),
        filter(SubscriptionFilter {
            watched_only: Some(true),
            include_created: Some(true),
            include_assigned: Some(true),
            ..Default::default()
        }),
        filter(SubscriptionFilter {
            ticket_ids: Some(vec![id.to_string().to_uppercase(), "nope".into()]),
            ..Default::default()
        }),
    ];
    let mut accepted = 0;
    for delivery in &life {
        for viewer in &viewers {
            for selection in &selections {
                let takes = matches(
                    selection,
                    viewer,
                    delivery.before.as_ref(),
                    &delivery.after,
                    &delivery.event,
                );
                if takes {
                    accepted += 1;
                    assert!(
                        interest(selection, viewer).touches(delivery),
                        "{selection:?} of {} loses {:?}",
                        viewer.user_id,
                        delivery.event.event_type()
                    );
                }
            }
        }
    }
    assert!(accepted > 50, "the scenario exercises the rule: {accepted}");
}

/// Only an admin's unfiltered stream is offered every event; a requester's
/// is indexed by their own user, an agent's by themselves and their teams.
#[test]
fn an_unfiltered_stream_is_indexed_by_what_the_viewer_may_see() {
    let all = Selection::Filter(SubscriptionFilter::default());
    let alice = Actor::new("alice", vec![Role::Requester], vec![]);
    let sam = Actor::new("sam", vec![Role::Agent], vec!["support".into()]);
    let root = Actor::new("root", vec![Role::Admin], vec![]);
    assert_eq!(interest(&all, &alice), Interest::user("alice"));
    assert_eq!(
        interest(&all, &sam),
        Interest::Keys(vec![Key::User("sam".into()), Key::Queue("support".into())])
    );
    assert_eq!(interest(&all, &root), Interest::All);
}

/// The predicate refuses every event once the viewer's token has expired.
#[test]
fn rights_lapse_when_the_token_expires() {
    let claims: crate::auth::Claims =
        serde_json::from_value(serde_json::json!({"sub": "root", "exp": 1000, "roles": ["ADMIN"]}))
            .unwrap();
    let rights = Rights::of(&Viewer::new(claims));
    assert!(rights.at(999).is_some());
    assert!(rights.at(1000).is_none());
    let (_, life) = life();
    let expired = predicate(Selection::Filter(SubscriptionFilter::default()), rights);
    assert!(!expired(&life[0]), "the token expired long ago");
}
