//! [`TicketLocks`]: commands on one ticket take turns within this process.
//!
//! Without them, concurrent commands on one ticket (say eight agents'
//! comments at once) each decide on the same version, all but one lose the
//! append, and a writer can lose every one of its retries. With them, only
//! appends from elsewhere (another server node, a process writing the log
//! directly) can move the stream between a load and an append, and the
//! command service's retries are for those.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Mutex as TurnLock, OwnedMutexGuard};
use uuid::Uuid;

/// One lock per ticket being commanded right now; a ticket's entry goes as
/// soon as nobody holds or waits for it, so the map holds only tickets in use.
#[derive(Debug, Default)]
pub(crate) struct TicketLocks {
    held: Mutex<HashMap<Uuid, Arc<TurnLock<()>>>>,
}

/// This command's turn on one ticket; the next one's begins when it drops.
pub(crate) struct Turn<'a> {
    locks: &'a TicketLocks,
    ticket: Uuid,
    lock: Arc<TurnLock<()>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl TicketLocks {
    /// Waits for this process's earlier commands on `ticket` to finish.
    pub(crate) async fn turn(&self, ticket: Uuid) -> Turn<'_> {
        let lock = self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(ticket)
            .or_default()
            .clone();
        let guard = lock.clone().lock_owned().await;
        Turn {
            locks: self,
            ticket,
            lock,
            guard: Some(guard),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut held = self
            .locks
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // The map's reference and ours: nobody else holds or waits. Others
        // clone it only under the map's mutex, which this holds.
        if Arc::strong_count(&self.lock) == 2 {
            held.remove(&self.ticket);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Turns on one ticket never overlap, turns on different tickets do not
    /// wait for each other, and the map is empty once every turn is over.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn turns_on_one_ticket_do_not_overlap_and_leave_nothing_behind() {
        let locks = Arc::new(TicketLocks::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let ticket = Uuid::new_v4();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (locks, inside, most) = (locks.clone(), inside.clone(), most.clone());
                tokio::spawn(async move {
                    let _turn = locks.turn(ticket).await;
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        let other = locks.turn(Uuid::new_v4()).await;
        drop(other);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
        assert_eq!(locks.len(), 0);
    }
}
