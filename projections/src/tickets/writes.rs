//! What a batch of ticket events writes besides the ticket rows, collected in
//! memory and written with a few multi-row statements at the end of the
//! batch rather than a round trip per row.
//!
//! Collecting must not change the outcome against writing event by event:
//! - activity, comment and attachment rows are only ever inserted (`ON
//!   CONFLICT DO NOTHING`), so inserting them together, in log order, leaves
//!   what inserting them one by one would;
//! - a watcher, tag or relation is inserted or deleted by each event that
//!   touches it, each operation idempotent, so what is left is the *last*
//!   operation on that key: [`Writes`] keeps only that one.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::{Attachment, Comment, Ticket, TicketEvent};
use store::RecordedEvent;
use uuid::Uuid;

use crate::db::RowPosition;
use crate::error::ApplyError;

/// One `ticket_activity` row.
pub(crate) struct ActivityRow {
    pub position: RowPosition,
    pub event_id: Uuid,
    pub ticket_id: Uuid,
    pub version: i64,
    pub event_type: &'static str,
    pub actor: String,
    pub occurred_at: DateTime<Utc>,
    /// JSON text of `domain::diff(before, after)`.
    pub changes: String,
}

/// A child row that is only ever inserted, with the event that added it.
pub(crate) struct Added<T> {
    pub ticket_id: Uuid,
    pub item: T,
    pub position: RowPosition,
}

/// The rows of a batch still to write, in database-neutral values.
#[derive(Default)]
pub(crate) struct Writes {
    pub activity: Vec<ActivityRow>,
    pub comments: Vec<Added<Comment>>,
    pub attachments: Vec<Added<Attachment>>,
    /// `true`: the row must exist; `false`: it must not.
    pub watchers: BTreeMap<(Uuid, String), bool>,
    pub tags: BTreeMap<(Uuid, String), bool>,
    pub relations: BTreeMap<(Uuid, Uuid), bool>,
}

impl Writes {
    /// The rows of one event that took the ticket from `before` to `after`.
    pub fn record(
        &mut self,
        event: &RecordedEvent,
        position: RowPosition,
        decoded: &TicketEvent,
        before: Option<&Ticket>,
        after: &Ticket,
    ) -> Result<(), ApplyError> {
        // Straight to text: the same text as through a `Value` (see
        // `domain::FieldChange`), the one form every stored activity row has.
        let changes = serde_json::to_string(&domain::diff(before, after)).map_err(|e| {
            ApplyError::Poison(format!(
                "cannot serialise the changes of ticket {}: {e}",
                after.id
            ))
        })?;
        let id = after.id;
        self.activity.push(ActivityRow {
            position,
            event_id: event.id,
            ticket_id: id,
            version: version(after.version),
            event_type: decoded.event_type().as_str(),
            actor: decoded.actor.clone(),
            occurred_at: decoded.at,
            changes,
        });
        // Lists of the ticket before the event: empty before its creation.
        let comments = before.map_or(&[][..], |t| &t.comments[..]);
        let attachments = before.map_or(&[][..], |t| &t.attachments[..]);
        let watchers = before.map_or(&[][..], |t| &t.watchers[..]);
        let tags = before.map_or(&[][..], |t| &t.tags[..]);
        let related = before.map_or(&[][..], |t| &t.related[..]);
        for c in after
            .comments
            .iter()
            .filter(|c| !comments.iter().any(|o| o.id == c.id))
        {
            self.comments.push(Added {
                ticket_id: id,
                item: c.clone(),
                position,
            });
        }
        for a in after
            .attachments
            .iter()
            .filter(|a| !attachments.iter().any(|o| o.id == a.id))
        {
            self.attachments.push(Added {
                ticket_id: id,
                item: a.clone(),
                position,
            });
        }
        set_diff(&mut self.watchers, id, watchers, &after.watchers);
        set_diff(&mut self.tags, id, tags, &after.tags);
        set_diff(&mut self.relations, id, related, &after.related);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.activity.is_empty()
            && self.comments.is_empty()
            && self.attachments.is_empty()
            && self.watchers.is_empty()
            && self.tags.is_empty()
            && self.relations.is_empty()
    }
}

/// Records the keys `after` gained (present) and lost (absent) against `before`.
fn set_diff<K: Ord + Clone>(
    last: &mut BTreeMap<(Uuid, K), bool>,
    ticket_id: Uuid,
    before: &[K],
    after: &[K],
) {
    for key in after.iter().filter(|k| !before.contains(k)) {
        last.insert((ticket_id, key.clone()), true);
    }
    for key in before.iter().filter(|k| !after.contains(k)) {
        last.insert((ticket_id, key.clone()), false);
    }
}

/// The present (`true`) or absent keys of a last-operation map.
pub(crate) fn split<K: Clone>(last: &BTreeMap<(Uuid, K), bool>, present: bool) -> Vec<(Uuid, K)> {
    last.iter()
        .filter(|(_, p)| **p == present)
        .map(|(key, _)| key.clone())
        .collect()
}

/// Stream versions are far below `i64::MAX`; saturate rather than wrap.
pub(crate) fn version(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
