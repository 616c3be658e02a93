//! How every read model reads an event of a ticket stream: the ticket id from
//! the stream name, the row position, the decoded event. One place, so the
//! read models agree on what is poison.

use domain::TicketEvent;
use store::RecordedEvent;
use uuid::Uuid;

use crate::db::RowPosition;
use crate::error::ApplyError;

/// An event of a ticket stream, ready to fold.
pub(crate) struct TicketRecord {
    pub ticket_id: Uuid,
    pub position: RowPosition,
    pub event: TicketEvent,
}

/// `None` for an event of another stream; poison for a ticket stream without
/// a ticket id or an event that cannot be decoded.
pub(crate) fn read(event: &RecordedEvent) -> Result<Option<TicketRecord>, ApplyError> {
    let Some(stream_ticket) = event.stream_id.strip_prefix(domain::STREAM_PREFIX) else {
        return Ok(None);
    };
    let ticket_id = Uuid::parse_str(stream_ticket).map_err(|e| {
        ApplyError::Poison(format!(
            "stream {} names no ticket id: {e}",
            event.stream_id
        ))
    })?;
    let position = RowPosition::of(event.position)?;
    let decoded = domain::decode(&event.event_type, event.schema_version, &event.data)
        .map_err(|e| ApplyError::Poison(format!("cannot decode {}: {e}", event.event_type)))?;
    Ok(Some(TicketRecord {
        ticket_id,
        position,
        event: decoded,
    }))
}

/// The ticket ids `events` name that `known` does not hold yet, sorted and
/// without repeats: what a batch preloads in one query. Stream names that are
/// no ticket id are left to [`read`] to report.
pub(crate) fn ids_to_load(events: &[&RecordedEvent], known: impl Fn(&Uuid) -> bool) -> Vec<Uuid> {
    let mut wanted: Vec<Uuid> = events
        .iter()
        .filter_map(|e| e.stream_id.strip_prefix(domain::STREAM_PREFIX))
        .filter_map(|id| Uuid::parse_str(id).ok())
        .filter(|id| !known(id))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    wanted
}
