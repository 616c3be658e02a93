//! One batch of the notifications projection, folded in memory and written
//! at its end: each ticket's and profile's row read once and written once,
//! the notifications inserted with multi-row statements, each inbox's count
//! raised once (the statements are in `writes`).
//!
//! Why this leaves what event-by-event writing leaves: the ticket and
//! profile rows are overwritten (profiles guarded by position, which the
//! batch checks the same way), so only the last write counts; a
//! notification is inserted `ON CONFLICT DO NOTHING` and counted only when
//! it was new, which the multi-row insert reports with `RETURNING`.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use domain::notify::NotificationPreferences;
use domain::{Actor, Role, Ticket, TicketChange};
use uuid::Uuid;

use super::writes::{self, NewRow};
use crate::bind::{any_id, fetch, AnyRow, Arg};
use crate::db::{ReadTx, RowPosition};
use crate::error::ApplyError;
use crate::runner::Load;
use crate::ticket_event::TicketRead;

/// A recipient's roles, teams and notification preferences as of the batch
/// so far.
#[derive(Clone)]
pub(super) struct KnownUser {
    pub roles: Vec<Role>,
    pub teams: Vec<String>,
    pub preferences: NotificationPreferences,
    pub position: RowPosition,
    pub changed: bool,
}

/// What a user event of the batch changes in a [`KnownUser`].
pub(super) enum UserChange {
    Profile {
        roles: Vec<Role>,
        teams: Vec<String>,
    },
    Preferences(NotificationPreferences),
}

/// A ticket's compact state as of the batch so far.
pub(super) struct KnownTicket {
    pub state: Ticket,
    pub position: RowPosition,
    pub changed: bool,
}

#[derive(Default)]
pub(super) struct Batch {
    pub tickets: HashMap<Uuid, Option<KnownTicket>>,
    pub ticket_order: Vec<Uuid>,
    pub users: HashMap<String, Option<KnownUser>>,
    pub user_order: Vec<String>,
    /// Queues whose members' rows have all been read into `users`.
    pub queues_read: std::collections::HashSet<String>,
    pub rows: Vec<NewRow>,
    /// Announcements published in the batch, in log order.
    pub announcements: Vec<(domain::announcement::Announcement, RowPosition)>,
    /// The notifications of bulk calls (see [`super::digest`]).
    pub digests: super::digest::Digests,
}

/// What a flushed batch added: the notifications and announcements that
/// were new, in log order.
pub(super) struct Flushed {
    pub rows: Vec<NewRow>,
    pub announcements: Vec<Uuid>,
    /// Digests of earlier batches this one extended: `(id, recipient)`.
    pub extended: Vec<(Uuid, String)>,
}

/// The columns of a `notification_users` row, as [`stored_user`] reads them.
const USER_COLUMNS: &str = "id, roles, teams, preferences, position, prepare_offset";

impl Batch {
    /// Reads, in one query each, the tickets the batch's events name and the
    /// users they can notify (as the tickets stand and as the events name
    /// them) that are not known yet. Only a cache in front of
    /// [`Batch::ticket`] and [`Batch::user`], which read what this misses:
    /// every read sees the rows as they were before the batch either way.
    pub async fn preload(
        &mut self,
        tx: &mut ReadTx,
        records: &[TicketRead],
    ) -> Result<(), ApplyError> {
        let decoded = || records.iter().filter_map(|r| r.as_ref().ok()?.as_ref());
        let mut ids: Vec<Uuid> = decoded()
            .map(|r| r.ticket_id)
            .filter(|id| !self.tickets.contains_key(id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if !ids.is_empty() {
            let sql = format!(
                "SELECT ticket_id, state, position, prepare_offset FROM notification_tickets \
                 WHERE {}",
                any_id(tx, "ticket_id", 1)
            );
            for row in fetch(tx, &sql, &[Arg::Ids(&ids)]).await? {
                let ticket_id = row.id("ticket_id")?;
                let known = stored_ticket(&row, ticket_id)?;
                self.tickets.insert(ticket_id, Some(known));
            }
            for id in ids {
                self.tickets.entry(id).or_insert(None);
            }
        }
        let mut users: Vec<String> = Vec::new();
        for ticket in self.tickets.values().flatten() {
            users.push(ticket.state.created_by.clone());
            users.extend(ticket.state.assigned_to.clone());
            users.extend(ticket.state.watchers.iter().cloned());
        }
        for record in decoded() {
            users.push(record.event.actor.clone());
            match &record.event.change {
                TicketChange::Assigned { assignee_id, .. } => users.push(assignee_id.clone()),
                TicketChange::WatcherAdded { user_id }
                | TicketChange::WatcherRemoved { user_id } => users.push(user_id.clone()),
                TicketChange::Commented { body, .. } => {
                    users.extend(domain::notify::mentions(body))
                }
                _ => {}
            }
        }
        users.retain(|u| !self.users.contains_key(u));
        users.sort_unstable();
        users.dedup();
        if users.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM notification_users WHERE {}",
            any_id(tx, "id", 1)
        );
        for row in fetch(tx, &sql, &[Arg::Texts(&users)]).await? {
            let id = row.text("id")?;
            let known = stored_user(&row)?;
            self.users.insert(id, Some(known));
        }
        for user in users {
            self.users.entry(user).or_insert(None);
        }
        Ok(())
    }

    /// The ticket's state, read from `notification_tickets` unless known.
    // Not `entry()`: the read awaits between the lookup and the insert.
    #[allow(clippy::map_entry)]
    pub async fn ticket(
        &mut self,
        tx: &mut ReadTx,
        ticket_id: Uuid,
    ) -> Result<Option<&KnownTicket>, ApplyError> {
        if !self.tickets.contains_key(&ticket_id) {
            let rows = fetch(
                tx,
                "SELECT state, position, prepare_offset FROM notification_tickets \
                 WHERE ticket_id = $1",
                &[Arg::Id(ticket_id)],
            )
            .await?;
            let known = match rows.first() {
                None => None,
                Some(row) => Some(stored_ticket(row, ticket_id)?),
            };
            self.tickets.insert(ticket_id, known);
        }
        Ok(self.tickets.get(&ticket_id).and_then(Option::as_ref))
    }

    /// Records the ticket's new state.
    pub fn set_ticket(&mut self, ticket_id: Uuid, state: Ticket, position: RowPosition) {
        let was_changed = matches!(self.tickets.get(&ticket_id), Some(Some(t)) if t.changed);
        if !was_changed {
            self.ticket_order.push(ticket_id);
        }
        self.tickets.insert(
            ticket_id,
            Some(KnownTicket {
                state,
                position,
                changed: true,
            }),
        );
    }

    /// The user's profile, read from `notification_users` unless known.
    #[allow(clippy::map_entry)]
    pub async fn user(
        &mut self,
        tx: &mut ReadTx,
        user: &str,
    ) -> Result<Option<&KnownUser>, ApplyError> {
        if !self.users.contains_key(user) {
            let rows = fetch(
                tx,
                &format!("SELECT {USER_COLUMNS} FROM notification_users WHERE id = $1"),
                &[Arg::Text(user)],
            )
            .await?;
            let known = match rows.first() {
                None => None,
                Some(row) => Some(stored_user(row)?),
            };
            self.users.insert(user.to_string(), known);
        }
        Ok(self.users.get(user).and_then(Option::as_ref))
    }

    /// The recipient as `domain::notify::reason` needs them, and whether
    /// their profile is known: unknown users are requesters with every
    /// notification on.
    pub async fn recipient(
        &mut self,
        tx: &mut ReadTx,
        user: &str,
    ) -> Result<(Actor, NotificationPreferences, bool), ApplyError> {
        Ok(match self.user(tx, user).await? {
            None => (
                Actor::new(user, vec![Role::Requester], vec![]),
                NotificationPreferences::default(),
                false,
            ),
            Some(known) => (
                Actor::new(user, known.roles.clone(), known.teams.clone()),
                known.preferences.clone(),
                true,
            ),
        })
    }

    /// A user event as of `position`, unless the user's row is as recent.
    pub async fn set_user(
        &mut self,
        tx: &mut ReadTx,
        user: &str,
        change: UserChange,
        position: RowPosition,
    ) -> Result<(), ApplyError> {
        let mut next = match self.user(tx, user).await? {
            None => KnownUser {
                roles: vec![],
                teams: vec![],
                preferences: NotificationPreferences::default(),
                position,
                changed: false,
            },
            Some(known) if known.position >= position => return Ok(()),
            Some(known) => known.clone(),
        };
        if !next.changed {
            self.user_order.push(user.to_string());
        }
        match change {
            UserChange::Profile { roles, teams } => {
                next.roles = roles;
                next.teams = teams;
            }
            UserChange::Preferences(preferences) => next.preferences = preferences,
        }
        next.position = position;
        next.changed = true;
        self.users.insert(user.to_string(), Some(next));
        Ok(())
    }

    /// The agents of `queue` as of the batch so far: every user whose row
    /// names the queue among its teams is read once per batch, and whoever
    /// the batch changed is judged by their new profile.
    pub async fn queue_agents(
        &mut self,
        tx: &mut ReadTx,
        queue: &str,
    ) -> Result<Vec<String>, ApplyError> {
        if !self.queues_read.contains(queue) {
            let in_team = match tx.dialect() {
                crate::db::Dialect::Sqlite => {
                    "EXISTS (SELECT 1 FROM json_each(notification_users.teams) t \
                     WHERE t.value = $1)"
                }
                crate::db::Dialect::Postgres => "teams ? $1",
            };
            let sql = format!("SELECT {USER_COLUMNS} FROM notification_users WHERE {in_team}");
            for row in fetch(tx, &sql, &[Arg::Text(queue)]).await? {
                let id = row.text("id")?;
                if let Entry::Vacant(slot) = self.users.entry(id) {
                    slot.insert(Some(stored_user(&row)?));
                }
            }
            self.queues_read.insert(queue.to_string());
        }
        let mut agents: Vec<String> = self
            .users
            .iter()
            .filter_map(|(id, known)| {
                let known = known.as_ref()?;
                let actor = Actor::new(id.as_str(), known.roles.clone(), known.teams.clone());
                domain::notify::is_queue_agent(&actor, queue).then(|| id.clone())
            })
            .collect();
        agents.sort_unstable();
        Ok(agents)
    }

    /// Writes the ticket and profile rows, the announcements, then the
    /// notifications and their counts; returns what was new.
    pub async fn flush(mut self, tx: &mut ReadTx, load: Load) -> Result<Flushed, ApplyError> {
        // Digests name their tickets by reference.
        let mut references = HashMap::new();
        for id in self.digests.tickets(&self.rows) {
            if let Some(known) = self.ticket(tx, id).await? {
                references.insert(id, known.state.reference.clone());
            }
        }
        self.digests.finish(&mut self.rows, &references);
        super::digest::save_extended(tx, &self.digests.extended, &references).await?;
        let extended = self
            .digests
            .extended
            .iter()
            .map(|(id, e)| (*id, e.recipient.clone()))
            .collect();
        let mut tickets = Vec::with_capacity(self.ticket_order.len());
        for ticket_id in &self.ticket_order {
            let Some(Some(t)) = self.tickets.get(ticket_id) else {
                continue;
            };
            let state = serde_json::to_value(&t.state).map_err(|e| {
                ApplyError::Poison(format!("cannot serialise ticket {ticket_id}: {e}"))
            })?;
            tickets.push((*ticket_id, state, t.position));
        }
        writes::upsert_tickets(tx, &tickets).await?;
        for user in &self.user_order {
            let Some(Some(u)) = self.users.get(user) else {
                continue;
            };
            super::save_profile(tx, user, u).await?;
        }
        let mut announcements = vec![];
        for (announcement, position) in &self.announcements {
            if super::announcements::save(tx, announcement, *position).await? > 0 {
                announcements.push(announcement.id);
            }
        }
        let fresh = writes::insert_notifications(tx, self.rows, load).await?;
        // In the order recipients first appear; found by a map, since a
        // rebuild's batch has tens of thousands of rows.
        let mut counts: Vec<(&str, i64)> = vec![];
        let mut slot: HashMap<&str, usize> = HashMap::new();
        for row in &fresh {
            match slot.entry(&row.recipient) {
                Entry::Occupied(at) => counts[*at.get()].1 += 1,
                Entry::Vacant(at) => {
                    at.insert(counts.len());
                    counts.push((&row.recipient, 1));
                }
            }
        }
        // One row per recipient, so a multi-row upsert touches each once.
        writes::raise_counts(tx, &counts).await?;
        drop(counts);
        Ok(Flushed {
            rows: fresh,
            announcements,
            extended,
        })
    }
}

/// A `notification_tickets` row as stored.
fn stored_ticket(row: &AnyRow, ticket_id: Uuid) -> Result<KnownTicket, ApplyError> {
    Ok(KnownTicket {
        position: RowPosition {
            position: row.int("position")?,
            prepare_offset: row.int("prepare_offset")?,
        },
        state: serde_json::from_value(row.json("state")?).map_err(|e| {
            ApplyError::Poison(format!(
                "stored state of ticket {ticket_id} is unreadable: {e}"
            ))
        })?,
        changed: false,
    })
}

/// A `notification_users` row as stored.
fn stored_user(row: &AnyRow) -> Result<KnownUser, ApplyError> {
    Ok(KnownUser {
        roles: serde_json::from_value(row.json("roles")?).unwrap_or_default(),
        teams: serde_json::from_value(row.json("teams")?).unwrap_or_default(),
        preferences: serde_json::from_value(row.json("preferences")?).unwrap_or_default(),
        position: RowPosition {
            position: row.int("position")?,
            prepare_offset: row.int("prepare_offset")?,
        },
        changed: false,
    })
}
