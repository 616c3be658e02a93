//! Tamper evidence: every event's hash chains it to the previous event of its
//! stream.
//!
//! `hash(event) = hex(SHA-256(previous ‖ canonical(event)))`, where
//! `previous` is the 64 lowercase hex characters of the stream's previous
//! event's hash ([`GENESIS`], 64 zeros, for version 0) and `canonical(event)`
//! is the UTF-8 bytes of one JSON object with exactly these keys, in this
//! (sorted) order, no whitespace:
//! `{"data":…,"eventType":…,"id":…,"metadata":…,"schemaVersion":…,"streamId":…,"version":…}`.
//! Inside `data` and `metadata`, object keys are sorted by their UTF-8 bytes
//! at every depth, strings are escaped as `serde_json` escapes them (only `"`,
//! `\` and control characters), numbers are written as `serde_json` writes
//! them. `id` is the lowercase hyphenated UUID.
//!
//! The position and the recording time are not covered: they are the log's
//! own bookkeeping, which differs between backends (an import into another
//! store assigns new positions and times), while the hash must survive an
//! export and import. Positions are checked by `tickets log verify` instead
//! (strictly increasing), and the stream order by the chain itself.
//! `migrations/README.md` ("Event hashes") documents the same for auditors.
//!
//! The writers compute hashes while they hold the write lock, from the head
//! hash their facts query reads with the stream's version (no extra query);
//! [`ChainHeads`] gives the events of a log written before hashes existed
//! theirs, at open.

use std::collections::HashMap;

use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The `previous` hash of a stream's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What the hash covers of an event.
#[derive(Debug, Clone, Copy)]
pub struct Chained<'a> {
    pub id: Uuid,
    pub stream_id: &'a str,
    pub version: u64,
    pub event_type: &'a str,
    pub schema_version: i32,
    pub data: &'a Value,
    pub metadata: &'a Value,
}

impl<'a> From<&'a crate::RecordedEvent> for Chained<'a> {
    fn from(e: &'a crate::RecordedEvent) -> Self {
        Chained {
            id: e.id,
            stream_id: &e.stream_id,
            version: e.version,
            event_type: &e.event_type,
            schema_version: e.schema_version,
            data: &e.data,
            metadata: &e.metadata,
        }
    }
}

/// The hash of `event` after `previous` (see the module docs).
pub fn event_hash(previous: &str, event: Chained<'_>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(previous.as_bytes());
    hasher.update(canonical(event).as_bytes());
    hex::encode(hasher.finalize())
}

/// The canonical encoding of an event (see the module docs).
pub fn canonical(event: Chained<'_>) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"data\":");
    write_value(&mut out, event.data);
    out.push_str(",\"eventType\":");
    write_string(&mut out, event.event_type);
    out.push_str(",\"id\":\"");
    out.push_str(&event.id.hyphenated().to_string());
    out.push_str("\",\"metadata\":");
    write_value(&mut out, event.metadata);
    out.push_str(",\"schemaVersion\":");
    out.push_str(&event.schema_version.to_string());
    out.push_str(",\"streamId\":");
    write_string(&mut out, event.stream_id);
    out.push_str(",\"version\":");
    out.push_str(&event.version.to_string());
    out.push('}');
    out
}

/// JSON with object keys sorted at every depth, whatever order the map keeps
/// (PostgreSQL's `jsonb` hands keys back in its own order).
fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, value);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push_str(&Value::from(s).to_string());
}

/// The hashes of events read in log order, each computed from the hash its
/// stream's previous event has (stored or just computed). Used to give a log
/// written before hashes existed its hashes: an event whose stored hash is
/// empty gets one, the others are kept as stored (a wrong one is for
/// `tickets log verify` to report, not for this to paper over).
#[derive(Debug, Default)]
pub struct ChainHeads {
    heads: HashMap<String, String>,
}

impl ChainHeads {
    /// The hash `event` should store: its own if it has one, else the one
    /// chained from its stream's head. Either way it becomes the head.
    pub fn next(&mut self, event: Chained<'_>, stored: &str) -> String {
        let hash = if stored.is_empty() {
            let previous = match event.version {
                0 => GENESIS,
                _ => self
                    .heads
                    .get(event.stream_id)
                    .map_or(GENESIS, String::as_str),
            };
            event_hash(previous, event)
        } else {
            stored.to_string()
        };
        self.heads.insert(event.stream_id.to_string(), hash.clone());
        hash
    }
}

/// How many events one page of a backend's fill of missing hashes reads
/// (both run it in one transaction at open, so a half-filled log is never
/// committed and a second run finds nothing to do; memory grows with the
/// number of streams, not of events).
pub(crate) const FILL_PAGE: i64 = 2000;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event<'a>(data: &'a Value, metadata: &'a Value) -> Chained<'a> {
        Chained {
            id: Uuid::nil(),
            stream_id: "ticket-1",
            version: 0,
            event_type: "TicketCreated",
            schema_version: 2,
            data,
            metadata,
        }
    }

    /// The encoding is the documented one, byte for byte.
    #[test]
    fn the_canonical_encoding_sorts_keys_at_every_depth_and_has_no_whitespace() {
        let data = json!({"b": [1, {"z": "x", "a": null}], "a": "é\"\n"});
        let metadata = json!({});
        assert_eq!(
            canonical(event(&data, &metadata)),
            "{\"data\":{\"a\":\"é\\\"\\n\",\"b\":[1,{\"a\":null,\"z\":\"x\"}]},\
             \"eventType\":\"TicketCreated\",\"id\":\"00000000-0000-0000-0000-000000000000\",\
             \"metadata\":{},\"schemaVersion\":2,\"streamId\":\"ticket-1\",\"version\":0}"
        );
    }

    /// A known answer: the SHA-256 of the genesis hash followed by the
    /// encoding, so another implementation can check itself against this one.
    #[test]
    fn the_hash_is_sha256_over_the_previous_hash_and_the_encoding() {
        let (data, metadata) = (json!({}), json!({}));
        let mut hasher = Sha256::new();
        hasher.update(GENESIS.as_bytes());
        hasher.update(canonical(event(&data, &metadata)).as_bytes());
        let expected = hex::encode(hasher.finalize());
        assert_eq!(event_hash(GENESIS, event(&data, &metadata)), expected);
        assert_eq!(expected.len(), 64);
    }

    /// Changing any covered field, or the previous hash, changes the hash.
    #[test]
    fn every_covered_field_and_the_previous_hash_change_the_hash() {
        let (data, metadata) = (json!({"a": 1}), json!({}));
        let base = event(&data, &metadata);
        let original = event_hash(GENESIS, base);
        let other_data = json!({"a": 2});
        let variants = [
            Chained {
                data: &other_data,
                ..base
            },
            Chained { version: 1, ..base },
            Chained {
                stream_id: "ticket-2",
                ..base
            },
            Chained {
                event_type: "TicketUpdated",
                ..base
            },
            Chained {
                schema_version: 1,
                ..base
            },
        ];
        for variant in variants {
            assert_ne!(event_hash(GENESIS, variant), original, "{variant:?}");
        }
        assert_ne!(event_hash(&original, base), original);
    }
}
