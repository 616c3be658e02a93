//! The contract's input objects.

use async_graphql::InputObject;

use super::bounds;
use super::types::{EventType, TicketPriority, TicketStatus};
use crate::error::ApiError;
use projections::tickets::TicketFilter;

/// Which ticket events a `supportTicketEvents` subscriber wants. Every given
/// condition must hold. `watchedOnly` keeps tickets the subscriber watches;
/// with it, `includeCreated` / `includeAssigned` also keep tickets they created
/// / are assigned to.
#[derive(InputObject, Clone, Debug, Default)]
#[graphql(name = "SupportTicketSubscriptionFilter")]
pub struct SubscriptionFilter {
    pub ticket_ids: Option<Vec<String>>,
    pub event_types: Option<Vec<EventType>>,
    pub assigned_to_user_id: Option<String>,
    pub statuses: Option<Vec<TicketStatus>>,
    pub priorities: Option<Vec<TicketPriority>>,
    pub queues: Option<Vec<String>>,
    pub watched_only: Option<bool>,
    pub include_created: Option<bool>,
    pub include_assigned: Option<bool>,
}

/// Every given condition must hold; `tags` matches tickets with any of them;
/// `search` matches reference, request and description (case-insensitive).
#[derive(InputObject, Clone, Debug, Default)]
pub struct SupportTicketFilter {
    pub statuses: Option<Vec<TicketStatus>>,
    pub priorities: Option<Vec<TicketPriority>>,
    pub queues: Option<Vec<String>>,
    pub assigned_to_user_id: Option<String>,
    pub created_by_user_id: Option<String>,
    pub tags: Option<Vec<String>>,
    pub search: Option<String>,
    pub include_deleted: Option<bool>,
}

impl SupportTicketFilter {
    /// INVALID when a list or the search term is over its bound.
    pub fn check_bounds(&self) -> Result<(), ApiError> {
        bounds::items("queues", self.queues.as_ref(), bounds::MAX_FILTER_ITEMS)?;
        bounds::items("tags", self.tags.as_ref(), bounds::MAX_FILTER_ITEMS)?;
        bounds::bytes("search", self.search.as_deref(), bounds::MAX_SEARCH_BYTES)
    }
}

impl SubscriptionFilter {
    /// INVALID when a list is over its bound.
    pub fn check_bounds(&self) -> Result<(), ApiError> {
        bounds::items("ticketIds", self.ticket_ids.as_ref(), bounds::MAX_IDS)?;
        bounds::items("queues", self.queues.as_ref(), bounds::MAX_FILTER_ITEMS)
    }
}

impl From<SupportTicketFilter> for TicketFilter {
    fn from(f: SupportTicketFilter) -> Self {
        let statuses = f.statuses.unwrap_or_default();
        let priorities = f.priorities.unwrap_or_default();
        TicketFilter {
            statuses: statuses
                .into_iter()
                .map(|s| domain::TicketStatus::from(s).as_str().to_string())
                .collect(),
            priorities: priorities
                .into_iter()
                .map(|p| domain::TicketPriority::from(p).as_str().to_string())
                .collect(),
            queues: f.queues.unwrap_or_default(),
            assigned_to: f.assigned_to_user_id,
            created_by: f.created_by_user_id,
            tags: f.tags.unwrap_or_default(),
            search: f.search,
            include_deleted: f.include_deleted.unwrap_or(false),
        }
    }
}

#[derive(InputObject, Clone, Debug)]
pub struct CreateSupportTicketInput {
    pub request: String,
    pub description: Option<String>,
    #[graphql(default_with = "Some(TicketPriority::Medium)")]
    pub priority: Option<TicketPriority>,
    /// Default: the server's default queue (`support` unless configured).
    pub queue: Option<String>,
    pub tags: Option<Vec<String>>,
}

/// A field left out stays as it is; an empty description clears it.
#[derive(InputObject, Clone, Debug)]
pub struct UpdateSupportTicketInput {
    pub request: Option<String>,
    pub description: Option<String>,
}

#[derive(InputObject, Clone, Debug)]
pub struct AttachmentInput {
    pub name: String,
    pub url: String,
    pub mime_type: Option<String>,
    pub size: Option<i32>,
}
