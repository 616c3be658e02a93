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

/// What [`read`] made of one event: `None` for an event of another stream,
/// the poison's reason for one that cannot be read.
pub(crate) type TicketRead = Result<Option<TicketRecord>, String>;

/// `None` for an event of another stream; poison for a ticket stream without
/// a ticket id or an event that cannot be decoded.
pub(crate) fn read(event: &RecordedEvent) -> TicketRead {
    let Some(stream_ticket) = event.stream_id.strip_prefix(domain::STREAM_PREFIX) else {
        return Ok(None);
    };
    let ticket_id = Uuid::parse_str(stream_ticket)
        .map_err(|e| format!("stream {} names no ticket id: {e}", event.stream_id))?;
    let position = RowPosition::of(event.position).map_err(|e| match e {
        ApplyError::Poison(reason) => reason,
        other => other.to_string(),
    })?;
    let decoded = ticket_stream::decode(event)
        .map_err(|e| format!("cannot decode {}: {e}", event.event_type))?;
    Ok(Some(TicketRecord {
        ticket_id,
        position,
        event: decoded,
    }))
}

/// [`read`] of each event, in order: what a batch folds when no read of it
/// is shared ([`Reads`]).
pub(crate) fn read_each(events: &[&RecordedEvent]) -> Vec<TicketRead> {
    events.iter().map(|e| read(e)).collect()
}

/// `read` as a projection applies it: a poison is an [`ApplyError`].
pub(crate) fn record(read: &TicketRead) -> Result<Option<&TicketRecord>, ApplyError> {
    match read {
        Ok(record) => Ok(record.as_ref()),
        Err(reason) => Err(ApplyError::Poison(reason.clone())),
    }
}

/// Every event of a batch [`read`] once, in order: what a rebuild hands
/// each projection it loads (see [`crate::runner::BulkLoad::load_batch`]),
/// so that several projections loading the same page decode it once.
pub struct Reads<'a>(&'a [TicketRead]);

impl<'a> Reads<'a> {
    pub(crate) fn new(reads: &'a [TicketRead]) -> Self {
        Reads(reads)
    }

    pub(crate) fn get(&self) -> &'a [TicketRead] {
        self.0
    }
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
