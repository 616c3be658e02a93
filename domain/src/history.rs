//! A ticket's history, seen three ways: field-by-field changes, one step per
//! event, and the state at a past version or time.
//!
//! Live notifications, the history query and time travel all come through
//! here, and every change is computed by [`diff`] from states folded out of
//! the log, so the three can never tell different stories.

use crate::event::TicketEvent;
use crate::evolve::evolve;
use crate::ticket::Ticket;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// The contract's `FieldChange`; `field` is the `SupportTicket` field name.
///
/// The fields are declared in the order of their JSON names, so serialising
/// one straight to text gives the same text as going through a
/// [`serde_json::Value`] (whose keys are sorted), without building it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    pub field: String,
    pub new_value: Value,
    pub old_value: Value,
}

/// What one event did: the ticket right before and right after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The stream version the event produced (`after.version`).
    pub version: u64,
    pub before: Option<Ticket>,
    pub after: Ticket,
    pub changes: Vec<FieldChange>,
}

/// The fields [`diff`] compares, in the contract's order. `updatedDate` and
/// `version` are left out: every event changes them, so they say nothing.
pub const DIFFED_FIELDS: [&str; 18] = [
    "id",
    "reference",
    "request",
    "description",
    "status",
    "priority",
    "queue",
    "createdBy",
    "assignedTo",
    "watchers",
    "tags",
    "relatedTickets",
    "comments",
    "attachments",
    "createdDate",
    "firstResponseDate",
    "resolvedDate",
    "deleted",
];

/// The fields that differ between two states, valued as the ticket
/// serialises them. With no `before` (creation) every non-null field is a
/// change from `null`.
pub fn diff(before: Option<&Ticket>, after: &Ticket) -> Vec<FieldChange> {
    // Field by field in `DIFFED_FIELDS` order, each valued as it appears in
    // the ticket's serialisation. A field whose typed value is unchanged
    // serialises the same, so only a changed one is turned into JSON, rather
    // than both whole tickets for every event a projection applies.
    let mut changes = Vec::new();
    let mut field = |name: &str, old: Option<Value>, new: Value| {
        let old = old.unwrap_or(Value::Null);
        if old != new {
            changes.push(FieldChange {
                field: name.to_string(),
                old_value: old,
                new_value: new,
            });
        }
    };
    macro_rules! compare {
        ($($name:literal => $field:ident),* $(,)?) => {$(
            if before.is_none_or(|b| b.$field != after.$field) {
                field(
                    $name,
                    before.map(|b| json(&b.$field)),
                    json(&after.$field),
                );
            }
        )*};
    }
    compare! {
        "id" => id,
        "reference" => reference,
        "request" => request,
        "description" => description,
        "status" => status,
        "priority" => priority,
        "queue" => queue,
        "createdBy" => created_by,
        "assignedTo" => assigned_to,
        "watchers" => watchers,
        "tags" => tags,
        "relatedTickets" => related,
        "comments" => comments,
        "attachments" => attachments,
        "createdDate" => created_at,
        "firstResponseDate" => first_response_at,
        "resolvedDate" => resolved_at,
        "deleted" => deleted,
    }
    changes
}

/// A field as the ticket serialises it.
fn json(value: &impl Serialize) -> Value {
    // Cannot fail: every field of a ticket serialises (see `fields`).
    serde_json::to_value(value).unwrap_or(Value::Null)
}

#[cfg(test)]
fn fields(ticket: &Ticket) -> serde_json::Map<String, Value> {
    match serde_json::to_value(ticket) {
        Ok(Value::Object(map)) => map,
        // Cannot happen: a ticket always serialises to an object.
        _ => serde_json::Map::new(),
    }
}

/// One step per event that applies to a ticket, folding the log once.
pub fn steps(events: &[TicketEvent]) -> Vec<Step> {
    let mut state = None;
    let mut steps = Vec::with_capacity(events.len());
    for event in events {
        let before = state.clone();
        state = evolve(state, event);
        if let Some(after) = &state {
            steps.push(Step {
                version: after.version,
                changes: diff(before.as_ref(), after),
                before,
                after: after.clone(),
            });
        }
    }
    steps
}

/// What [`steps_kept`] does with a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    No,
    Yes,
    /// Keep nothing more: the fold ends here.
    Stop,
}

/// Folds `events` once and keeps the steps `keep` asks for (it sees each
/// event's index, and the ticket before and after it), with their index.
/// Only kept steps hold copies of the ticket, so memory follows what is
/// kept, not the length of the stream.
pub fn steps_kept(
    events: &[TicketEvent],
    mut keep: impl FnMut(usize, Option<&Ticket>, &Ticket) -> Keep,
) -> Vec<(usize, Step)> {
    let mut state: Option<Ticket> = None;
    let mut kept = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let before = state.clone();
        state = evolve(state, event);
        let Some(after) = &state else { continue };
        match keep(index, before.as_ref(), after) {
            Keep::No => {}
            Keep::Yes => kept.push((
                index,
                Step {
                    version: after.version,
                    changes: diff(before.as_ref(), after),
                    before,
                    after: after.clone(),
                },
            )),
            Keep::Stop => break,
        }
    }
    kept
}

/// The step that produced `version`, if the stream reached it.
pub fn step_at(events: &[TicketEvent], version: u64) -> Option<Step> {
    let mut state: Option<Ticket> = None;
    for event in events {
        let before = state.clone();
        state = evolve(state, event);
        match &state {
            Some(after) if after.version == version => {
                return Some(Step {
                    version,
                    changes: diff(before.as_ref(), after),
                    before,
                    after: after.clone(),
                })
            }
            Some(after) if after.version > version => return None,
            _ => {}
        }
    }
    None
}

/// The ticket as it stood at `version`, if the stream reached it.
pub fn as_of_version(events: &[TicketEvent], version: u64) -> Option<Ticket> {
    let mut state: Option<Ticket> = None;
    for event in events {
        state = evolve(state, event);
        match &state {
            Some(ticket) if ticket.version == version => return state,
            Some(ticket) if ticket.version > version => return None,
            _ => {}
        }
    }
    None
}

/// The ticket after every event recorded at or before `at`. Folding stops at
/// the first later event: events are in stream order, and a clock that
/// stepped back must not produce a state that never existed.
pub fn as_of_time(events: &[TicketEvent], at: DateTime<Utc>) -> Option<Ticket> {
    events
        .iter()
        .take_while(|event| event.at <= at)
        .fold(None, evolve)
}

#[cfg(test)]
mod tests;
