//! # Layout
//! A ticket's stream read from an [`EventStore`] and handed to
//! [`domain::TicketStream`], which decodes and folds it: the one loader of
//! the command service, the read models, the SLA process, the fan-out and
//! the history queries. One file: [`load`] and [`load_through`] read a
//! stream, [`decode`] reads one recorded event, [`LoadError`] says why a
//! stream could not be loaded.
//!
//! It sits between `store` (which knows nothing of tickets) and `domain`
//! (which does no I/O), below everything that reads tickets.

use domain::{DecodeError, StoredEvent, Ticket, TicketEvent, TicketStream};
use store::{EventStore, Position, RecordedEvent, StoreError};
use uuid::Uuid;

/// A ticket's stream as recorded, decoded and folded.
#[derive(Debug, Clone, Default)]
pub struct LoadedTicket {
    /// The recorded events, in stream order.
    pub events: Vec<RecordedEvent>,
    /// The same events decoded, one for one.
    pub decoded: Vec<TicketEvent>,
    /// The ticket they fold to (`None`: no stream, or no `TicketCreated`).
    pub state: Option<Ticket>,
}

impl LoadedTicket {
    /// The stream's current version, `None` when it has no event.
    pub fn version(&self) -> Option<u64> {
        self.events.last().map(|e| e.version)
    }
}

/// Why a stream could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading the stream failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An event of the stream does not decode: corrupt or too new for this
    /// version. Retrying cannot help.
    #[error("event {event_id} at position {position} ({event_type} v{schema_version}): {error}")]
    Undecodable {
        event_id: Uuid,
        position: Position,
        event_type: String,
        schema_version: i32,
        error: DecodeError,
    },
}

/// Both are the store's failure to a caller that does not tell them apart:
/// an undecodable event is corrupt data in the log.
impl From<LoadError> for StoreError {
    fn from(e: LoadError) -> StoreError {
        match e {
            LoadError::Store(e) => e,
            undecodable => StoreError::Corrupt(undecodable.to_string()),
        }
    }
}

/// What the domain's decoder needs of a recorded event.
pub fn stored(event: &RecordedEvent) -> StoredEvent<'_> {
    StoredEvent {
        event_type: &event.event_type,
        schema_version: event.schema_version,
        data: &event.data,
    }
}

/// One recorded ticket event, decoded.
pub fn decode(event: &RecordedEvent) -> Result<TicketEvent, DecodeError> {
    domain::decode(&event.event_type, event.schema_version, &event.data)
}

/// Reads and folds ticket `id`'s whole stream.
pub async fn load(store: &dyn EventStore, id: Uuid) -> Result<LoadedTicket, LoadError> {
    let events = store::read_whole_stream(store, &domain::stream_name(id)).await?;
    fold(events)
}

/// Reads and folds ticket `id`'s stream from its start up to and including
/// `version` (fewer when the stream is shorter).
pub async fn load_through(
    store: &dyn EventStore,
    id: Uuid,
    version: u64,
) -> Result<LoadedTicket, LoadError> {
    let count = usize::try_from(version.saturating_add(1)).unwrap_or(usize::MAX);
    let events = store
        .read_stream(&domain::stream_name(id), 0, count)
        .await?;
    fold(events)
}

fn fold(events: Vec<RecordedEvent>) -> Result<LoadedTicket, LoadError> {
    match TicketStream::decode(events.iter().map(stored)) {
        Ok(TicketStream {
            events: decoded,
            state,
        }) => Ok(LoadedTicket {
            events,
            decoded,
            state,
        }),
        Err(e) => {
            // The index is that of an event handed over, so it is in range.
            let event = &events[e.index];
            Err(LoadError::Undecodable {
                event_id: event.id,
                position: event.position,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                error: e.error,
            })
        }
    }
}
