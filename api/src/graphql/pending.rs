//! Contract types whose read models do not exist yet (queue metrics,
//! notifications). They are in the schema so that clients can be written
//! against it; the operations returning them answer `NOT_IMPLEMENTED` until
//! their read models land. Nothing builds them yet, hence the `dead_code` allow.
#![allow(dead_code)]

use async_graphql::{Json, SimpleObject};
use chrono::{DateTime, Utc};
use serde_json::Value;

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
