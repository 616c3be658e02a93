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

mod batch;
mod inbox;
mod text;
mod writes;

use async_trait::async_trait;
use domain::codec::user::{self, UserEvent};
use domain::{Role, Ticket, TicketChange, TicketEvent};
use store::{Position, RecordedEvent};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bind::{execute, Arg};
use crate::db::{ReadDb, ReadTx, RowPosition};
use crate::error::ApplyError;
use crate::gate::CommitGate;
use crate::runner::{BulkLoad, Load, Projection};
use crate::ticket_event::{self, Reads, TicketRead, TicketRecord};
use batch::Batch;
use writes::NewRow;

pub use inbox::{
    mark_all_read, mark_read, mark_unread, notification, notifications, unread_count, Notification,
    NotificationPage,
};

/// The checkpoint name of [`NotificationsProjection`].
pub const NAME: &str = "notifications";

/// Namespace of notification ids: `v5(NAMESPACE, "<event id>/<recipient>")`.
pub const NAMESPACE: Uuid = Uuid::from_u128(0x6e6f_7469_6669_6361_7469_6f6e_7300_0001);

/// The tables [`NotificationsProjection`] writes (and a rebuild replaces).
/// The read flags (`notification_reads`, `notification_read_counts`) are
/// the users' own actions, not derived from the log: a rebuild keeps them.
pub const TABLES: &[&str] = &[
    "notifications",
    "notification_counts",
    "notification_tickets",
    "notification_users",
];

/// Of [`TABLES`], those only ever inserted into (see `writes::insert`): a
/// rebuild builds their unique indexes after the load.
pub const INSERT_ONLY_TABLES: &[&str] = &["notifications"];

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

#[async_trait]
impl Projection for NotificationsProjection {
    fn name(&self) -> &str {
        NAME
    }

    fn tables(&self) -> &[&'static str] {
        TABLES
    }

    async fn apply(&self, tx: &mut ReadTx, event: &RecordedEvent) -> Result<(), ApplyError> {
        self.apply_batch(tx, &[event]).await
    }

    /// Folded in memory, written once per row at the end (see [`batch`]).
    async fn apply_batch(
        &self,
        tx: &mut ReadTx,
        events: &[&RecordedEvent],
    ) -> Result<(), ApplyError> {
        let reads = ticket_event::read_each(events);
        self.apply_events(tx, events, &reads, Load::Apply).await
    }

    fn bulk_load(&self) -> Option<&dyn BulkLoad> {
        Some(self)
    }
}

#[async_trait]
impl BulkLoad for NotificationsProjection {
    fn insert_only_tables(&self) -> &[&'static str] {
        INSERT_ONLY_TABLES
    }

    /// As `apply_batch`, the notifications copied in on PostgreSQL.
    async fn load_batch(
        &self,
        tx: &mut ReadTx,
        events: &[&RecordedEvent],
        reads: Reads<'_>,
    ) -> Result<(), ApplyError> {
        self.apply_events(tx, events, reads.get(), Load::Bulk).await
    }
}

impl NotificationsProjection {
    async fn apply_events(
        &self,
        tx: &mut ReadTx,
        events: &[&RecordedEvent],
        reads: &[TicketRead],
        load: Load,
    ) -> Result<(), ApplyError> {
        let mut batch = Batch::default();
        // Every ticket and user the batch can need read in one query each
        // rather than one per row.
        batch.preload(tx, reads).await?;
        for (event, read) in events.iter().zip(reads) {
            apply_one(&mut batch, tx, event, ticket_event::record(read)).await?;
        }
        for row in batch.flush(tx, load).await? {
            self.gate.stage(
                row.event_position,
                NewNotification {
                    recipient: row.recipient,
                    id: row.id,
                    position: row.event_position,
                },
            );
        }
        Ok(())
    }
}

/// One event into the batch; `record` is what [`ticket_event::read`] made
/// of it.
async fn apply_one(
    batch: &mut Batch,
    tx: &mut ReadTx,
    event: &RecordedEvent,
    record: Result<Option<&TicketRecord>, ApplyError>,
) -> Result<(), ApplyError> {
    if event.stream_id.starts_with(domain::USER_STREAM_PREFIX)
        && event.event_type == user::PROFILE_RECORDED
    {
        let position = RowPosition::of(event.position)?;
        let UserEvent::ProfileRecorded(profile) =
            user::decode(&event.event_type, event.schema_version, &event.data).map_err(|e| {
                ApplyError::Poison(format!("cannot decode {}: {e}", user::PROFILE_RECORDED))
            })?;
        return batch
            .set_user(tx, &profile.id, profile.roles, profile.teams, position)
            .await;
    }
    let Some(&TicketRecord {
        ticket_id,
        position,
        event: ref decoded,
    }) = record?
    else {
        return Ok(());
    };
    let before: Option<Ticket> = match batch.ticket(tx, ticket_id).await? {
        Some(known) if known.position >= position => return Ok(()),
        Some(known) => Some(known.state.clone()),
        None => None,
    };
    let Some(after) = domain::evolve(before.clone(), decoded) else {
        return Err(ApplyError::Poison(format!(
            "{} on ticket {ticket_id}, which has no TicketCreated event",
            event.event_type
        )));
    };
    let mut compact = after.clone();
    compact.comments.clear();
    compact.attachments.clear();
    batch.set_ticket(ticket_id, compact, position);

    for recipient in recipients(before.as_ref(), &after, decoded) {
        let actor = batch.actor(tx, &recipient).await?;
        if !domain::may_receive(&actor, before.as_ref(), &after, decoded) {
            continue;
        }
        let sla = matches!(
            decoded.change,
            TicketChange::SlaWarning { .. } | TicketChange::SlaBreached { .. }
        );
        if sla && !actor.is_staff() {
            continue;
        }
        let Some(message) = text::message(before.as_ref(), &after, decoded, &recipient) else {
            continue;
        };
        let require_interaction = matches!(&decoded.change,
            TicketChange::Assigned { assignee_id, .. } if *assignee_id == recipient)
            || after.priority == domain::TicketPriority::Critical;
        batch.rows.push(NewRow {
            id: notification_id(event.id, &recipient),
            recipient,
            event_id: event.id,
            position,
            event_position: event.position,
            ticket_id,
            event_type: decoded.event_type().as_str(),
            title: message.title,
            body: message.body,
            require_interaction,
            created_at: decoded.at,
        });
    }
    Ok(())
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

/// A profile's row, unless the stored one is as recent.
async fn save_profile(
    tx: &mut ReadTx,
    user: &str,
    roles: &[Role],
    teams: &[String],
    position: RowPosition,
) -> Result<(), ApplyError> {
    execute(
        tx,
        "INSERT INTO notification_users (id, roles, teams, position, prepare_offset) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (id) DO UPDATE SET roles = excluded.roles, teams = excluded.teams, \
         position = excluded.position, prepare_offset = excluded.prepare_offset \
         WHERE (notification_users.position, notification_users.prepare_offset) \
         < (excluded.position, excluded.prepare_offset)",
        &[
            Arg::Text(user),
            Arg::Json(&serde_json::json!(roles)),
            Arg::Json(&serde_json::json!(teams)),
            Arg::Int(position.position),
            Arg::Int(position.prepare_offset),
        ],
    )
    .await?;
    Ok(())
}
