//! Contract types of the queue-metrics and notifications read models
//! (`projections::metrics`, `projections::notifications`).

use async_graphql::{ComplexObject, Context, Json, SimpleObject};
use chrono::{DateTime, Utc};
use serde_json::Value;

use uuid::Uuid;

use super::types::{EventType, PageInfo};

#[derive(SimpleObject, Clone, Debug)]
pub struct QueueMetrics {
    pub queue: String,
    pub open: i32,
    pub in_progress: i32,
    pub on_hold: i32,
    pub resolved: i32,
    pub closed: i32,
    pub unassigned: i32,
    /// {"LOW": n, "MEDIUM": n, "HIGH": n, "CRITICAL": n} over not-closed tickets
    pub by_priority: Json<Value>,
    pub avg_first_response_seconds: Option<f64>,
    pub avg_resolution_seconds: Option<f64>,
    pub oldest_open_created_date: Option<DateTime<Utc>>,
    pub sla_breaches: i32,
    pub created_today: i32,
    pub resolved_today: i32,
    pub position: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Notification {
    pub id: String,
    pub event_type: EventType,
    pub title: String,
    pub body: String,
    pub ticket_id: String,
    pub url: String,
    pub tag: String,
    pub require_interaction: bool,
    pub read: bool,
    pub created_date: DateTime<Utc>,
    pub reason: NotificationReason,
    /// Every ticket it covers: one, or several for a DIGEST (`ticketId` is
    /// the first).
    pub ticket_ids: Vec<String>,
    #[graphql(skip)]
    pub actor_id: Option<String>,
}

#[ComplexObject]
impl Notification {
    /// Who caused it; null for the SLA process.
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<super::types::User>> {
        match &self.actor_id {
            Some(id) => Ok(Some(super::user_by_id(ctx, id).await?)),
            None => Ok(None),
        }
    }
}

/// Why a notification reached its recipient (`domain::notify::Reason`).
#[derive(async_graphql::Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "domain::notify::Reason")]
pub enum NotificationReason {
    AssignedToYou,
    Mentioned,
    YourTicket,
    Watching,
    Queue,
    Digest,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct NotificationEdge {
    pub cursor: String,
    pub node: Notification,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct NotificationConnection {
    pub edges: Vec<NotificationEdge>,
    pub page_info: PageInfo,
    pub unread_count: i32,
}

impl From<projections::metrics::QueueMetricsRow> for QueueMetrics {
    fn from(row: projections::metrics::QueueMetricsRow) -> Self {
        use super::types::int;
        QueueMetrics {
            by_priority: Json(row.by_priority_json()),
            queue: row.queue,
            open: int(row.open),
            in_progress: int(row.in_progress),
            on_hold: int(row.on_hold),
            resolved: int(row.resolved),
            closed: int(row.closed),
            unassigned: int(row.unassigned),
            avg_first_response_seconds: row.avg_first_response_seconds,
            avg_resolution_seconds: row.avg_resolution_seconds,
            oldest_open_created_date: row.oldest_open_created_at,
            sla_breaches: int(row.sla_breaches),
            created_today: int(row.created_today),
            resolved_today: int(row.resolved_today),
            position: row.position.to_cursor(),
            updated_at: row.updated_at,
        }
    }
}

impl TryFrom<projections::notifications::Notification> for Notification {
    type Error = String;

    /// Fails only on an event type this server does not know (a bug).
    fn try_from(n: projections::notifications::Notification) -> Result<Self, String> {
        let event_type: domain::TicketEventType =
            serde_json::from_value(Value::String(n.event_type.clone())).map_err(|e| {
                format!("notification {}: event type {:?}: {e}", n.id, n.event_type)
            })?;
        let reason = domain::notify::Reason::parse(&n.reason)
            .ok_or_else(|| format!("notification {}: reason {:?}", n.id, n.reason))?;
        Ok(Notification {
            id: n.id.to_string(),
            event_type: event_type.into(),
            title: n.title,
            body: n.body,
            ticket_id: n.ticket_id.to_string(),
            url: n.url,
            tag: n.tag,
            require_interaction: n.require_interaction,
            read: n.read,
            created_date: n.created_at,
            reason: reason.into(),
            ticket_ids: n.ticket_ids.iter().map(Uuid::to_string).collect(),
            actor_id: n.actor,
        })
    }
}
