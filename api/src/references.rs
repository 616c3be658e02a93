//! Human ticket references (`TCK-000042`), unique and sequential, allocated
//! through the event log itself: reference n is the event at version n-1 of the
//! `references` stream. Two writers racing for the same number collide on
//! the stream's expected version; the loser moves on to the next number. The log
//! stays the only source of truth, and the stream doubles as the index from
//! reference to ticket id.

use std::sync::Arc;

use serde_json::json;
use store::{EventStore, ExpectedVersion, NewEvent, StoreError};
use tokio::sync::Mutex;
use uuid::Uuid;

pub const REFERENCES_STREAM: &str = "references";
/// The stored name of a reservation (schema 1: `{"ticketId", "number"}`).
pub const RESERVED_TYPE: &str = "TicketReferenceReserved";
/// A reservation race is lost at most once per concurrent writer; this bound is
/// only a guard against a store that keeps answering "conflict".
const MAX_ATTEMPTS: usize = 1000;

pub struct ReferenceAllocator {
    store: Arc<dyn EventStore>,
    /// The version the next reservation is expected to take (a hint, corrected by
    /// the store's conflict answer).
    next_version: Mutex<u64>,
}

pub fn format_reference(number: u64) -> String {
    format!("TCK-{number:06}")
}

/// The number in `TCK-000042`, accepting any case and surrounding spaces.
pub fn parse_reference(reference: &str) -> Option<u64> {
    let r = reference.trim();
    let digits = r
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("TCK-"))
        .map(|_| &r[4..])?;
    digits.parse::<u64>().ok().filter(|n| *n > 0)
}

impl ReferenceAllocator {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        ReferenceAllocator {
            store,
            next_version: Mutex::new(0),
        }
    }

    /// Reserves the next reference for `ticket_id`. With `reservation_id` (derived
    /// from an idempotency key) a retried call gets the number it got the first time.
    #[tracing::instrument(name = "reserve reference", skip_all, fields(ticket_id = %ticket_id), err)]
    pub async fn reserve(
        &self,
        ticket_id: Uuid,
        reservation_id: Option<Uuid>,
    ) -> Result<String, StoreError> {
        let mut next = self.next_version.lock().await;
        let id = reservation_id.unwrap_or_else(Uuid::new_v4);
        for _ in 0..MAX_ATTEMPTS {
            let expected = match *next {
                0 => ExpectedVersion::NoStream,
                n => ExpectedVersion::Exact(n - 1),
            };
            let event = NewEvent {
                id,
                event_type: RESERVED_TYPE.into(),
                schema_version: 1,
                data: json!({ "ticketId": ticket_id, "number": *next + 1 }),
                metadata: json!({}),
            };
            match self
                .store
                .append(REFERENCES_STREAM, expected, vec![event])
                .await
            {
                Ok(done) => {
                    // A repeated reservation answers with its original, older version.
                    *next = (*next).max(done.last_version + 1);
                    return Ok(format_reference(done.last_version + 1));
                }
                Err(StoreError::Conflict { actual, .. }) => {
                    *next = actual.map_or(0, |v| v + 1);
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Unavailable(
            "could not reserve a ticket reference: the store kept reporting conflicts".into(),
        ))
    }

    /// The ticket a reference was reserved for.
    pub async fn resolve(&self, reference: &str) -> Result<Option<Uuid>, StoreError> {
        let Some(number) = parse_reference(reference) else {
            return Ok(None);
        };
        let found = self
            .store
            .read_stream(REFERENCES_STREAM, number - 1, 1)
            .await?;
        Ok(found
            .first()
            .and_then(|e| e.data["ticketId"].as_str())
            .and_then(|s| s.parse().ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// References print with six digits and parse back, case-insensitively.
    #[test]
    fn a_reference_parses_back_to_its_number() {
        assert_eq!(format_reference(42), "TCK-000042");
        assert_eq!(parse_reference("TCK-000042"), Some(42));
        assert_eq!(parse_reference(" tck-1234567 "), Some(1_234_567));
        assert_eq!(parse_reference("TCK-000000"), None);
        assert_eq!(parse_reference("TICKET-1"), None);
        assert_eq!(parse_reference("TCK-"), None);
        assert_eq!(parse_reference("é"), None);
    }
}
