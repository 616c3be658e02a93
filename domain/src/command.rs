//! What a caller asks of a ticket. Commands are imperative and carry every new
//! id and every fact looked up outside the domain, so deciding stays pure.

use crate::actor::Role;
use crate::ticket::{TicketPriority, TicketStatus};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Create {
        ticket_id: Uuid,
        reference: String,
        request: String,
        description: Option<String>,
        priority: TicketPriority,
        queue: String,
        tags: Vec<String>,
    },
    /// `None` leaves a field alone; `Some("")` as description clears it.
    Update {
        request: Option<String>,
        description: Option<String>,
    },
    /// `assignee_roles` is what the caller found for `assignee_id` among known
    /// users; `None` means no such user.
    Assign {
        assignee_id: String,
        assignee_roles: Option<Vec<Role>>,
    },
    Unassign,
    /// A comment given here becomes a public comment after the status change.
    ChangeStatus {
        status: TicketStatus,
        comment: Option<(Uuid, String)>,
    },
    ChangePriority {
        priority: TicketPriority,
    },
    Comment {
        comment_id: Uuid,
        body: String,
        internal: bool,
    },
    AddAttachment {
        attachment_id: Uuid,
        name: String,
        url: String,
        mime_type: Option<String>,
        size: Option<i64>,
    },
    AddTag {
        tag: String,
    },
    RemoveTag {
        tag: String,
    },
    /// `related` is what the caller found when it looked up `related_id`.
    /// The caller also runs the mirror command on the other ticket, so both
    /// sides of a relation stay in step.
    Relate {
        related_id: Uuid,
        related: RelatedTicket,
    },
    /// Like `Relate`. The other ticket may be deleted: then only this side
    /// lets go of it, since a deleted ticket takes no command.
    Unrelate {
        related_id: Uuid,
        related: RelatedTicket,
    },
    Watch {
        user_id: String,
    },
    Unwatch {
        user_id: String,
    },
    Move {
        queue: String,
    },
    Delete {
        reason: Option<String>,
    },
}

/// The other ticket of a relation, as the acting user found it when the
/// caller looked it up ([`crate::access::related_ticket`] says what a lookup
/// finds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelatedTicket {
    /// No such ticket, or one the actor may not see: the two read the same,
    /// so a relation cannot tell whether a hidden ticket exists.
    Unknown,
    /// The actor sees the ticket and it is deleted; `reference` names it in
    /// the refusal.
    Deleted { reference: String },
    /// The actor sees the ticket and it is not deleted.
    Live,
}

impl Command {
    /// A stable name for logs, traces and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Create { .. } => "CreateTicket",
            Command::Update { .. } => "UpdateTicket",
            Command::Assign { .. } => "AssignTicket",
            Command::Unassign => "UnassignTicket",
            Command::ChangeStatus { .. } => "ChangeTicketStatus",
            Command::ChangePriority { .. } => "ChangeTicketPriority",
            Command::Comment { .. } => "CommentOnTicket",
            Command::AddAttachment { .. } => "AddTicketAttachment",
            Command::AddTag { .. } => "AddTicketTag",
            Command::RemoveTag { .. } => "RemoveTicketTag",
            Command::Relate { .. } => "RelateTickets",
            Command::Unrelate { .. } => "UnrelateTickets",
            Command::Watch { .. } => "WatchTicket",
            Command::Unwatch { .. } => "UnwatchTicket",
            Command::Move { .. } => "MoveTicket",
            Command::Delete { .. } => "DeleteTicket",
        }
    }
}
