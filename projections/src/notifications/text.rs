//! What a notification says, as a helpdesk would put it.

use domain::notify::Reason;
use domain::{SlaTarget, Ticket, TicketChange, TicketEvent};

pub(super) struct Message {
    pub title: String,
    pub body: String,
}

/// Longest excerpt of a comment in a notification body, in characters.
const EXCERPT: usize = 140;

fn excerpt(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(EXCERPT).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

fn target_name(target: SlaTarget) -> &'static str {
    match target {
        SlaTarget::FirstResponse => "first response",
        SlaTarget::Resolution => "resolution",
    }
}

/// The message `recipient` gets for `event`, notified for `reason`, or
/// `None` when the event is not worth a notification to them.
pub(super) fn message(
    before: Option<&Ticket>,
    after: &Ticket,
    event: &TicketEvent,
    recipient: &str,
    reason: Reason,
) -> Option<Message> {
    let r = &after.reference;
    let request = &after.request;
    let queue = &after.queue;
    let m = |title: String, body: String| Some(Message { title, body });
    match &event.change {
        TicketChange::Created { .. } if reason == Reason::Queue => {
            m(format!("New ticket {r} in {queue}"), request.clone())
        }
        TicketChange::Created { .. } => m(format!("New ticket {r}"), request.clone()),
        TicketChange::Commented { body, .. } if reason == Reason::Mentioned => m(
            format!("{} mentioned you on {r}", event.actor),
            excerpt(body),
        ),
        TicketChange::Updated { .. } => m(format!("{r} was updated"), request.clone()),
        TicketChange::Assigned { assignee_id, .. } if assignee_id == recipient => m(
            "Ticket assigned to you".into(),
            format!("{r} was assigned to you: {request}"),
        ),
        TicketChange::Assigned { assignee_id, .. } => m(
            format!("{r} was assigned to {assignee_id}"),
            request.clone(),
        ),
        TicketChange::Unassigned if before.is_some_and(|b| b.is_assigned_to(recipient)) => m(
            "Ticket no longer assigned to you".into(),
            format!("{r} is no longer assigned to you: {request}"),
        ),
        TicketChange::Unassigned => m(format!("{r} is unassigned"), request.clone()),
        TicketChange::StatusChanged { status } => {
            m(format!("{r} is now {}", status.as_str()), request.clone())
        }
        TicketChange::PriorityChanged { priority } => m(
            format!("{r} is now {} priority", priority.as_str()),
            request.clone(),
        ),
        TicketChange::Commented { body, internal, .. } => {
            let what = if *internal {
                "internal note"
            } else {
                "comment"
            };
            m(
                format!("New {what} on {r}"),
                format!("{}: {}", event.actor, excerpt(body)),
            )
        }
        TicketChange::AttachmentAdded { name, .. } => m(
            format!("New attachment on {r}"),
            format!("{} attached {name}", event.actor),
        ),
        TicketChange::Deleted { reason } => m(
            format!("{r} was deleted"),
            reason.clone().unwrap_or_else(|| request.clone()),
        ),
        TicketChange::QueueChanged { queue } => m(format!("{r} moved to {queue}"), request.clone()),
        TicketChange::WatcherAdded { user_id } if user_id == recipient => m(
            format!("You are now watching {r}"),
            format!("{} added you as a watcher: {request}", event.actor),
        ),
        TicketChange::WatcherRemoved { user_id } if user_id == recipient => m(
            format!("You no longer watch {r}"),
            format!("{} removed you as a watcher: {request}", event.actor),
        ),
        TicketChange::SlaWarning { target, due_at } => m(
            format!("SLA warning on {r}"),
            format!(
                "The {} target of {r} falls due at {}: {request}",
                target_name(*target),
                due_at.format("%Y-%m-%d %H:%M UTC")
            ),
        ),
        TicketChange::SlaBreached { target, due_at } => m(
            format!("SLA breached on {r}"),
            format!(
                "The {} target of {r} was due at {}: {request}",
                target_name(*target),
                due_at.format("%Y-%m-%d %H:%M UTC")
            ),
        ),
        TicketChange::WatcherAdded { .. }
        | TicketChange::WatcherRemoved { .. }
        | TicketChange::TagAdded { .. }
        | TicketChange::TagRemoved { .. }
        | TicketChange::RelatedAdded { .. }
        | TicketChange::RelatedRemoved { .. } => None,
    }
}
