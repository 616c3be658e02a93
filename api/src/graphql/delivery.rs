//! Which ticket events a subscriber receives: auth.md "Who receives an event"
//! (could see the ticket right before OR right after, never an internal
//! comment for a requester) AND the subscription's own arguments. One pure
//! function, [`matches`], used identically for replayed and live events.
//!
//! The fan-out hub asks two things of a subscription: its [`interest`], the
//! narrowest index keys that still cover every event [`matches`] could
//! accept (so an event costs only the subscribers it may concern), and its
//! [`predicate`], which has the final word on each event.

use std::sync::Arc;

use domain::{Actor, Role, Ticket, TicketEvent};
use projections::fanout::{Interest, Key, Predicate};
use uuid::Uuid;

use super::inputs::SubscriptionFilter;
use crate::auth::Viewer;

/// What one subscription asked for.
#[derive(Debug, Clone)]
pub enum Selection {
    /// `supportTicketEvents(filter)`.
    Filter(SubscriptionFilter),
    /// `ticketUpdated(ticketId)`.
    Ticket(Uuid),
    /// `myTicketUpdates`: tickets the viewer created, is assigned to or watches.
    Mine,
    /// `teamTicketUpdates`: tickets in a queue of the viewer's teams.
    Team,
}

/// Whether `viewer` receives `event`, which turned `before` into `after`.
pub fn matches(
    selection: &Selection,
    viewer: &Actor,
    before: Option<&Ticket>,
    after: &Ticket,
    event: &TicketEvent,
) -> bool {
    if !domain::may_receive(viewer, before, after, event) {
        return false;
    }
    let me = viewer.user_id.as_str();
    // Either side of the event counts: the agent who was just unassigned, the
    // watcher who just unwatched, the queue a ticket just left.
    let either = |test: &dyn Fn(&Ticket) -> bool| before.is_some_and(test) || test(after);
    match selection {
        Selection::Ticket(id) => after.id == *id,
        Selection::Mine => {
            either(&|t: &Ticket| t.created_by == me || t.is_assigned_to(me) || t.is_watched_by(me))
        }
        Selection::Team => either(&|t: &Ticket| viewer.teams.contains(&t.queue)),
        Selection::Filter(f) => filter_matches(f, viewer, before, after, event),
    }
}

/// The viewer's rights as a subscription checks them, event by event. Roles
/// and teams come only from the token's claims (no server-side record of
/// rights exists to look up), so what is looked up per event is whether the
/// token still holds: once it expires, no further event is delivered (the
/// transport closes the socket; the client resumes with `after`).
#[derive(Debug, Clone)]
pub struct Rights {
    actor: Actor,
    /// The token's `exp`, in seconds since the epoch.
    expires_at: i64,
}

impl Rights {
    pub fn of(viewer: &Viewer) -> Rights {
        Rights {
            actor: viewer.actor.clone(),
            expires_at: viewer.claims.exp,
        }
    }

    /// The rights in force at `now` (seconds since the epoch); none once the
    /// token has expired.
    pub fn at(&self, now: i64) -> Option<&Actor> {
        (now < self.expires_at).then_some(&self.actor)
    }
}

/// The hub's per-event check for `selection`: the viewer's rights looked up
/// at the event, then [`matches`] on the event's states. The hub runs it for
/// live and replayed events alike.
pub fn predicate(selection: Selection, rights: Rights) -> Predicate {
    Arc::new(move |delivery| {
        rights
            .at(chrono::Utc::now().timestamp())
            .is_some_and(|actor| {
                matches(
                    &selection,
                    actor,
                    delivery.before.as_ref(),
                    &delivery.after,
                    &delivery.event,
                )
            })
    })
}

/// The hub interest of `selection` for `viewer`: the narrowest keys that
/// still cover every event [`matches`] accepts. An event [`matches`] accepts
/// touches the ticket named, the user whose tickets are asked for, the queues
/// asked for or, at least, what the viewer may see (auth.md: a requester's
/// own and watched tickets, an agent's also those assigned and in their
/// teams' queues); only an admin's unfiltered stream is offered everything.
pub fn interest(selection: &Selection, viewer: &Actor) -> Interest {
    let me = || Key::User(viewer.user_id.clone());
    match selection {
        Selection::Ticket(id) => Interest::ticket(*id),
        Selection::Mine => Interest::Keys(vec![me()]),
        Selection::Team => Interest::queues(viewer.teams.iter().cloned()),
        Selection::Filter(f) => {
            if let Some(ids) = &f.ticket_ids {
                // An id that is no UUID matches no ticket.
                Interest::Keys(
                    ids.iter()
                        .filter_map(|id| Uuid::parse_str(id.trim()).ok())
                        .map(Key::Ticket)
                        .collect(),
                )
            } else if let Some(user) = &f.assigned_to_user_id {
                Interest::user(user.clone())
            } else if f.watched_only == Some(true) || !viewer.is_staff() {
                Interest::Keys(vec![me()])
            } else if let Some(queues) = &f.queues {
                Interest::queues(queues.iter().cloned())
            } else if viewer.has_role(Role::Admin) {
                Interest::All
            } else {
                let teams = viewer.teams.iter().map(|q| Key::Queue(q.clone()));
                Interest::Keys(std::iter::once(me()).chain(teams).collect())
            }
        }
    }
}

fn filter_matches(
    f: &SubscriptionFilter,
    viewer: &Actor,
    before: Option<&Ticket>,
    after: &Ticket,
    event: &TicketEvent,
) -> bool {
    let me = viewer.user_id.as_str();
    let either = |test: &dyn Fn(&Ticket) -> bool| before.is_some_and(test) || test(after);
    if let Some(ids) = &f.ticket_ids {
        let id = after.id.to_string();
        if !ids.iter().any(|i| i.trim().eq_ignore_ascii_case(&id)) {
            return false;
        }
    }
    if let Some(types) = &f.event_types {
        if !types
            .iter()
            .any(|t| domain::TicketEventType::from(*t) == event.event_type())
        {
            return false;
        }
    }
    if let Some(user) = &f.assigned_to_user_id {
        if !either(&|t: &Ticket| t.is_assigned_to(user)) {
            return false;
        }
    }
    if let Some(statuses) = &f.statuses {
        if !statuses
            .iter()
            .any(|s| domain::TicketStatus::from(*s) == after.status)
        {
            return false;
        }
    }
    if let Some(priorities) = &f.priorities {
        if !priorities
            .iter()
            .any(|p| domain::TicketPriority::from(*p) == after.priority)
        {
            return false;
        }
    }
    if let Some(queues) = &f.queues {
        if !either(&|t: &Ticket| queues.contains(&t.queue)) {
            return false;
        }
    }
    if f.watched_only == Some(true) {
        let watched = either(&|t: &Ticket| t.is_watched_by(me));
        let created = f.include_created == Some(true) && after.created_by == me;
        let assigned =
            f.include_assigned == Some(true) && either(&|t: &Ticket| t.is_assigned_to(me));
        if !(watched || created || assigned) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use domain::{Command, TicketPriority};
    use projections::fanout::Delivery;

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
                };
                deliveries.push(Delivery {
                    recorded,
                    changes: domain::diff(state.as_ref(), &after),
                    before: state.replace(after.clone()),
                    after,
                    event,
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
        let claims: crate::auth::Claims = serde_json::from_value(
            serde_json::json!({"sub": "root", "exp": 1000, "roles": ["ADMIN"]}),
        )
        .unwrap();
        let rights = Rights::of(&Viewer::new(claims));
        assert!(rights.at(999).is_some());
        assert!(rights.at(1000).is_none());
        let (_, life) = life();
        let expired = predicate(Selection::Filter(SubscriptionFilter::default()), rights);
        assert!(!expired(&life[0]), "the token expired long ago");
    }
}
