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
use fanout::{Interest, Key, Predicate};
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
mod tests;
