//! The notifications projection: a per-user inbox.
//!
//! Each ticket event produces one notification per user who should hear of
//! it, with the [`Reason`](domain::notify::Reason) they hear of it for: the
//! assignee, a user `@mentioned` in a comment, the creator and the watchers
//! (before or after the event), and for a queue alert the agents of the
//! ticket's queue; each only as [`domain::notify::reason`] decides (never the
//! user who caused the event, never a staff-only event for a requester, not
//! what they muted). Events that only shuffle tags or relations notify no
//! one.
//!
//! Preferences are `NotificationPreferencesSet` events of the user's own
//! stream, applied from their position on like profiles.
//! Announcements (`AnnouncementPublished`) are written to `announcements`.
//! Every notification added, and every announcement, is also a row of
//! `notification_changes` ([`changes`]), the feed every server node tails
//! to push inbox changes.
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

mod announcements;
mod batch;
pub mod changes;
mod digest;
mod inbox;
mod text;
mod writes;

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use domain::codec::user::{self, UserEvent};
use domain::notify::{Reason, Recipient};
use domain::{Actor, Ticket, TicketChange};
use store::RecordedEvent;
use uuid::Uuid;

use crate::bind::{execute, Arg};
use crate::db::{ReadTx, RowPosition};
use crate::error::ApplyError;
use crate::runner::{BulkLoad, Load, Projection};
use crate::ticket_event::{self, Reads, TicketRead, TicketRecord};
use batch::{Batch, UserChange};
use changes::{ChangeKind, NewChange};
use writes::NewRow;

pub use announcements::{announcement, announcements};
pub use inbox::{
    delete, mark_all_read, mark_read, mark_unread, notification, notifications, preferences,
    unread_count, Notification, NotificationPage,
};

/// The checkpoint name of [`NotificationsProjection`].
pub const NAME: &str = "notifications";

/// Namespace of notification ids: `v5(NAMESPACE, "<event id>/<recipient>")`.
pub const NAMESPACE: Uuid = Uuid::from_u128(0x6e6f_7469_6669_6361_7469_6f6e_7300_0001);

/// The tables [`NotificationsProjection`] writes (and a rebuild replaces).
/// The read flags and deletions (`notification_reads`,
/// `notification_read_counts`, `notification_deletions`) are the users' own
/// actions, not derived from the log, and `notification_changes` is the feed
/// of what was pushed: a rebuild keeps them.
pub const TABLES: &[&str] = &[
    "notifications",
    "notification_counts",
    "notification_tickets",
    "notification_users",
    "announcements",
];

/// Of [`TABLES`], those only ever inserted into (see `writes::insert`): a
/// rebuild builds their unique indexes after the load.
pub const INSERT_ONLY_TABLES: &[&str] = &["notifications"];

/// The id of the notification of `event_id` to `recipient`.
pub fn notification_id(event_id: Uuid, recipient: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("{event_id}/{recipient}").as_bytes())
}

/// Writes `notifications`, `notification_counts`, `announcements`, its own
/// copies of tickets and user profiles, and the feed rows of what it adds.
#[derive(Clone, Default)]
pub struct NotificationsProjection {
    records_changes: bool,
}

impl NotificationsProjection {
    /// The projection as a rebuild runs it: its tables only.
    pub fn new() -> NotificationsProjection {
        NotificationsProjection::default()
    }

    /// The projection as the server runs it live: each batch also appends
    /// the feed rows of the notifications and announcements it adds
    /// ([`changes`]). A rebuild's shadow must not (the live runner has
    /// recorded them already, and the feed is not one of [`TABLES`]).
    pub fn recording_changes() -> NotificationsProjection {
        NotificationsProjection {
            records_changes: true,
        }
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
        let flushed = batch.flush(tx, load).await?;
        if self.records_changes && load == Load::Apply {
            record_changes(tx, &flushed).await?;
        }
        Ok(())
    }
}

/// The feed rows of a batch's new notifications, each with its recipient's
/// unread count right after it, and of its new announcements.
async fn record_changes(tx: &mut ReadTx, flushed: &batch::Flushed) -> Result<(), ApplyError> {
    if flushed.rows.is_empty() && flushed.announcements.is_empty() && flushed.extended.is_empty() {
        return Ok(());
    }
    changes::lock(tx).await?;
    let mut recipients: Vec<String> = flushed
        .rows
        .iter()
        .map(|r| r.recipient.clone())
        .chain(flushed.extended.iter().map(|(_, r)| r.clone()))
        .collect();
    recipients.sort_unstable();
    recipients.dedup();
    // The counts now include every new row: count back from them.
    let unread = inbox::unread_counts(tx, &recipients).await?;
    let mut later: HashMap<&str, i64> = HashMap::new();
    let mut rows = Vec::with_capacity(flushed.rows.len());
    for row in flushed.rows.iter().rev() {
        let after = later.entry(&row.recipient).or_insert(0);
        let count = unread.get(&row.recipient).copied().unwrap_or(0) - *after;
        *after += 1;
        rows.push((row, count));
    }
    let mut feed: Vec<NewChange> = rows
        .into_iter()
        .rev()
        .map(|(row, count)| NewChange {
            recipient: Some(&row.recipient),
            kind: ChangeKind::Added,
            ids: vec![row.id],
            unread_count: count,
        })
        .collect();
    // A digest of an earlier batch, extended: pushed again, same id.
    feed.extend(flushed.extended.iter().map(|(id, recipient)| NewChange {
        recipient: Some(recipient),
        kind: ChangeKind::Added,
        ids: vec![*id],
        unread_count: unread.get(recipient).copied().unwrap_or(0),
    }));
    feed.extend(flushed.announcements.iter().map(|id| NewChange {
        recipient: None,
        kind: ChangeKind::Announced,
        ids: vec![*id],
        unread_count: 0,
    }));
    changes::record(tx, &feed).await?;
    Ok(())
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
        && user::is_user_event(&event.event_type)
    {
        let position = RowPosition::of(event.position)?;
        let decoded = user::decode(&event.event_type, event.schema_version, &event.data)
            .map_err(|e| ApplyError::Poison(format!("cannot decode {}: {e}", event.event_type)))?;
        let (id, change) = match decoded {
            UserEvent::ProfileRecorded(profile) => (
                profile.id,
                UserChange::Profile {
                    roles: profile.roles,
                    teams: profile.teams,
                },
            ),
            UserEvent::PreferencesSet(preferences) => {
                let id = event.stream_id[domain::USER_STREAM_PREFIX.len()..].to_string();
                (id, UserChange::Preferences(preferences))
            }
        };
        return batch.set_user(tx, &id, change, position).await;
    }
    if event
        .stream_id
        .starts_with(domain::announcement::ANNOUNCEMENT_STREAM_PREFIX)
        && event.event_type == domain::codec::announcement::PUBLISHED
    {
        let announcement = domain::codec::announcement::decode(
            &event.event_type,
            event.schema_version,
            &event.data,
        )
        .map_err(|e| ApplyError::Poison(format!("cannot decode {}: {e}", event.event_type)))?;
        batch
            .announcements
            .push((announcement, RowPosition::of(event.position)?));
        return Ok(());
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

    let mentioned = match &decoded.change {
        TicketChange::Commented { body, .. } => domain::notify::mentions(body),
        _ => vec![],
    };
    let mut candidates = involved(before.as_ref(), &after);
    candidates.extend(mentioned.iter().cloned());
    if domain::notify::is_queue_alert(&after, decoded) {
        candidates.extend(batch.queue_agents(tx, &after.queue).await?);
    }
    let actor = (decoded.actor != Actor::system().user_id).then(|| decoded.actor.clone());
    let bulk_id = event.metadata.get("bulkId").and_then(|id| id.as_str());
    for recipient in candidates {
        let (who, preferences, known) = batch.recipient(tx, &recipient).await?;
        if bulk_id.is_some() && preferences.muted_reasons.contains(&Reason::Digest) {
            continue;
        }
        let Some(reason) = domain::notify::reason(
            &Recipient {
                actor: &who,
                preferences: &preferences,
                // An id no profile was ever recorded for is ignored.
                mentioned: known && mentioned.contains(&recipient),
            },
            before.as_ref(),
            &after,
            decoded,
        ) else {
            continue;
        };
        let Some(message) = text::message(before.as_ref(), &after, decoded, &recipient, reason)
        else {
            continue;
        };
        let require_interaction = matches!(&decoded.change,
            TicketChange::Assigned { assignee_id, .. } if *assignee_id == recipient)
            || after.priority == domain::TicketPriority::Critical;
        let row = NewRow {
            id: notification_id(event.id, &recipient),
            recipient,
            event_id: event.id,
            position,
            ticket_id,
            event_type: decoded.event_type().as_str(),
            title: message.title,
            body: message.body,
            require_interaction,
            created_at: decoded.at,
            reason: reason.as_str(),
            ticket_ids: vec![ticket_id],
            actor: actor.clone(),
        };
        match bulk_id {
            Some(bulk_id) => {
                batch
                    .digests
                    .fold(tx, &mut batch.rows, row, bulk_id)
                    .await?
            }
            None => batch.rows.push(row),
        }
    }
    Ok(())
}

/// Everyone involved in the ticket before or after the event: its creator,
/// its assignee and its watchers. Sorted, unique.
fn involved(before: Option<&Ticket>, after: &Ticket) -> BTreeSet<String> {
    let mut users = BTreeSet::new();
    for ticket in before.into_iter().chain([after]) {
        users.insert(ticket.created_by.clone());
        users.extend(ticket.assigned_to.clone());
        users.extend(ticket.watchers.iter().cloned());
    }
    users
}

/// A user's row, unless the stored one is as recent.
async fn save_profile(
    tx: &mut ReadTx,
    user: &str,
    known: &batch::KnownUser,
) -> Result<(), ApplyError> {
    execute(
        tx,
        "INSERT INTO notification_users (id, roles, teams, preferences, position, prepare_offset) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (id) DO UPDATE SET roles = excluded.roles, teams = excluded.teams, \
         preferences = excluded.preferences, \
         position = excluded.position, prepare_offset = excluded.prepare_offset \
         WHERE (notification_users.position, notification_users.prepare_offset) \
         < (excluded.position, excluded.prepare_offset)",
        &[
            Arg::Text(user),
            Arg::Json(&serde_json::json!(known.roles)),
            Arg::Json(&serde_json::json!(known.teams)),
            Arg::Json(&serde_json::json!(known.preferences)),
            Arg::Int(known.position.position),
            Arg::Int(known.position.prepare_offset),
        ],
    )
    .await?;
    Ok(())
}
