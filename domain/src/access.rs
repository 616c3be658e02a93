//! What an [`Actor`] may see and do: the rules of `contract/auth.md`, in one
//! place so queries, commands and subscriptions cannot disagree.

use crate::actor::{Actor, Role};
use crate::command::{Command, RelatedTicket};
use crate::error::DomainError;
use crate::event::TicketEvent;
use crate::ticket::Ticket;

/// auth.md, "Who sees a ticket", as data: what a query over many tickets
/// filters on (the tickets read model turns it into SQL) and what
/// [`can_see`] checks on one ticket, so the two cannot disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility<'a> {
    /// An ADMIN sees every ticket.
    Everything,
    /// Everyone else sees the tickets they are involved in: created or
    /// watching, and for an AGENT also assigned to them or in one of their
    /// teams' queues.
    Involved {
        user: &'a str,
        /// Tickets assigned to `user` are visible (AGENT).
        assigned: bool,
        /// Tickets in these queues are visible (an AGENT's teams; empty
        /// for a requester).
        queues: &'a [String],
    },
}

impl Visibility<'_> {
    /// Whether `ticket` is visible. Deletion does not hide a ticket here:
    /// the API decides whether to list deleted tickets, and watchers must
    /// still hear of the deletion.
    pub fn admits(&self, ticket: &Ticket) -> bool {
        match self {
            Visibility::Everything => true,
            Visibility::Involved {
                user,
                assigned,
                queues,
            } => {
                ticket.created_by == *user
                    || ticket.is_watched_by(user)
                    || (*assigned && ticket.is_assigned_to(user))
                    || queues.contains(&ticket.queue)
            }
        }
    }
}

/// Which tickets `actor` sees (auth.md, "Who sees a ticket").
pub fn visibility(actor: &Actor) -> Visibility<'_> {
    if actor.has_role(Role::Admin) {
        return Visibility::Everything;
    }
    let agent = actor.has_role(Role::Agent);
    Visibility::Involved {
        user: &actor.user_id,
        assigned: agent,
        queues: if agent { &actor.teams } else { &[] },
    }
}

/// auth.md, "Who sees a ticket", for one ticket (see [`Visibility::admits`]).
pub fn can_see(actor: &Actor, ticket: &Ticket) -> bool {
    visibility(actor).admits(ticket)
}

/// Whose queue figures `actor` may see: an ADMIN every queue, an AGENT their
/// teams' queues, a requester none.
pub fn can_see_queue(actor: &Actor, queue: &str) -> bool {
    actor.has_role(Role::Admin)
        || (actor.has_role(Role::Agent) && actor.teams.iter().any(|t| t == queue))
}

/// auth.md, "Who receives an event": whoever could see the ticket right
/// before or right after it (so an unassigned agent still hears of it), but
/// never a staff-only event (an internal comment, an SLA warning or breach)
/// for a requester. Every path that hands out events asks this.
pub fn may_receive(
    actor: &Actor,
    before: Option<&Ticket>,
    after: &Ticket,
    event: &TicketEvent,
) -> bool {
    let could_see = before.is_some_and(|ticket| can_see(actor, ticket)) || can_see(actor, after);
    let shown = actor.is_staff() || !event.change.is_staff_only();
    could_see && shown
}

/// The ticket as `actor` may read it: without internal comments for a
/// requester. Diffing two redacted tickets gives changes that are safe to
/// send to that actor too.
pub fn redact(actor: &Actor, ticket: &Ticket) -> Ticket {
    let mut visible = ticket.clone();
    if !actor.is_staff() {
        visible.comments.retain(|comment| !comment.internal);
    }
    visible
}

/// What `actor` finds when they look up `other` (`None`: no such ticket) as
/// the other ticket of a relation. A ticket they may not see reads as one that
/// does not exist, as everywhere else.
pub fn related_ticket(actor: &Actor, other: Option<&Ticket>) -> RelatedTicket {
    match other {
        Some(ticket) if can_see(actor, ticket) => {
            if ticket.deleted {
                RelatedTicket::Deleted {
                    reference: ticket.reference.clone(),
                }
            } else {
                RelatedTicket::Live
            }
        }
        _ => RelatedTicket::Unknown,
    }
}

/// auth.md, "Who may do what", for a command on an existing ticket. Whether
/// the actor sees the ticket is checked first, so a hidden ticket answers
/// `NotFound` whatever the command.
pub fn authorize(actor: &Actor, ticket: &Ticket, command: &Command) -> Result<(), DomainError> {
    if !can_see(actor, ticket) {
        return Err(DomainError::NotFound);
    }
    if actor.has_role(Role::Admin) {
        return Ok(());
    }
    if actor.has_role(Role::Agent) {
        return match command {
            Command::Delete { .. } => {
                Err(DomainError::forbidden("only an admin may delete a ticket"))
            }
            _ => Ok(()),
        };
    }
    match command {
        Command::Create { .. } | Command::AddAttachment { .. } => Ok(()),
        Command::Comment { internal: true, .. } => Err(DomainError::forbidden(
            "a requester may only write public comments",
        )),
        Command::Comment { .. } => Ok(()),
        Command::Watch { user_id } | Command::Unwatch { user_id }
            if user_id.trim() == actor.user_id =>
        {
            Ok(())
        }
        Command::Watch { .. } | Command::Unwatch { .. } => Err(DomainError::forbidden(
            "a requester may only watch or unwatch a ticket for themselves",
        )),
        other => Err(DomainError::Forbidden(format!(
            "a requester may not run {}",
            other.name()
        ))),
    }
}

#[cfg(test)]
mod tests;
