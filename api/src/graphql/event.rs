//! `SupportTicketEvent` and `FieldChange`: one stored ticket event as a viewer
//! may see it, with the changes between the redacted states around it.

use async_graphql::{Context, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use serde_json::Value;
use store::RecordedEvent;

use super::types::{int, EventType, SupportTicket, SupportTicketComment, User};
use super::user_by_id;

#[derive(SimpleObject, Clone, Debug)]
pub struct FieldChange {
    pub field: String,
    pub old_value: Option<Json<Value>>,
    pub new_value: Option<Json<Value>>,
}

impl From<domain::FieldChange> for FieldChange {
    fn from(c: domain::FieldChange) -> Self {
        let json = |v: Value| (!v.is_null()).then_some(Json(v));
        FieldChange {
            field: c.field,
            old_value: json(c.old_value),
            new_value: json(c.new_value),
        }
    }
}

/// One stored ticket event with the ticket before and after it, both redacted
/// for the viewer, and the changes between those two redacted states.
#[derive(Clone, Debug)]
pub struct SupportTicketEvent {
    pub recorded: RecordedEvent,
    pub event: domain::TicketEvent,
    pub before: Option<domain::Ticket>,
    pub after: domain::Ticket,
}

impl SupportTicketEvent {
    /// `step` is the unredacted step of `event`; the viewer's view of it.
    pub fn for_viewer(
        actor: &domain::Actor,
        recorded: RecordedEvent,
        event: domain::TicketEvent,
        step: domain::Step,
    ) -> SupportTicketEvent {
        SupportTicketEvent {
            recorded,
            event,
            before: step.before.as_ref().map(|t| domain::redact(actor, t)),
            after: domain::redact(actor, &step.after),
        }
    }
}

#[Object]
impl SupportTicketEvent {
    async fn id(&self) -> String {
        self.recorded.id.to_string()
    }
    /// Opaque cursor in the global log; pass as `after` to resume.
    async fn position(&self) -> String {
        self.recorded.position.to_cursor()
    }
    async fn version(&self) -> i32 {
        int(self.recorded.version)
    }
    async fn event_type(&self) -> EventType {
        self.event.event_type().into()
    }
    async fn ticket(&self) -> SupportTicket {
        SupportTicket(self.after.clone())
    }
    async fn previous_state(&self) -> Option<Json<Value>> {
        self.before
            .as_ref()
            .and_then(|t| serde_json::to_value(t).ok())
            .map(Json)
    }
    async fn triggered_by(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        Ok(user_by_id(ctx, &self.event.actor).await?)
    }
    async fn timestamp(&self) -> DateTime<Utc> {
        self.event.at
    }
    async fn metadata(&self) -> Option<Json<Value>> {
        Some(Json(self.recorded.metadata.clone()))
    }
    async fn comment(&self) -> Option<SupportTicketComment> {
        match &self.event.change {
            domain::TicketChange::Commented { comment_id, .. } => self
                .after
                .comments
                .iter()
                .find(|c| c.id == *comment_id)
                .cloned()
                .map(SupportTicketComment),
            _ => None,
        }
    }
    async fn changes(&self) -> Option<Vec<FieldChange>> {
        Some(
            domain::diff(self.before.as_ref(), &self.after)
                .into_iter()
                .map(FieldChange::from)
                .collect(),
        )
    }
}
