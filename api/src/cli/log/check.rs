//! What `tickets log verify` checks of each event, and the heads `tickets log
//! digest` is computed over: one pass over the log in position order, with
//! one entry per stream in memory (its last version and hash), never the
//! events.

use std::collections::HashMap;
use std::fmt;

use sha2::{Digest, Sha256};
use store::chain::{self, Chained};
use store::{Position, RecordedEvent};
use uuid::Uuid;

use crate::references::{REFERENCES_STREAM, RESERVED_TYPE};

/// The last event seen of a stream.
#[derive(Debug, Clone)]
struct Head {
    version: u64,
    hash: String,
}

/// The first event that breaks the log, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub position: Position,
    pub id: Uuid,
    pub stream: String,
    pub version: u64,
    pub reason: String,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event {} at position {} (stream {}, version {}): {}",
            self.id, self.position, self.stream, self.version, self.reason
        )
    }
}

/// The heads of every stream seen so far, and the checks of `verify`.
#[derive(Debug, Default)]
pub struct LogCheck {
    heads: HashMap<String, Head>,
    last: Position,
    events: u64,
}

impl LogCheck {
    /// Checks `event`, the next one of the log: its position follows the
    /// previous event's, its version follows its stream's last one, its hash
    /// chains to that one's, and it decodes (old schema versions upcast).
    pub fn verify(&mut self, event: &RecordedEvent) -> Result<(), Broken> {
        let broken = |reason: String| Broken {
            position: event.position,
            id: event.id,
            stream: event.stream_id.clone(),
            version: event.version,
            reason,
        };
        if event.position <= self.last {
            return Err(broken(format!(
                "its position does not follow the previous event's ({})",
                self.last
            )));
        }
        let head = self.heads.get(&event.stream_id);
        let next = head.map_or(0, |h| h.version + 1);
        if event.version != next {
            return Err(broken(format!(
                "the stream's next version is {next}: an event is missing or out of order"
            )));
        }
        let previous = head.map_or(chain::GENESIS, |h| h.hash.as_str());
        let computed = chain::event_hash(previous, Chained::from(event));
        if event.hash.is_empty() {
            return Err(broken("no hash is stored".into()));
        }
        if event.hash != computed {
            return Err(broken(format!(
                "its hash {} is not the one chained from the stream's previous event \
                 ({computed}): the event or its predecessor was altered",
                event.hash
            )));
        }
        decodes(event).map_err(broken)?;
        self.record(event);
        Ok(())
    }

    /// Takes `event` as the head of its stream without checking it (what
    /// `digest` does).
    pub fn record(&mut self, event: &RecordedEvent) {
        self.last = self.last.max(event.position);
        self.events += 1;
        let head = Head {
            version: event.version,
            hash: event.hash.clone(),
        };
        self.heads.insert(event.stream_id.clone(), head);
    }

    /// Events seen.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Streams seen.
    pub fn streams(&self) -> usize {
        self.heads.len()
    }

    /// The last position seen (`START` when none).
    pub fn last(&self) -> Position {
        self.last
    }

    /// SHA-256 (hex) over every stream's head, streams in the byte order of
    /// their names, each as the line `["STREAM",VERSION,"HASH"]\n` (JSON:
    /// no name can be mistaken for another). Each head's hash covers its
    /// whole stream through the chain, so this one value covers the log,
    /// and a stream removed whole changes it too.
    pub fn digest(&self) -> String {
        let mut streams: Vec<(&String, &Head)> = self.heads.iter().collect();
        streams.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut hasher = Sha256::new();
        for (stream, head) in streams {
            let line = serde_json::json!([stream, head.version, head.hash]);
            hasher.update(line.to_string().as_bytes());
            hasher.update(b"\n");
        }
        hex::encode(hasher.finalize())
    }
}

/// Whether the codec of the event's kind of stream decodes it.
fn decodes(event: &RecordedEvent) -> Result<(), String> {
    let (kind, schema, data) = (&event.event_type, event.schema_version, &event.data);
    let stream = event.stream_id.as_str();
    if stream.starts_with(domain::STREAM_PREFIX) {
        domain::decode(kind, schema, data)
            .map(drop)
            .map_err(|e| format!("it does not decode: {e}"))
    } else if stream.starts_with(domain::USER_STREAM_PREFIX) {
        domain::codec::user::decode(kind, schema, data)
            .map(drop)
            .map_err(|e| format!("it does not decode: {e}"))
    } else if stream == REFERENCES_STREAM {
        let numbered = data.get("number").is_some_and(|n| n.is_u64())
            && data.get("ticketId").is_some_and(|t| t.is_string());
        match (kind.as_str(), schema, numbered) {
            (RESERVED_TYPE, 1, true) => Ok(()),
            _ => Err(format!(
                "it does not decode: a {kind} of schema {schema} in the references stream"
            )),
        }
    } else {
        Err("its stream is of no known kind".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::json;

    fn stream(name: &str, count: u64, first_position: u64) -> Vec<RecordedEvent> {
        let mut previous = chain::GENESIS.to_string();
        (0..count)
            .map(|version| {
                let mut e = RecordedEvent {
                    id: Uuid::new_v4(),
                    position: Position::from_sequence(first_position + version),
                    stream_id: name.into(),
                    version,
                    event_type: RESERVED_TYPE.into(),
                    schema_version: 1,
                    data: json!({"ticketId": "t", "number": version + 1}),
                    metadata: json!({}),
                    recorded_at: Utc::now(),
                    hash: String::new(),
                };
                e.hash = chain::event_hash(&previous, Chained::from(&e));
                previous = e.hash.clone();
                e
            })
            .collect()
    }

    fn first_broken(events: &[RecordedEvent]) -> Option<Broken> {
        let mut check = LogCheck::default();
        events.iter().find_map(|e| check.verify(e).err())
    }

    /// An untouched chain verifies; altering, removing or swapping one event
    /// is caught at that event (or the one after the hole).
    #[test]
    fn an_altered_removed_or_swapped_event_is_named() {
        let events = stream(REFERENCES_STREAM, 4, 1);
        assert_eq!(first_broken(&events), None);

        let mut altered = events.clone();
        altered[1].data = json!({"ticketId": "t", "number": 99});
        assert_eq!(first_broken(&altered).unwrap().id, events[1].id);

        let mut removed = events.clone();
        removed.remove(2);
        assert_eq!(first_broken(&removed).unwrap().id, events[3].id);

        let mut swapped = events.clone();
        swapped.swap(1, 2);
        (swapped[1].position, swapped[2].position) = (swapped[2].position, swapped[1].position);
        assert_eq!(first_broken(&swapped).unwrap().id, events[2].id);
    }

    /// Removing a stream whole leaves every other chain intact, so only the
    /// digest over the heads shows it.
    #[test]
    fn the_digest_changes_when_a_stream_is_removed_whole() {
        let mut both = stream(REFERENCES_STREAM, 2, 1);
        let mut other = stream("user-x", 1, 3);
        other[0].event_type = "UserProfileRecorded".into();
        let digest = |events: &[RecordedEvent]| {
            let mut check = LogCheck::default();
            events.iter().for_each(|e| check.record(e));
            check.digest()
        };
        let only_references = digest(&both);
        both.append(&mut other);
        assert_ne!(digest(&both), only_references);
        assert_eq!(digest(&both), digest(&both));
    }
}
