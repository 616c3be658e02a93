//! How events are stored: a stable type name, a schema version and a JSON
//! payload that includes the actor and the time.
//!
//! Stored names never change once written (`TicketCreated`, ...). When a
//! payload's shape changes, its schema version goes up and `upcast` learns
//! to turn the old shape into the new one, so old streams keep decoding.
//!
//! This module is the codec of ticket events; [`user`] is that of user
//! events.

use crate::event::{TicketChange, TicketEvent, TicketEventType};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::value::{BorrowedStrDeserializer, MapDeserializer};
use serde::Deserialize;
use serde_json::{Map, Value};

/// An event ready for the store.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedEvent {
    pub event_type: &'static str,
    pub schema_version: i32,
    pub data: Value,
}

/// Why a stored event could not be decoded. Callers treat it as a corrupt or
/// too-new log entry: report it, never guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("unknown schema version {version} of {event_type}")]
    UnknownVersion { event_type: String, version: i32 },
    #[error("bad payload for {event_type}: {reason}")]
    BadPayload { event_type: String, reason: String },
}

/// Each event type with its stored name and current schema version. The
/// stored name is also the serde tag of [`TicketChange`]'s variant.
const STORED: [(TicketEventType, &str, i32); 18] = [
    (TicketEventType::Created, "TicketCreated", 2),
    (TicketEventType::Updated, "TicketUpdated", 1),
    (TicketEventType::Assigned, "TicketAssigned", 1),
    (TicketEventType::Unassigned, "TicketUnassigned", 1),
    (TicketEventType::StatusChanged, "TicketStatusChanged", 1),
    (TicketEventType::PriorityChanged, "TicketPriorityChanged", 1),
    (TicketEventType::Commented, "TicketCommented", 1),
    (TicketEventType::AttachmentAdded, "TicketAttachmentAdded", 1),
    (TicketEventType::Deleted, "TicketDeleted", 1),
    (TicketEventType::RelatedAdded, "TicketRelatedAdded", 1),
    (TicketEventType::RelatedRemoved, "TicketRelatedRemoved", 1),
    (TicketEventType::TagAdded, "TicketTagAdded", 1),
    (TicketEventType::TagRemoved, "TicketTagRemoved", 1),
    (TicketEventType::WatcherAdded, "TicketWatcherAdded", 1),
    (TicketEventType::WatcherRemoved, "TicketWatcherRemoved", 1),
    (TicketEventType::QueueChanged, "TicketQueueChanged", 1),
    (TicketEventType::SlaWarning, "TicketSlaWarning", 1),
    (TicketEventType::SlaBreached, "TicketSlaBreached", 1),
];

/// The stored name of an event type, e.g. `TicketAssigned`.
pub fn stored_name(kind: TicketEventType) -> &'static str {
    stored(kind).1
}

/// The schema version [`encode`] writes for an event type.
pub fn schema_version(kind: TicketEventType) -> i32 {
    stored(kind).2
}

fn stored(kind: TicketEventType) -> (TicketEventType, &'static str, i32) {
    // Every variant is in the table; a unit test walks them all.
    STORED
        .into_iter()
        .find(|(k, _, _)| *k == kind)
        .unwrap_or(STORED[0])
}

pub fn encode(event: &TicketEvent) -> EncodedEvent {
    let kind = event.event_type();
    let mut data = match serde_json::to_value(&event.change) {
        Ok(Value::Object(map)) => map,
        // Cannot happen: every variant serialises to an object with string
        // keys. An empty payload would fail loudly on decode, not here.
        _ => Map::new(),
    };
    // The tag is the stored name, which travels beside the payload.
    data.remove("type");
    data.insert("actor".into(), Value::String(event.actor.clone()));
    data.insert(
        "at".into(),
        Value::String(event.at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    );
    EncodedEvent {
        event_type: stored_name(kind),
        schema_version: schema_version(kind),
        data: Value::Object(data),
    }
}

pub fn decode(
    event_type: &str,
    schema_version: i32,
    data: &Value,
) -> Result<TicketEvent, DecodeError> {
    let (_, name, _) = STORED
        .into_iter()
        .find(|(_, name, _)| *name == event_type)
        .ok_or_else(|| DecodeError::UnknownType(event_type.to_string()))?;
    let bad = |reason: String| DecodeError::BadPayload {
        event_type: name.to_string(),
        reason,
    };
    // Only an old schema version pays for a copy of the payload; the
    // current one is decoded straight from the borrowed map.
    let upcast_data;
    let data = if schema_version == schema_of(name) {
        data
    } else {
        upcast_data = upcast(name, schema_version, data.clone())?;
        &upcast_data
    };
    let Value::Object(data) = data else {
        return Err(bad("not a JSON object".into()));
    };
    let actor = match data.get("actor") {
        Some(Value::String(actor)) => actor.clone(),
        _ => return Err(bad("missing or non-string actor".into())),
    };
    let at = match data.get("at") {
        Some(Value::String(at)) => DateTime::parse_from_rfc3339(at)
            .map_err(|e| bad(format!("at is not RFC 3339: {e}")))?
            .with_timezone(&Utc),
        _ => return Err(bad("missing or non-string at".into())),
    };
    // The change's fields with the stored name as its serde tag, read from
    // the payload in place: `actor` and `at` are no fields of any variant,
    // and a stray `type` in the payload never overrides the stored name.
    let tag = Value::String(name.into());
    let fields = std::iter::once(("type", &tag)).chain(
        data.iter()
            .filter(|(key, _)| !matches!(key.as_str(), "type" | "actor" | "at"))
            .map(|(key, value)| (key.as_str(), value)),
    );
    let change = TicketChange::deserialize(MapDeserializer::<_, serde_json::Error>::new(
        fields.map(|(key, value)| (BorrowedStrDeserializer::new(key), value)),
    ))
    .map_err(|e| bad(e.to_string()))?;
    Ok(TicketEvent { actor, at, change })
}

/// The current schema version of a stored name.
fn schema_of(event_type: &str) -> i32 {
    STORED
        .into_iter()
        .find(|(_, name, _)| *name == event_type)
        .map_or(1, |(_, _, v)| v)
}

/// Brings a payload of any known schema version up to the current one.
///
/// `TicketCreated` v1 predates the contract: the summary was called `title`
/// and tickets had no tags.
fn upcast(event_type: &'static str, version: i32, data: Value) -> Result<Value, DecodeError> {
    let current = schema_of(event_type);
    match (event_type, version) {
        (_, v) if v == current => Ok(data),
        ("TicketCreated", 1) => Ok(created_v1_to_v2(data)),
        _ => Err(DecodeError::UnknownVersion {
            event_type: event_type.to_string(),
            version,
        }),
    }
}

fn created_v1_to_v2(data: Value) -> Value {
    let Value::Object(mut map) = data else {
        // Left as is: decode reports the bad payload with its reason.
        return data;
    };
    if let Some(title) = map.remove("title") {
        map.entry("request").or_insert(title);
    }
    map.entry("tags").or_insert_with(|| Value::Array(vec![]));
    Value::Object(map)
}

pub mod announcement;
pub mod user;

#[cfg(test)]
mod tests;
