//! The notifications projection: a per-user inbox.
//!
//! Each ticket event produces one notification per user who should hear of
//! it: the creator, the assignee and the watchers, before or after the event,
//! each only if [`domain::may_receive`] lets them (so no requester ever gets an
//! internal comment), and never the user who caused the event. SLA events go
//! to staff only. Events that only shuffle tags or relations notify no one.
//!
//! Recipients' roles and teams come from the projection's own copy of the
//! `UserProfileRecorded` events (`notification_users`), as they stood at the
//! event: a rebuild gives the same inboxes whatever the `users` read model
//! says by then. A user with no profile counts as a requester. Likewise the
//! ticket before and after each event comes from `notification_tickets`,
//! evolved with the domain, so this projection depends on no other.
//!
//! Ids are deterministic (uuid v5 of the event id and the recipient): read
//! flags, kept apart in `notification_reads` (see [`inbox`]), survive a
//! rebuild.
//!
//! Live side: [`NotificationsProjection::subscribe`] yields a
//! [`NewNotification`] per notification once its batch is committed.

mod inbox;
mod text;

use async_trait::async_trait;
use domain::{Actor, Role, Ticket, TicketChange, TicketEvent};
use serde::Deserialize;
use store::{Position, RecordedEvent};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bind::{execute, fetch, Arg};
use crate::db::{ReadDb, ReadTx, RowPosition};
use crate::error::ApplyError;
use crate::gate::CommitGate;
use crate::runner::Projection;

pub use inbox::{
    mark_all_read, mark_read, notification, notifications, unread_count, InboxError, Notification,
    NotificationPage,
};

/// The checkpoint name of [`NotificationsProjection`].
pub const NAME: &str = "notifications";

/// Namespace of notification ids: `v5(NAMESPACE, "<event id>/<recipient>")`.
pub const NAMESPACE: Uuid = Uuid::from_u128(0x6e6f_7469_6669_6361_7469_6f6e_7300_0001);

/// A notification just committed to `recipient`'s inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    pub recipient: String,
    pub id: Uuid,
    pub position: Position,
}

/// The id of the notification of `event_id` to `recipient`.
pub fn notification_id(event_id: Uuid, recipient: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("{event_id}/{recipient}").as_bytes())
}

/// Writes `notifications`, `notification_counts` and its own copies of
/// tickets and user profiles.
#[derive(Clone)]
pub struct NotificationsProjection {
    gate: CommitGate<NewNotification>,
}

impl Default for NotificationsProjection {
    fn default() -> Self {
        NotificationsProjection {
            gate: CommitGate::new(4096),
        }
    }
}

impl NotificationsProjection {
    pub fn new() -> NotificationsProjection {
        NotificationsProjection::default()
    }

    /// Committed notifications. Needs [`Self::spawn_release`].
    pub fn subscribe(&self) -> broadcast::Receiver<NewNotification> {
        self.gate.subscribe()
    }

    /// Starts the task that releases notifications once committed.
    pub fn spawn_release(&self, db: ReadDb, shutdown: CancellationToken) -> JoinHandle<()> {
        self.gate.spawn_release(db, NAME, shutdown)
    }
}

/// The part of `UserProfileRecorded` this projection needs.
#[derive(Debug, Deserialize)]
struct Profile {
    id: String,
    #[serde(default)]
    roles: Vec<Role>,
    #[serde(default)]
    teams: Vec<String>,
}

#[async_trait]
impl Projection for NotificationsProjection {
    fn name(&self) -> &str {
        NAME
    }

    /// The read flags (`notification_reads`, `notification_read_counts`) are
    /// the users' own actions, not derived from the log: a rebuild keeps them.
    fn tables(&self) -> &[&'static str] {
        &[
            "notifications",
            "notification_counts",
            "notification_tickets",
            "notification_users",
        ]
    }

    async fn apply(&self, tx: &mut ReadTx, event: &RecordedEvent) -> Result<(), ApplyError> {
        if event.stream_id.starts_with("user-") && event.event_type == "UserProfileRecorded" {
            return record_profile(tx, event).await;
        }
        let Some(stream_ticket) = event.stream_id.strip_prefix(domain::STREAM_PREFIX) else {
            return Ok(());
        };
        let ticket_id = Uuid::parse_str(stream_ticket).map_err(|e| {
            ApplyError::Poison(format!(
                "stream {} names no ticket id: {e}",
                event.stream_id
            ))
        })?;
        let position = RowPosition::of(event.position)?;
        let decoded = domain::decode(&event.event_type, event.schema_version, &event.data)
            .map_err(|e| ApplyError::Poison(format!("cannot decode {}: {e}", event.event_type)))?;
        let rows = fetch(
            tx,
            "SELECT state, position, prepare_offset FROM notification_tickets \
             WHERE ticket_id = $1",
            &[Arg::Id(ticket_id)],
        )
        .await?;
        let mut before: Option<Ticket> = None;
        if let Some(row) = rows.first() {
            let applied = RowPosition {
                position: row.int("position")?,
                prepare_offset: row.int("prepare_offset")?,
            };
            if applied >= position {
                return Ok(());
            }
            before = Some(serde_json::from_value(row.json("state")?).map_err(|e| {
                ApplyError::Poison(format!(
                    "stored state of ticket {ticket_id} is unreadable: {e}"
                ))
            })?);
        }
        let Some(after) = domain::evolve(before.clone(), &decoded) else {
            return Err(ApplyError::Poison(format!(
                "{} on ticket {ticket_id}, which has no TicketCreated event",
                event.event_type
            )));
        };
        let mut compact = after.clone();
        compact.comments.clear();
        compact.attachments.clear();
        let state = serde_json::to_value(&compact)
            .map_err(|e| ApplyError::Poison(format!("cannot serialise ticket {ticket_id}: {e}")))?;
        execute(
            tx,
            "INSERT INTO notification_tickets (ticket_id, state, position, prepare_offset) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (ticket_id) DO UPDATE SET state = excluded.state, \
             position = excluded.position, prepare_offset = excluded.prepare_offset",
            &[
                Arg::Id(ticket_id),
                Arg::Json(&state),
                Arg::Int(position.position),
                Arg::Int(position.prepare_offset),
            ],
        )
        .await?;

        for recipient in recipients(before.as_ref(), &after, &decoded) {
            let actor = profile(tx, &recipient).await?;
            if !domain::may_receive(&actor, before.as_ref(), &after, &decoded) {
                continue;
            }
            let sla = matches!(
                decoded.change,
                TicketChange::SlaWarning { .. } | TicketChange::SlaBreached { .. }
            );
            if sla && !actor.is_staff() {
                continue;
            }
            let Some(message) = text::message(before.as_ref(), &after, &decoded, &recipient) else {
                continue;
            };
            let id = notification_id(event.id, &recipient);
            let require_interaction = matches!(&decoded.change,
                TicketChange::Assigned { assignee_id, .. } if *assignee_id == recipient)
                || after.priority == domain::TicketPriority::Critical;
            let inserted = execute(
                tx,
                "INSERT INTO notifications (id, recipient, event_id, position, ticket_id, \
                 event_type, title, body, url, tag, require_interaction, created_at, prepare_offset) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                 ON CONFLICT (id) DO NOTHING",
                &[
                    Arg::Id(id),
                    Arg::Text(&recipient),
                    Arg::Id(event.id),
                    Arg::Int(position.position),
                    Arg::Id(ticket_id),
                    Arg::Text(decoded.event_type().as_str()),
                    Arg::Text(&message.title),
                    Arg::Text(&message.body),
                    Arg::Text(&format!("/support/tickets/{ticket_id}")),
                    Arg::Text(&format!("ticket-{ticket_id}")),
                    Arg::Bool(require_interaction),
                    Arg::Time(decoded.at),
                    Arg::Int(position.prepare_offset),
                ],
            )
            .await?;
            if inserted > 0 {
                execute(
                    tx,
                    "INSERT INTO notification_counts (recipient, total) VALUES ($1, 1) \
                     ON CONFLICT (recipient) DO UPDATE \
                     SET total = notification_counts.total + 1",
                    &[Arg::Text(&recipient)],
                )
                .await?;
                self.gate.stage(
                    event.position,
                    NewNotification {
                        recipient,
                        id,
                        position: event.position,
                    },
                );
            }
        }
        Ok(())
    }
}

/// Everyone involved before or after the event, but its actor; sorted.
fn recipients(before: Option<&Ticket>, after: &Ticket, event: &TicketEvent) -> Vec<String> {
    let mut users = std::collections::BTreeSet::new();
    for ticket in before.into_iter().chain([after]) {
        users.insert(ticket.created_by.clone());
        users.extend(ticket.assigned_to.clone());
        users.extend(ticket.watchers.iter().cloned());
    }
    users.remove(&event.actor);
    users.into_iter().collect()
}

/// The recipient as `may_receive` needs them; unknown users are requesters.
async fn profile(tx: &mut ReadTx, user: &str) -> Result<Actor, ApplyError> {
    let rows = fetch(
        tx,
        "SELECT roles, teams FROM notification_users WHERE id = $1",
        &[Arg::Text(user)],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(Actor::new(user, vec![Role::Requester], vec![]));
    };
    let roles = serde_json::from_value(row.json("roles")?).unwrap_or_default();
    let teams = serde_json::from_value(row.json("teams")?).unwrap_or_default();
    Ok(Actor::new(user, roles, teams))
}

async fn record_profile(tx: &mut ReadTx, event: &RecordedEvent) -> Result<(), ApplyError> {
    let position = RowPosition::of(event.position)?;
    let profile: Profile = serde_json::from_value(event.data.clone())
        .map_err(|e| ApplyError::Poison(format!("cannot decode UserProfileRecorded: {e}")))?;
    execute(
        tx,
        "INSERT INTO notification_users (id, roles, teams, position, prepare_offset) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (id) DO UPDATE SET roles = excluded.roles, teams = excluded.teams, \
         position = excluded.position, prepare_offset = excluded.prepare_offset \
         WHERE (notification_users.position, notification_users.prepare_offset) \
         < (excluded.position, excluded.prepare_offset)",
        &[
            Arg::Text(&profile.id),
            Arg::Json(&serde_json::json!(profile.roles)),
            Arg::Json(&serde_json::json!(profile.teams)),
            Arg::Int(position.position),
            Arg::Int(position.prepare_offset),
        ],
    )
    .await?;
    Ok(())
}
