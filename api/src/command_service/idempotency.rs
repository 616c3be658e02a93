//! Idempotency keys: a keyed call's event ids are derived from (actor, key,
//! stream, index), so a retried call finds its own events in the stream and
//! answers with them instead of deciding again; and the metadata stored with
//! every event of a command (its name, actor, version and key).

use domain::DomainError;
use serde_json::json;
use ticket_stream::LoadedTicket;
use uuid::Uuid;

use super::{CommandError, CommandOutcome, CommandRequest};

/// Longest idempotency key, in bytes: every event of the command stores it
/// in its metadata.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 200;

/// A key over [`MAX_IDEMPOTENCY_KEY_BYTES`] is the client's mistake, for
/// every operation that takes a key (commands, bulk calls, announcements).
pub fn check_key_length(key: Option<&str>) -> Result<(), DomainError> {
    match key {
        Some(key) if key.len() > MAX_IDEMPOTENCY_KEY_BYTES => Err(DomainError::Invalid(format!(
            "idempotencyKey may be at most {MAX_IDEMPOTENCY_KEY_BYTES} bytes (got {})",
            key.len()
        ))),
        _ => Ok(()),
    }
}

/// [`check_key_length`] for a command.
pub(super) fn check_key(key: Option<&str>) -> Result<(), CommandError> {
    check_key_length(key).map_err(CommandError::Domain)
}

/// Namespace of the v5 UUIDs derived from idempotency keys.
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x6c1e_2b9a_4f0d_4e7b_9a51_0b8e_0f2d_7c31);

/// When the stream already holds the events of this idempotency key, the first
/// call's outcome (rebuilt from the log); an error when the key served another
/// command.
pub(super) fn previous_result(
    req: &CommandRequest,
    stream: &str,
    loaded: &LoadedTicket,
) -> Result<Option<CommandOutcome>, CommandError> {
    let Some(key) = &req.idempotency_key else {
        return Ok(None);
    };
    let first_id = derived_id(&req.actor.user_id, key, stream, 0);
    let Some(start) = loaded.events.iter().position(|e| e.id == first_id) else {
        return Ok(None);
    };
    let stored_command = loaded.events[start].metadata["command"]
        .as_str()
        .unwrap_or("");
    if stored_command != req.command.name() {
        return Err(CommandError::KeyReused(stored_command.to_string()));
    }
    let mut events = Vec::new();
    for (i, event) in loaded.events[start..].iter().enumerate() {
        if event.id != derived_id(&req.actor.user_id, key, stream, i) {
            break;
        }
        events.push(event.clone());
    }
    let upto = start + events.len();
    let before = domain::fold(&loaded.decoded[..start]);
    let decided = loaded.decoded[start..upto].to_vec();
    let ticket = decided
        .iter()
        .fold(before.clone(), domain::evolve)
        .ok_or(DomainError::NotFound)?;
    Ok(Some(CommandOutcome {
        before,
        ticket,
        events,
        decided,
    }))
}

pub(super) fn event_metadata(req: &CommandRequest, version: u64) -> serde_json::Value {
    let mut meta = match &req.metadata {
        serde_json::Value::Object(m) => m.clone(),
        _ => serde_json::Map::new(),
    };
    meta.insert("command".into(), json!(req.command.name()));
    meta.insert("actor".into(), json!(req.actor.user_id));
    meta.insert("version".into(), json!(version));
    if let Some(key) = &req.idempotency_key {
        meta.insert("idempotencyKey".into(), json!(key));
    }
    serde_json::Value::Object(meta)
}

/// A deterministic id for the `index`-th event a keyed call writes to `scope`.
pub fn derived_id(actor: &str, key: &str, scope: &str, index: usize) -> Uuid {
    // Lengths prefix each part so ("a:b", "c") and ("a", "b:c") cannot collide.
    let name = format!(
        "{}:{actor}|{}:{key}|{}:{scope}|{index}",
        actor.len(),
        key.len(),
        scope.len()
    );
    Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, name.as_bytes())
}
