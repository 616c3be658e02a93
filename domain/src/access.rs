//! What an [`Actor`] may see and do: the rules of `contract/auth.md`, in one
//! place so queries, commands and subscriptions cannot disagree.

use crate::actor::{Actor, Role};
use crate::command::{Command, RelatedTicket};
use crate::error::DomainError;
use crate::event::TicketEvent;
use crate::ticket::Ticket;

/// auth.md, "Who sees a ticket". Deletion does not hide a ticket here: the
/// API decides whether to list deleted tickets, and watchers must still hear
/// of the deletion.
pub fn can_see(actor: &Actor, ticket: &Ticket) -> bool {
    if actor.has_role(Role::Admin) {
        return true;
    }
    let involved = ticket.created_by == actor.user_id || ticket.is_watched_by(&actor.user_id);
    if actor.has_role(Role::Agent) {
        involved || ticket.is_assigned_to(&actor.user_id) || actor.teams.contains(&ticket.queue)
    } else {
        involved
    }
}

/// auth.md, "Who receives an event": whoever could see the ticket right
/// before or right after it (so an unassigned agent still hears of it), but
/// never an internal comment for a requester.
pub fn may_receive(
    actor: &Actor,
    before: Option<&Ticket>,
    after: &Ticket,
    event: &TicketEvent,
) -> bool {
    let could_see = before.is_some_and(|ticket| can_see(actor, ticket)) || can_see(actor, after);
    let shown = actor.is_staff() || !event.change.is_internal_comment();
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
