//! Which ticket events a subscriber receives: auth.md "Who receives an event"
//! (could see the ticket right before OR right after, never an internal
//! comment for a requester) AND the subscription's own arguments. One pure
//! function, used identically for replayed and live events, and meant to be
//! reused by a shared fan-out hub.

use domain::{Actor, Ticket, TicketEvent};
use uuid::Uuid;

use super::inputs::SubscriptionFilter;

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
    use domain::{Command, Role, TicketPriority};

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
}
