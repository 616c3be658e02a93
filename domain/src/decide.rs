//! Deciding: what a command means for a ticket, as a pure function of the
//! current state, the command, the actor and the time.
//!
//! The order of checks is part of the contract: existence, then visibility
//! and role (so a hidden ticket is `NotFound` whatever the command), then
//! deletion, then the input (with what the caller found of a related
//! ticket), and last whether anything would change. A
//! command that would change nothing succeeds with no events, which makes
//! retries and double clicks harmless.

use crate::access::authorize;
use crate::actor::{Actor, Role};
use crate::command::{Command, RelatedTicket};
use crate::error::DomainError;
use crate::event::{TicketChange, TicketEvent};
use crate::limits::TicketLimits;
use crate::ticket::Ticket;
use crate::validate;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// [`decide_within`] the default [`TicketLimits`].
pub fn decide(
    state: Option<&Ticket>,
    command: &Command,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Vec<TicketEvent>, DomainError> {
    decide_within(&TicketLimits::default(), state, command, actor, now)
}

/// The events `command` by `actor` at `now` means for the ticket `state`,
/// which may hold at most what `limits` allow.
pub fn decide_within(
    limits: &TicketLimits,
    state: Option<&Ticket>,
    command: &Command,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Vec<TicketEvent>, DomainError> {
    let changes = match (state, command) {
        (None, Command::Create { .. }) => create(command, limits)?,
        // Ids are chosen by the caller, so this is a retry or a collision,
        // never a way to probe a hidden ticket.
        (Some(_), Command::Create { .. }) => return Err(DomainError::AlreadyExists),
        (None, _) => return Err(DomainError::NotFound),
        (Some(ticket), command) => {
            authorize(actor, ticket, command)?;
            if ticket.deleted {
                return Err(DomainError::Deleted);
            }
            change(ticket, command, actor, limits)?
        }
    };
    Ok(changes
        .into_iter()
        .map(|change| TicketEvent {
            actor: actor.user_id.clone(),
            at: now,
            change,
        })
        .collect())
}

fn create(command: &Command, limits: &TicketLimits) -> Result<Vec<TicketChange>, DomainError> {
    let Command::Create {
        ticket_id,
        reference,
        request,
        description,
        priority,
        queue,
        tags,
    } = command
    else {
        return Ok(vec![]);
    };
    Ok(vec![TicketChange::Created {
        ticket_id: *ticket_id,
        reference: validate::reference(reference)?,
        request: validate::request(request)?,
        description: description
            .as_deref()
            .map(validate::description)
            .transpose()?
            .flatten(),
        priority: *priority,
        queue: validate::queue(queue)?,
        tags: {
            let tags = validate::tags(tags)?;
            TicketLimits::at_most("tags", tags.len(), limits.tags)?;
            tags
        },
    }])
}

/// The first reply the requester gets from staff starts the response clock
/// (`firstResponseDate`): staff talking to themselves on their own ticket
/// does not count, nor do internal notes.
fn is_first_response(ticket: &Ticket, actor: &Actor) -> bool {
    ticket.first_response_at.is_none() && actor.is_staff() && actor.user_id != ticket.created_by
}

/// The other ticket of a relation must be one the actor sees. Relating also
/// needs it not deleted, since a deleted ticket takes no command and so could
/// not record its side; unrelating does not, so a ticket can let go of one
/// deleted since.
fn other_side(
    related_id: Uuid,
    related: &RelatedTicket,
    relating: bool,
) -> Result<(), DomainError> {
    match related {
        RelatedTicket::Unknown => Err(DomainError::Invalid(format!(
            "related ticket {related_id} does not exist"
        ))),
        RelatedTicket::Deleted { reference } if relating => Err(DomainError::Invalid(format!(
            "ticket {reference} is deleted and cannot be related"
        ))),
        RelatedTicket::Deleted { .. } | RelatedTicket::Live => Ok(()),
    }
}

/// `vec![change]` when `changed`, else nothing.
fn only_if(changed: bool, change: TicketChange) -> Vec<TicketChange> {
    if changed {
        vec![change]
    } else {
        vec![]
    }
}

fn change(
    ticket: &Ticket,
    command: &Command,
    actor: &Actor,
    limits: &TicketLimits,
) -> Result<Vec<TicketChange>, DomainError> {
    use TicketChange as C;
    Ok(match command {
        Command::Create { .. } => return Err(DomainError::AlreadyExists),
        Command::Update {
            request,
            description,
        } => {
            let request = request.as_deref().map(validate::request).transpose()?;
            let description = description
                .as_deref()
                .map(validate::description)
                .transpose()?;
            let request = request.filter(|r| *r != ticket.request);
            let description = description.filter(|d| *d != ticket.description);
            only_if(
                request.is_some() || description.is_some(),
                C::Updated {
                    request,
                    description,
                },
            )
        }
        Command::Assign {
            assignee_id,
            assignee_roles,
        } => {
            let assignee_id = validate::user_id(assignee_id)?;
            let Some(roles) = assignee_roles else {
                return Err(DomainError::Invalid(format!(
                    "unknown user {assignee_id:?}"
                )));
            };
            if !roles.iter().any(|r| matches!(r, Role::Agent | Role::Admin)) {
                return Err(DomainError::Invalid(format!(
                    "{assignee_id:?} is not an agent or admin"
                )));
            }
            only_if(
                !ticket.is_assigned_to(&assignee_id),
                C::Assigned {
                    first_response: is_first_response(ticket, actor),
                    assignee_id,
                },
            )
        }
        Command::Unassign => only_if(ticket.assigned_to.is_some(), C::Unassigned),
        Command::ChangeStatus { status, comment } => {
            let comment = comment
                .as_ref()
                .map(|(id, body)| validate::comment(body).map(|body| (*id, body)))
                .transpose()?;
            // Same status: nothing, not even the comment, so a retried
            // "resolve with a note" never posts the note twice.
            if *status == ticket.status {
                return Ok(vec![]);
            }
            if !ticket.status.can_become(*status) {
                return Err(DomainError::Invalid(format!(
                    "a {} ticket cannot become {}",
                    ticket.status.as_str(),
                    status.as_str()
                )));
            }
            let mut changes = vec![C::StatusChanged { status: *status }];
            if let Some((comment_id, body)) = comment {
                changes.push(C::Commented {
                    comment_id,
                    body,
                    internal: false,
                    first_response: is_first_response(ticket, actor),
                });
            }
            changes
        }
        Command::ChangePriority { priority } => only_if(
            *priority != ticket.priority,
            C::PriorityChanged {
                priority: *priority,
            },
        ),
        Command::Comment {
            comment_id,
            body,
            internal,
        } => vec![C::Commented {
            comment_id: *comment_id,
            body: {
                let body = validate::comment(body)?;
                TicketLimits::room_for("comments", ticket.comments.len(), limits.comments)?;
                body
            },
            internal: *internal,
            first_response: !internal && is_first_response(ticket, actor),
        }],
        Command::AddAttachment {
            attachment_id,
            name,
            url,
            mime_type,
            size,
        } => {
            let valid = validate::attachment(name, url, mime_type.as_deref(), *size)?;
            TicketLimits::room_for("attachments", ticket.attachments.len(), limits.attachments)?;
            vec![C::AttachmentAdded {
                attachment_id: *attachment_id,
                name: valid.name,
                url: valid.url,
                mime_type: valid.mime_type,
                size: valid.size,
            }]
        }
        Command::AddTag { tag } => {
            let tag = validate::tag(tag)?;
            if ticket.tags.contains(&tag) {
                return Ok(vec![]);
            }
            TicketLimits::room_for("tags", ticket.tags.len(), limits.tags)?;
            vec![C::TagAdded { tag }]
        }
        Command::RemoveTag { tag } => {
            let tag = validate::tag(tag)?;
            only_if(ticket.tags.contains(&tag), C::TagRemoved { tag })
        }
        Command::Relate { related_id, .. } | Command::Unrelate { related_id, .. }
            if *related_id == ticket.id =>
        {
            return Err(DomainError::invalid("a ticket cannot be related to itself"))
        }
        Command::Relate {
            related_id,
            related,
        } => {
            other_side(*related_id, related, true)?;
            if ticket.related.contains(related_id) {
                return Ok(vec![]);
            }
            TicketLimits::room_for("related tickets", ticket.related.len(), limits.relations)?;
            vec![C::RelatedAdded {
                related_id: *related_id,
            }]
        }
        Command::Unrelate {
            related_id,
            related,
        } => {
            other_side(*related_id, related, false)?;
            only_if(
                ticket.related.contains(related_id),
                C::RelatedRemoved {
                    related_id: *related_id,
                },
            )
        }
        Command::Watch { user_id } => {
            let user_id = validate::user_id(user_id)?;
            if ticket.is_watched_by(&user_id) {
                return Ok(vec![]);
            }
            TicketLimits::room_for("watchers", ticket.watchers.len(), limits.watchers)?;
            vec![C::WatcherAdded { user_id }]
        }
        Command::Unwatch { user_id } => {
            let user_id = validate::user_id(user_id)?;
            only_if(
                ticket.is_watched_by(&user_id),
                C::WatcherRemoved { user_id },
            )
        }
        Command::Move { queue } => {
            let queue = validate::queue(queue)?;
            only_if(queue != ticket.queue, C::QueueChanged { queue })
        }
        Command::Delete { reason } => vec![C::Deleted {
            reason: validate::reason(reason.as_deref())?,
        }],
    })
}
