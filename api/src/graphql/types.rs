//! The contract's output types and enums over the domain's values. A ticket
//! reaching these types has already been checked for visibility and redacted
//! for its viewer; field resolvers only look up users and related tickets.

use async_graphql::{Context, Enum, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use serde_json::Value;
use store::RecordedEvent;

pub use super::event::{FieldChange, SupportTicketEvent};
use super::{api, user_by_id, viewer};
use crate::error::ApiError;

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "domain::TicketStatus")]
pub enum TicketStatus {
    Open,
    InProgress,
    OnHold,
    Resolved,
    Closed,
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "domain::TicketPriority")]
pub enum TicketPriority {
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "domain::Role")]
pub enum Role {
    Requester,
    Agent,
    Admin,
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(name = "SupportTicketEventType", remote = "domain::TicketEventType")]
pub enum EventType {
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
    /// Added by this server: a ticket is close to its SLA target.
    SlaWarning,
    /// Added by this server: a ticket passed its SLA target.
    SlaBreached,
}

/// GraphQL's `Int` is 32 bits; versions and sizes beyond it are clamped.
pub fn int(n: impl TryInto<i32>) -> i32 {
    n.try_into().unwrap_or(i32::MAX)
}

#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub roles: Vec<Role>,
    pub teams: Vec<String>,
}

impl User {
    /// What is shown for a user id with no recorded profile.
    pub fn unknown(id: &str) -> User {
        User {
            id: id.to_string(),
            first_name: None,
            last_name: None,
            email: None,
            roles: vec![],
            teams: vec![],
        }
    }
}

impl From<crate::users::UserProfile> for User {
    fn from(p: crate::users::UserProfile) -> Self {
        User {
            id: p.id,
            first_name: p.first_name,
            last_name: p.last_name,
            email: p.email,
            roles: p.roles.into_iter().map(Role::from).collect(),
            teams: p.teams,
        }
    }
}

/// A ticket as its viewer may read it (see [`domain::redact`]).
#[derive(Clone, Debug)]
pub struct SupportTicket(pub domain::Ticket);

#[Object]
impl SupportTicket {
    async fn id(&self) -> String {
        self.0.id.to_string()
    }
    async fn reference(&self) -> &str {
        &self.0.reference
    }
    async fn request(&self) -> &str {
        &self.0.request
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn status(&self) -> TicketStatus {
        self.0.status.into()
    }
    async fn priority(&self) -> TicketPriority {
        self.0.priority.into()
    }
    async fn queue(&self) -> &str {
        &self.0.queue
    }
    async fn created_by(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        Ok(user_by_id(ctx, &self.0.created_by).await?)
    }
    async fn assigned_to(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match &self.0.assigned_to {
            Some(id) => Ok(Some(user_by_id(ctx, id).await?)),
            None => Ok(None),
        }
    }
    async fn watchers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        let mut users = Vec::with_capacity(self.0.watchers.len());
        for id in &self.0.watchers {
            users.push(user_by_id(ctx, id).await?);
        }
        Ok(users)
    }
    async fn tags(&self) -> &[String] {
        &self.0.tags
    }
    /// Related tickets the viewer may see, as they stand now: all of them
    /// in one query of the tickets read model (once it holds the caller's
    /// own writes), then the visibility rule, so a hidden ticket costs no
    /// more than its row.
    #[graphql(complexity = "super::cost::related(child_complexity)")]
    async fn related_tickets(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<SupportTicket>> {
        let viewer = viewer(ctx)?;
        if self.0.related.is_empty() {
            return Ok(Vec::new());
        }
        let api = api(ctx);
        super::query::wait_for_own_writes(api, viewer.id(), projections::tickets::NAME).await;
        let found = projections::tickets::find_tickets(&api.read_db, &self.0.related)
            .await
            .map_err(ApiError::from)?;
        // In the ticket's own order (sorted ids), as before.
        let mut visible: Vec<SupportTicket> = found
            .into_iter()
            .filter(|t| domain::can_see(&viewer.actor, t))
            .map(|t| SupportTicket(domain::redact(&viewer.actor, &t)))
            .collect();
        visible.sort_by_key(|t| self.0.related.iter().position(|id| *id == t.0.id));
        Ok(visible)
    }
    async fn comments(&self) -> Vec<SupportTicketComment> {
        self.0
            .comments
            .iter()
            .cloned()
            .map(SupportTicketComment)
            .collect()
    }
    async fn attachments(&self) -> Vec<SupportTicketAttachment> {
        self.0
            .attachments
            .iter()
            .cloned()
            .map(SupportTicketAttachment)
            .collect()
    }
    async fn created_date(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_date(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn first_response_date(&self) -> Option<DateTime<Utc>> {
        self.0.first_response_at
    }
    async fn resolved_date(&self) -> Option<DateTime<Utc>> {
        self.0.resolved_at
    }
    async fn deleted(&self) -> bool {
        self.0.deleted
    }
    async fn version(&self) -> i32 {
        int(self.0.version)
    }
}

#[derive(Clone, Debug)]
pub struct SupportTicketComment(pub domain::Comment);

#[Object]
impl SupportTicketComment {
    async fn id(&self) -> String {
        self.0.id.to_string()
    }
    async fn comment(&self) -> &str {
        &self.0.body
    }
    async fn internal(&self) -> bool {
        self.0.internal
    }
    async fn author(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        Ok(user_by_id(ctx, &self.0.author).await?)
    }
    async fn created_date(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(Clone, Debug)]
pub struct SupportTicketAttachment(pub domain::Attachment);

#[Object]
impl SupportTicketAttachment {
    async fn id(&self) -> String {
        self.0.id.to_string()
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn url(&self) -> &str {
        &self.0.url
    }
    async fn mime_type(&self) -> Option<&str> {
        self.0.mime_type.as_deref()
    }
    async fn size(&self) -> Option<i32> {
        self.0.size.map(int)
    }
    async fn added_by(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        Ok(user_by_id(ctx, &self.0.added_by).await?)
    }
    async fn added_date(&self) -> DateTime<Utc> {
        self.0.added_at
    }
}

#[derive(SimpleObject, Clone, Debug, Default)]
pub struct SupportTicketMutationResult {
    pub success: bool,
    pub ticket: Option<SupportTicket>,
    /// The (last) event the command appended; null if it changed nothing.
    pub event: Option<SupportTicketEvent>,
    /// Human message when success is false.
    pub error: Option<String>,
    /// NOT_FOUND | CONFLICT | INVALID | FORBIDDEN | DELETED | RATE_LIMITED
    pub error_code: Option<String>,
    /// With RATE_LIMITED: seconds to wait before trying again (nothing was
    /// done).
    pub retry_after_seconds: Option<i32>,
    /// With CONFLICT (a stale `expectedVersion`): the ticket's version now.
    pub current_version: Option<i32>,
    /// With CONFLICT: the events since the caller's `expectedVersion` that
    /// the caller may see, oldest first, with their changes and who made
    /// them ("Bob changed the status to RESOLVED while you were typing").
    pub changes_since: Option<Vec<SupportTicketEvent>>,
}

impl SupportTicketMutationResult {
    pub fn rejected(code: &str, message: impl Into<String>) -> Self {
        SupportTicketMutationResult {
            success: false,
            error: Some(message.into()),
            error_code: Some(code.to_string()),
            ..Default::default()
        }
    }

    /// The caller is over its mutation budget: nothing was done.
    pub fn rate_limited(limited: crate::rate_limits::Limited) -> Self {
        SupportTicketMutationResult {
            retry_after_seconds: Some(
                i32::try_from(limited.retry_after_seconds).unwrap_or(i32::MAX),
            ),
            ..Self::rejected("RATE_LIMITED", limited.message("mutations"))
        }
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct SupportTicketEdge {
    pub cursor: String,
    pub node: SupportTicket,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct SupportTicketConnection {
    pub edges: Vec<SupportTicketEdge>,
    pub page_info: PageInfo,
    pub total_count: i32,
}

/// Raw audit record, for audit and replay tooling.
#[derive(SimpleObject, Clone, Debug)]
pub struct StoredEvent {
    pub id: String,
    pub position: String,
    pub stream_id: String,
    pub version: i32,
    pub event_type: String,
    pub schema_version: i32,
    pub data: Json<Value>,
    pub metadata: Json<Value>,
    pub recorded_at: DateTime<Utc>,
    /// SHA-256 (hex) chaining this event to the previous event of its stream:
    /// `tickets log verify` recomputes it. Empty on an EventStoreDB log.
    pub hash: String,
}

impl From<RecordedEvent> for StoredEvent {
    fn from(e: RecordedEvent) -> Self {
        StoredEvent {
            id: e.id.to_string(),
            position: e.position.to_cursor(),
            stream_id: e.stream_id,
            version: int(e.version),
            event_type: e.event_type,
            schema_version: e.schema_version,
            data: Json(e.data),
            metadata: Json(e.metadata),
            recorded_at: e.recorded_at,
            hash: e.hash,
        }
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct EventLogPage {
    pub events: Vec<StoredEvent>,
    /// Pass as `after` for the next page; null when this page is empty.
    pub next_after: Option<String>,
}
