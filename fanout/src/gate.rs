//! The bound on replays that read the store: at most
//! [`HubConfig::max_replays`](crate::HubConfig::max_replays) at once in the
//! process and [`HubConfig::max_replays_per_owner`](crate::HubConfig::max_replays_per_owner)
//! per owner (the API's user), and no replay of the whole log from further
//! behind than [`HubConfig::max_replay_events`](crate::HubConfig::max_replay_events).
//!
//! A replay over the bound is refused at once ([`Refusal`]) rather than
//! queued: a client cannot pile up work that waits for a slot, and learns
//! when to try again. A replay served from the hub's recent deliveries reads
//! nothing and takes no [`Permit`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use store::Position;

/// How long a client whose replay was refused for want of a slot should wait:
/// replays that read the store are short (a ticket's stream, or at most
/// `max_replay_events` of the log).
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why a subscription with `after` was not opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// As many replays as allowed are running (the owner's, or the process's):
    /// try again after `retry_after`.
    #[error("too many replays are running; try again in {} s", retry_after.as_secs())]
    Busy { retry_after: Duration },
    /// `after` lies further behind the head than a replay of the whole log
    /// may read: reload state with queries and subscribe from a recent
    /// position.
    #[error("after {after} is more than {max_events} events behind the head ({head})")]
    TooOld {
        after: Position,
        head: Position,
        max_events: u64,
    },
}

/// Replays so far, for an operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Replays reading the store now.
    pub running: usize,
    /// Events replays have read from the store.
    pub events_read: u64,
    /// Replays refused ([`Refusal`]).
    pub refused: u64,
}

/// The running replays, counted per owner.
#[derive(Debug)]
pub(crate) struct Gate {
    max_total: usize,
    max_per_owner: usize,
    running: Mutex<Running>,
    events_read: AtomicU64,
    refused: AtomicU64,
}

#[derive(Debug, Default)]
struct Running {
    total: usize,
    by_owner: HashMap<String, usize>,
}

impl Gate {
    pub fn new(max_total: usize, max_per_owner: usize) -> Gate {
        Gate {
            max_total: max_total.max(1),
            max_per_owner: max_per_owner.max(1),
            running: Mutex::default(),
            events_read: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// A slot for one replay of `owner` (`None`: counted in the total only),
    /// or [`Refusal::Busy`].
    pub fn admit(self: &Arc<Gate>, owner: Option<&str>) -> Result<Permit, Refusal> {
        let mut running = self.lock();
        let mine = owner.map_or(0, |o| running.by_owner.get(o).copied().unwrap_or(0));
        if running.total >= self.max_total || mine >= self.max_per_owner {
            drop(running);
            self.refuse();
            return Err(Refusal::Busy {
                retry_after: RETRY_AFTER,
            });
        }
        running.total += 1;
        if let Some(owner) = owner {
            *running.by_owner.entry(owner.to_string()).or_default() += 1;
        }
        Ok(Permit {
            gate: self.clone(),
            owner: owner.map(str::to_string),
        })
    }

    pub fn refuse(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn read(&self, events: usize) {
        self.events_read
            .fetch_add(u64::try_from(events).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub fn stats(&self) -> ReplayStats {
        ReplayStats {
            running: self.lock().total,
            events_read: self.events_read.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Running> {
        // Every change to the counts is one statement: still consistent.
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One running replay's slot, given back on drop (however the replay ends:
/// done, failed, or its stream dropped).
#[derive(Debug)]
pub(crate) struct Permit {
    gate: Arc<Gate>,
    owner: Option<String>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut running = self.gate.lock();
        running.total = running.total.saturating_sub(1);
        if let Some(owner) = &self.owner {
            if let Some(n) = running.by_owner.get_mut(owner) {
                *n -= 1;
                if *n == 0 {
                    running.by_owner.remove(owner);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An owner at its bound is refused while others are admitted, up to the
    /// total; a slot given back is taken again.
    #[test]
    fn replays_are_bounded_per_owner_and_in_total() {
        let gate = Arc::new(Gate::new(3, 2));
        let a1 = gate.admit(Some("alice")).unwrap();
        let _a2 = gate.admit(Some("alice")).unwrap();
        assert!(matches!(
            gate.admit(Some("alice")),
            Err(Refusal::Busy { retry_after }) if retry_after >= Duration::from_secs(1)
        ));
        let _b1 = gate.admit(Some("bob")).unwrap();
        assert!(gate.admit(Some("carol")).is_err(), "the total is reached");
        assert!(gate.admit(None).is_err(), "the total counts everyone");
        assert_eq!(gate.stats().running, 3);
        assert_eq!(gate.stats().refused, 3);
        drop(a1);
        let _c1 = gate.admit(Some("carol")).unwrap();
        assert!(gate.admit(Some("alice")).is_err());
    }
}
