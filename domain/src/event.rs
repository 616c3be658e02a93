//! What happened to a ticket. Events are past tense and carry only the new
//! values: the "before" of any change always comes from folding the history,
//! so it can never disagree with it.
//!
//! The serde attributes here are the stored payload format (see
//! [`crate::codec`]): renaming a variant or a field is a schema change and
//! needs a new schema version and an upcaster.

use crate::ticket::{SlaTarget, TicketPriority, TicketStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

/// One recorded change, with who made it and when.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketEvent {
    /// The user id of the actor ("system" for automated changes).
    pub actor: String,
    pub at: DateTime<Utc>,
    pub change: TicketChange,
}

impl TicketEvent {
    pub fn event_type(&self) -> TicketEventType {
        self.change.event_type()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum TicketChange {
    #[serde(rename = "TicketCreated")]
    Created {
        ticket_id: Uuid,
        reference: String,
        request: String,
        description: Option<String>,
        priority: TicketPriority,
        queue: String,
        tags: Vec<String>,
    },
    /// `None` means "unchanged"; `Some(None)` clears the description.
    #[serde(rename = "TicketUpdated")]
    Updated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<String>,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        description: Option<Option<String>>,
    },
    /// `first_response` records the decision, so replaying never has to
    /// re-derive it from roles that may have changed since.
    #[serde(rename = "TicketAssigned")]
    Assigned {
        assignee_id: String,
        first_response: bool,
    },
    #[serde(rename = "TicketUnassigned")]
    Unassigned,
    #[serde(rename = "TicketStatusChanged")]
    StatusChanged { status: TicketStatus },
    #[serde(rename = "TicketPriorityChanged")]
    PriorityChanged { priority: TicketPriority },
    #[serde(rename = "TicketCommented")]
    Commented {
        comment_id: Uuid,
        body: String,
        internal: bool,
        first_response: bool,
    },
    #[serde(rename = "TicketAttachmentAdded")]
    AttachmentAdded {
        attachment_id: Uuid,
        name: String,
        url: String,
        mime_type: Option<String>,
        size: Option<i64>,
    },
    #[serde(rename = "TicketDeleted")]
    Deleted { reason: Option<String> },
    #[serde(rename = "TicketRelatedAdded")]
    RelatedAdded { related_id: Uuid },
    #[serde(rename = "TicketRelatedRemoved")]
    RelatedRemoved { related_id: Uuid },
    #[serde(rename = "TicketTagAdded")]
    TagAdded { tag: String },
    #[serde(rename = "TicketTagRemoved")]
    TagRemoved { tag: String },
    #[serde(rename = "TicketWatcherAdded")]
    WatcherAdded { user_id: String },
    #[serde(rename = "TicketWatcherRemoved")]
    WatcherRemoved { user_id: String },
    #[serde(rename = "TicketQueueChanged")]
    QueueChanged { queue: String },
    /// The SLA process saw `target` come due soon (see [`crate::sla`]);
    /// `due_at` is the target's due time as computed then.
    #[serde(rename = "TicketSlaWarning")]
    SlaWarning {
        target: SlaTarget,
        due_at: DateTime<Utc>,
    },
    /// `target` was missed: it was neither met nor paused at `due_at`.
    #[serde(rename = "TicketSlaBreached")]
    SlaBreached {
        target: SlaTarget,
        due_at: DateTime<Utc>,
    },
}

/// A field that is present decodes to `Some`, even when it is `null`; an
/// absent one falls back to the `default` of `None`. This is how `Updated`
/// tells "clear the description" from "leave it alone".
fn present<'de, D>(deserializer: D) -> Result<Option<Option<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    Option::<String>::deserialize(deserializer).map(Some)
}

impl TicketChange {
    pub fn event_type(&self) -> TicketEventType {
        match self {
            TicketChange::Created { .. } => TicketEventType::Created,
            TicketChange::Updated { .. } => TicketEventType::Updated,
            TicketChange::Assigned { .. } => TicketEventType::Assigned,
            TicketChange::Unassigned => TicketEventType::Unassigned,
            TicketChange::StatusChanged { .. } => TicketEventType::StatusChanged,
            TicketChange::PriorityChanged { .. } => TicketEventType::PriorityChanged,
            TicketChange::Commented { .. } => TicketEventType::Commented,
            TicketChange::AttachmentAdded { .. } => TicketEventType::AttachmentAdded,
            TicketChange::Deleted { .. } => TicketEventType::Deleted,
            TicketChange::RelatedAdded { .. } => TicketEventType::RelatedAdded,
            TicketChange::RelatedRemoved { .. } => TicketEventType::RelatedRemoved,
            TicketChange::TagAdded { .. } => TicketEventType::TagAdded,
            TicketChange::TagRemoved { .. } => TicketEventType::TagRemoved,
            TicketChange::WatcherAdded { .. } => TicketEventType::WatcherAdded,
            TicketChange::WatcherRemoved { .. } => TicketEventType::WatcherRemoved,
            TicketChange::QueueChanged { .. } => TicketEventType::QueueChanged,
            TicketChange::SlaWarning { .. } => TicketEventType::SlaWarning,
            TicketChange::SlaBreached { .. } => TicketEventType::SlaBreached,
        }
    }

    /// Internal comments and their events never reach a requester.
    pub fn is_internal_comment(&self) -> bool {
        matches!(self, TicketChange::Commented { internal: true, .. })
    }

    /// Events only staff ever receive, on every path (history,
    /// subscriptions, notifications, previous states): internal comments and
    /// the SLA process's warnings and breaches (auth.md, "Next round").
    pub fn is_staff_only(&self) -> bool {
        self.is_internal_comment()
            || matches!(
                self,
                TicketChange::SlaWarning { .. } | TicketChange::SlaBreached { .. }
            )
    }
}

/// The contract's `SupportTicketEventType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TicketEventType {
    Created,
    Updated,
    Assigned,
    Unassigned,
    StatusChanged,
    PriorityChanged,
    Commented,
    AttachmentAdded,
    Deleted,
    RelatedAdded,
    RelatedRemoved,
    TagAdded,
    TagRemoved,
    WatcherAdded,
    WatcherRemoved,
    QueueChanged,
    SlaWarning,
    SlaBreached,
}

impl TicketEventType {
    pub const ALL: [TicketEventType; 18] = [
        TicketEventType::Created,
        TicketEventType::Updated,
        TicketEventType::Assigned,
        TicketEventType::Unassigned,
        TicketEventType::StatusChanged,
        TicketEventType::PriorityChanged,
        TicketEventType::Commented,
        TicketEventType::AttachmentAdded,
        TicketEventType::Deleted,
        TicketEventType::RelatedAdded,
        TicketEventType::RelatedRemoved,
        TicketEventType::TagAdded,
        TicketEventType::TagRemoved,
        TicketEventType::WatcherAdded,
        TicketEventType::WatcherRemoved,
        TicketEventType::QueueChanged,
        TicketEventType::SlaWarning,
        TicketEventType::SlaBreached,
    ];

    /// The contract's name, e.g. `STATUS_CHANGED`.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketEventType::Created => "CREATED",
            TicketEventType::Updated => "UPDATED",
            TicketEventType::Assigned => "ASSIGNED",
            TicketEventType::Unassigned => "UNASSIGNED",
            TicketEventType::StatusChanged => "STATUS_CHANGED",
            TicketEventType::PriorityChanged => "PRIORITY_CHANGED",
            TicketEventType::Commented => "COMMENTED",
            TicketEventType::AttachmentAdded => "ATTACHMENT_ADDED",
            TicketEventType::Deleted => "DELETED",
            TicketEventType::RelatedAdded => "RELATED_ADDED",
            TicketEventType::RelatedRemoved => "RELATED_REMOVED",
            TicketEventType::TagAdded => "TAG_ADDED",
            TicketEventType::TagRemoved => "TAG_REMOVED",
            TicketEventType::WatcherAdded => "WATCHER_ADDED",
            TicketEventType::WatcherRemoved => "WATCHER_REMOVED",
            TicketEventType::QueueChanged => "QUEUE_CHANGED",
            TicketEventType::SlaWarning => "SLA_WARNING",
            TicketEventType::SlaBreached => "SLA_BREACHED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_serialise_with_the_contract_names() {
        for kind in TicketEventType::ALL {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
    }
}
