//! A ticket's stream as the store hands it over, decoded and folded: the one
//! way every reader (the command service, the read models, the fan-out, the
//! SLA process, history queries) turns stored events into a ticket.
//!
//! The store's own types are not known here: a reader lends each event's
//! stored name, schema version and payload as a [`StoredEvent`] and gets the
//! decoded events with the state they fold to, or the first event that does
//! not decode. Reading the stream is the caller's I/O.

use serde_json::Value;

use crate::codec::{decode, DecodeError};
use crate::event::TicketEvent;
use crate::evolve::fold;
use crate::history::{steps, Step};
use crate::ticket::Ticket;

/// One stored event of a ticket stream, borrowed from the store's record.
#[derive(Debug, Clone, Copy)]
pub struct StoredEvent<'a> {
    pub event_type: &'a str,
    pub schema_version: i32,
    pub data: &'a Value,
}

/// A ticket stream decoded and folded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TicketStream {
    /// Every event of the stream, in stream order.
    pub events: Vec<TicketEvent>,
    /// The ticket they fold to (`None`: no `TicketCreated` yet).
    pub state: Option<Ticket>,
}

/// The first event of a stream that does not decode: a corrupt or too-new
/// log entry, reported, never guessed at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {index} of the stream: {error}")]
pub struct UndecodableEvent {
    /// Its place in the events handed over (its stream version when the
    /// stream was read from the start).
    pub index: usize,
    pub error: DecodeError,
}

impl TicketStream {
    /// Decodes `stored` in order and folds the events.
    pub fn decode<'a>(
        stored: impl IntoIterator<Item = StoredEvent<'a>>,
    ) -> Result<TicketStream, UndecodableEvent> {
        let events = stored
            .into_iter()
            .enumerate()
            .map(|(index, e)| {
                decode(e.event_type, e.schema_version, e.data)
                    .map_err(|error| UndecodableEvent { index, error })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let state = fold(&events);
        Ok(TicketStream { events, state })
    }

    /// One step per event that applied: the ticket right before and right
    /// after it, with the field changes.
    pub fn steps(&self) -> Vec<Step> {
        steps(&self.events)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::codec::encode;
    use crate::event::TicketChange;
    use crate::ticket::TicketPriority;

    fn created() -> TicketEvent {
        TicketEvent {
            actor: "alice".into(),
            at: Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap(),
            change: TicketChange::Created {
                ticket_id: uuid::Uuid::nil(),
                reference: "TCK-000001".into(),
                request: "Printer on fire".into(),
                description: None,
                priority: TicketPriority::High,
                queue: "billing".into(),
                tags: vec![],
            },
        }
    }

    /// A stream decodes to its events and the state they fold to, with one
    /// step per event.
    #[test]
    fn a_stored_stream_decodes_to_its_events_and_their_fold() {
        let encoded = encode(&created());
        let stream = TicketStream::decode([StoredEvent {
            event_type: encoded.event_type,
            schema_version: encoded.schema_version,
            data: &encoded.data,
        }])
        .unwrap();
        assert_eq!(stream.events, vec![created()]);
        assert_eq!(stream.state, fold(&[created()]));
        assert_eq!(stream.steps().len(), 1);
    }

    /// The first event that does not decode is named by its index.
    #[test]
    fn an_undecodable_event_is_reported_with_its_index() {
        let encoded = encode(&created());
        let junk = serde_json::json!({});
        let stored = [
            StoredEvent {
                event_type: encoded.event_type,
                schema_version: encoded.schema_version,
                data: &encoded.data,
            },
            StoredEvent {
                event_type: "TicketVanished",
                schema_version: 1,
                data: &junk,
            },
        ];
        let error = TicketStream::decode(stored).unwrap_err();
        assert_eq!(error.index, 1);
        assert_eq!(
            error.error,
            DecodeError::UnknownType("TicketVanished".into())
        );
    }
}
