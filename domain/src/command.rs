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
    /// The caller checks that the other ticket exists and runs the mirror
    /// command on it, so both sides of a relation stay in step.
    Relate {
        related_id: Uuid,
    },
    Unrelate {
        related_id: Uuid,
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
