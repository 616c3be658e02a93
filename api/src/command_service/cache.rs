//! Recently written tickets, folded, so a command need not re-read its stream.
//!
//! Loading a ticket reads and decodes its whole stream, and that grows with
//! every comment: for busy tickets it is most of a command's cost. The command
//! service keeps the state it last saw per ticket, with the stream version it
//! was folded at, and decides on that.
//!
//! A cached state may be stale: another process, or another service sharing the
//! store, may have appended since. It is still safe to decide on, because the
//! append names the cached version exactly (`ExpectedVersion::Exact`): events
//! are never changed once stored, so if the stream is still at that version the
//! cached state *is* the stream's state, and if it is not the append is refused
//! with a conflict and the service reloads. What a stale state must not do is
//! answer a caller without an append to vouch for it (a refusal, "nothing to
//! change", a version mismatch): the service then reloads and decides again.
//!
//! Bounded (least recently used out) so memory stays flat however many tickets
//! pass through.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use domain::Ticket;
use lru::LruCache;
use uuid::Uuid;

/// Tickets kept. A ticket's state is a few kilobytes unless it has many
/// comments, so this stays in the tens of megabytes at worst.
const CAPACITY: NonZeroUsize = match NonZeroUsize::new(4096) {
    Some(n) => n,
    None => panic!("the capacity is not zero"),
};

/// A ticket's state as of one stream version.
#[derive(Debug, Clone)]
pub(super) struct Cached {
    pub version: u64,
    pub ticket: Arc<Ticket>,
}

/// Shared by every clone of a command service.
pub(super) struct TicketCache {
    entries: Mutex<LruCache<Uuid, Cached>>,
}

impl TicketCache {
    pub fn new() -> Self {
        TicketCache {
            entries: Mutex::new(LruCache::new(CAPACITY)),
        }
    }

    pub fn get(&self, ticket_id: Uuid) -> Option<Cached> {
        self.lock().get(&ticket_id).cloned()
    }

    /// Remembers `ticket` at `version`, unless a later version is known already
    /// (two commands on one ticket may finish out of order).
    pub fn put(&self, ticket_id: Uuid, version: u64, ticket: Arc<Ticket>) {
        let mut entries = self.lock();
        match entries.get_mut(&ticket_id) {
            Some(known) if known.version > version => {}
            Some(known) => *known = Cached { version, ticket },
            None => {
                entries.put(ticket_id, Cached { version, ticket });
            }
        }
    }

    /// Forgets a ticket whose cached state turned out stale.
    pub fn forget(&self, ticket_id: Uuid) {
        self.lock().pop(&ticket_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<Uuid, Cached>> {
        // The map stays consistent even if a holder panicked: each call is one
        // map operation.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
