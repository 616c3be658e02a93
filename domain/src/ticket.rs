//! The state of one support ticket, as rebuilt from its events, the values
//! its fields take (status, priority, SLA target) and the status workflow it
//! follows. Events and the SLA process both speak of these values, so they
//! live here, below both.
//!
//! Serialised field names are the contract's `SupportTicket` names, so the
//! JSON of a ticket, its `previousState` and the `field` of a `FieldChange`
//! all speak the same language.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TicketStatus {
    Open,
    InProgress,
    OnHold,
    Resolved,
    Closed,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 5] = [
        TicketStatus::Open,
        TicketStatus::InProgress,
        TicketStatus::OnHold,
        TicketStatus::Resolved,
        TicketStatus::Closed,
    ];

    /// Whether the workflow allows moving from `self` to `next`. Staying put
    /// is not a transition: the caller treats it as "nothing to do".
    ///
    /// A closed ticket may only be reopened, so that work on it starts again
    /// from the front of the queue; a resolved ticket is either accepted
    /// (closed) or taken back into work, never parked on hold.
    pub fn can_become(self, next: TicketStatus) -> bool {
        use TicketStatus::*;
        match (self, next) {
            (from, to) if from == to => false,
            (Closed, to) => to == Open,
            (Resolved, OnHold) => false,
            _ => true,
        }
    }

    /// The contract's name, e.g. `IN_PROGRESS`.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Open => "OPEN",
            TicketStatus::InProgress => "IN_PROGRESS",
            TicketStatus::OnHold => "ON_HOLD",
            TicketStatus::Resolved => "RESOLVED",
            TicketStatus::Closed => "CLOSED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TicketPriority {
    Low,
    Medium,
    High,
    Critical,
}

impl TicketPriority {
    pub const ALL: [TicketPriority; 4] = [
        TicketPriority::Low,
        TicketPriority::Medium,
        TicketPriority::High,
        TicketPriority::Critical,
    ];

    /// The contract's name, e.g. `CRITICAL`.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketPriority::Low => "LOW",
            TicketPriority::Medium => "MEDIUM",
            TicketPriority::High => "HIGH",
            TicketPriority::Critical => "CRITICAL",
        }
    }
}

/// A comment as the contract's `SupportTicketComment` names it; the author is
/// a user id, resolved to a `User` by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    pub id: Uuid,
    #[serde(rename = "comment")]
    pub body: String,
    pub internal: bool,
    pub author: String,
    #[serde(rename = "createdDate")]
    pub created_at: DateTime<Utc>,
}

/// An attachment as the contract's `SupportTicketAttachment` names it. The
/// domain stores only the link; the bytes live wherever `url` points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub id: Uuid,
    pub name: String,
    pub url: String,
    pub mime_type: Option<String>,
    pub size: Option<i64>,
    pub added_by: String,
    #[serde(rename = "addedDate")]
    pub added_at: DateTime<Utc>,
}

/// What an SLA promises for a ticket. The policy and the clock that measure
/// each target are in [`crate::sla`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SlaTarget {
    FirstResponse,
    Resolution,
}

impl SlaTarget {
    pub const ALL: [SlaTarget; 2] = [SlaTarget::FirstResponse, SlaTarget::Resolution];

    /// The stored name, e.g. `FIRST_RESPONSE`.
    pub fn as_str(self) -> &'static str {
        match self {
            SlaTarget::FirstResponse => "FIRST_RESPONSE",
            SlaTarget::Resolution => "RESOLUTION",
        }
    }
}

/// One ticket as it stands after some prefix of its stream. Only
/// [`crate::evolve()`] builds or changes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    pub id: Uuid,
    pub reference: String,
    pub request: String,
    pub description: Option<String>,
    pub status: TicketStatus,
    pub priority: TicketPriority,
    pub queue: String,
    pub created_by: String,
    pub assigned_to: Option<String>,
    /// Sorted and unique, so equal sets compare and diff as equal.
    pub watchers: Vec<String>,
    /// Sorted and unique.
    pub tags: Vec<String>,
    /// Sorted and unique.
    #[serde(rename = "relatedTickets")]
    pub related: Vec<Uuid>,
    pub comments: Vec<Comment>,
    pub attachments: Vec<Attachment>,
    #[serde(rename = "createdDate")]
    pub created_at: DateTime<Utc>,
    #[serde(rename = "updatedDate")]
    pub updated_at: DateTime<Utc>,
    #[serde(rename = "firstResponseDate")]
    pub first_response_at: Option<DateTime<Utc>>,
    #[serde(rename = "resolvedDate")]
    pub resolved_at: Option<DateTime<Utc>>,
    pub deleted: bool,
    /// SLA targets warned about, once each ([`crate::sla`]). Sorted and
    /// unique. Not a contract field: [`crate::diff`] leaves it out, and
    /// states stored before SLA events existed read as empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sla_warnings: Vec<SlaTarget>,
    /// SLA targets breached, once each. Sorted and unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sla_breaches: Vec<SlaTarget>,
    /// Version of the stream: 0 after the Created event, +1 per event.
    pub version: u64,
}

impl Ticket {
    /// About how many bytes the ticket takes in memory: its texts and lists
    /// plus a fixed part per item. An estimate, for the bounds on what the
    /// server keeps in memory, not an exact count.
    pub fn approx_bytes(&self) -> usize {
        fn text(s: &str) -> usize {
            s.len() + std::mem::size_of::<String>()
        }
        let opt = |s: &Option<String>| s.as_deref().map_or(0, text);
        let comments: usize = self
            .comments
            .iter()
            .map(|c| std::mem::size_of::<Comment>() + c.body.len() + c.author.len())
            .sum();
        let attachments: usize = self
            .attachments
            .iter()
            .map(|a| {
                std::mem::size_of::<Attachment>()
                    + a.name.len()
                    + a.url.len()
                    + a.mime_type.as_deref().map_or(0, str::len)
                    + a.added_by.len()
            })
            .sum();
        std::mem::size_of::<Ticket>()
            + self.reference.len()
            + self.request.len()
            + opt(&self.description)
            + self.queue.len()
            + self.created_by.len()
            + opt(&self.assigned_to)
            + self.watchers.iter().map(|w| text(w)).sum::<usize>()
            + self.tags.iter().map(|t| text(t)).sum::<usize>()
            + self.related.len() * std::mem::size_of::<Uuid>()
            + comments
            + attachments
            + (self.sla_warnings.len() + self.sla_breaches.len()) * std::mem::size_of::<SlaTarget>()
    }
    pub fn is_watched_by(&self, user_id: &str) -> bool {
        self.watchers.iter().any(|w| w == user_id)
    }

    pub fn is_assigned_to(&self, user_id: &str) -> bool {
        self.assigned_to.as_deref() == Some(user_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_priorities_serialise_with_the_contract_names() {
        for status in TicketStatus::ALL {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::json!(status.as_str())
            );
        }
        for priority in TicketPriority::ALL {
            assert_eq!(
                serde_json::to_value(priority).unwrap(),
                serde_json::json!(priority.as_str())
            );
        }
    }
}
