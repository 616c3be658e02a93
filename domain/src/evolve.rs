//! Applying events: the only way a ticket's state changes.
//!
//! `evolve` is total. The log is the truth, so an event that makes little
//! sense on the state (a second `Created`, removing an absent tag) is applied
//! as best it can be rather than refused: the version still advances, so the
//! ticket's version always matches its position in the stream.

use crate::event::{TicketChange, TicketEvent};
use crate::ticket::{Attachment, Comment, Ticket, TicketStatus};

/// The state after `event`. `None` only when a non-`Created` event arrives
/// with no ticket to apply it to.
pub fn evolve(state: Option<Ticket>, event: &TicketEvent) -> Option<Ticket> {
    let Some(mut ticket) = state else {
        return created(event);
    };
    apply(&mut ticket, event);
    ticket.version = ticket.version.saturating_add(1);
    ticket.updated_at = event.at;
    Some(ticket)
}

/// The state after every event, oldest first.
pub fn fold(events: &[TicketEvent]) -> Option<Ticket> {
    events.iter().fold(None, evolve)
}

fn created(event: &TicketEvent) -> Option<Ticket> {
    let TicketChange::Created {
        ticket_id,
        reference,
        request,
        description,
        priority,
        queue,
        tags,
    } = &event.change
    else {
        return None;
    };
    let mut sorted_tags = tags.clone();
    sorted_tags.sort();
    sorted_tags.dedup();
    Some(Ticket {
        id: *ticket_id,
        reference: reference.clone(),
        request: request.clone(),
        description: description.clone(),
        status: TicketStatus::Open,
        priority: *priority,
        queue: queue.clone(),
        created_by: event.actor.clone(),
        assigned_to: None,
        watchers: vec![],
        tags: sorted_tags,
        related: vec![],
        comments: vec![],
        attachments: vec![],
        created_at: event.at,
        updated_at: event.at,
        first_response_at: None,
        resolved_at: None,
        deleted: false,
        sla_warnings: vec![],
        sla_breaches: vec![],
        version: 0,
    })
}

fn apply(ticket: &mut Ticket, event: &TicketEvent) {
    let at = event.at;
    match &event.change {
        // The ticket already exists: the first Created defines it.
        TicketChange::Created { .. } => {}
        TicketChange::Updated {
            request,
            description,
        } => {
            if let Some(request) = request {
                ticket.request = request.clone();
            }
            if let Some(description) = description {
                ticket.description = description.clone();
            }
        }
        TicketChange::Assigned {
            assignee_id,
            first_response,
        } => {
            ticket.assigned_to = Some(assignee_id.clone());
            mark_first_response(ticket, *first_response, event);
        }
        TicketChange::Unassigned => ticket.assigned_to = None,
        TicketChange::StatusChanged { status } => {
            ticket.status = *status;
            ticket.resolved_at = match status {
                TicketStatus::Resolved => Some(at),
                // Closing without resolving first still ends the work, but
                // closing a resolved ticket keeps the resolution time.
                TicketStatus::Closed => ticket.resolved_at.or(Some(at)),
                TicketStatus::Open | TicketStatus::InProgress | TicketStatus::OnHold => None,
            };
        }
        TicketChange::PriorityChanged { priority } => ticket.priority = *priority,
        TicketChange::Commented {
            comment_id,
            body,
            internal,
            first_response,
        } => {
            ticket.comments.push(Comment {
                id: *comment_id,
                body: body.clone(),
                internal: *internal,
                author: event.actor.clone(),
                created_at: at,
            });
            mark_first_response(ticket, *first_response, event);
        }
        TicketChange::AttachmentAdded {
            attachment_id,
            name,
            url,
            mime_type,
            size,
        } => ticket.attachments.push(Attachment {
            id: *attachment_id,
            name: name.clone(),
            url: url.clone(),
            mime_type: mime_type.clone(),
            size: *size,
            added_by: event.actor.clone(),
            added_at: at,
        }),
        TicketChange::Deleted { .. } => ticket.deleted = true,
        TicketChange::RelatedAdded { related_id } => {
            insert_sorted(&mut ticket.related, *related_id)
        }
        TicketChange::RelatedRemoved { related_id } => ticket.related.retain(|r| r != related_id),
        TicketChange::TagAdded { tag } => insert_sorted(&mut ticket.tags, tag.clone()),
        TicketChange::TagRemoved { tag } => ticket.tags.retain(|t| t != tag),
        TicketChange::WatcherAdded { user_id } => {
            insert_sorted(&mut ticket.watchers, user_id.clone())
        }
        TicketChange::WatcherRemoved { user_id } => ticket.watchers.retain(|w| w != user_id),
        TicketChange::QueueChanged { queue } => ticket.queue = queue.clone(),
        TicketChange::SlaWarning { target, .. } => insert_sorted(&mut ticket.sla_warnings, *target),
        TicketChange::SlaBreached { target, .. } => {
            insert_sorted(&mut ticket.sla_breaches, *target)
        }
    }
}

/// The decision was made (and recorded) by `decide`; the guard only keeps
/// the first response first if a log ever carries the flag twice.
fn mark_first_response(ticket: &mut Ticket, first_response: bool, event: &TicketEvent) {
    if first_response && ticket.first_response_at.is_none() {
        ticket.first_response_at = Some(event.at);
    }
}

/// Keeps a sorted, unique list sorted and unique.
fn insert_sorted<T: Ord>(list: &mut Vec<T>, item: T) {
    if let Err(index) = list.binary_search(&item) {
        list.insert(index, item);
    }
}
