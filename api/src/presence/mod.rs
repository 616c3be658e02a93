//! Presence: who is viewing or typing on a ticket ("Ada is viewing", "Bob is
//! typing a reply"), for `setTicketPresence`, `ticketPresence` and
//! `ticketPresenceChanged`.
//!
//! Presence is ephemeral: it lives in each process's memory ([`Board`]),
//! never in the event log or a table. An entry ends
//! - on `LEFT`, at once;
//! - when the WebSocket it was set over closes, however it closes (a close
//!   frame, a dropped connection, a token expiry, shutdown): the socket's
//!   [`SocketPresence`] guard is dropped with its session. "Its socket" is
//!   the one that carried the `setTicketPresence` mutation (graphql-ws lets
//!   a client send mutations over the socket), not a socket that merely
//!   subscribes;
//! - `--presence-ttl-ms` (30 s) after its last refresh, whatever carried it.
//!   A mutation over plain HTTP has no socket, so only this expiry applies;
//!   a client refreshes every few seconds while the user is on the ticket,
//!   over either transport.
//!
//! One entry per user and ticket: the last `setTicketPresence` of that user
//! decides its activity and which socket holds it (a user with two tabs on a
//! ticket shows once; closing the tab that set it last removes the entry
//! until the other tab's next refresh).
//!
//! Several processes on one PostgreSQL database share presence through
//! `peers`: each change is published with `NOTIFY` and applied by every
//! other process to its own board; each process expires entries by its own
//! clock. On SQLite there is one process and no peers.
//!
//! - `board`: the entries, the caps, expiry and release (no clock, no I/O).
//! - `peers`: the messages between processes and the tasks that relay them.

mod board;
mod peers;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use domain::UserProfile;
use store::postgres::broadcast::Broadcast;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use board::{Activity, Entry, Full};
use board::{Board, Bounds, Changed, Holder};
use peers::Message;

use crate::settings::PresenceSettings;

/// Changes waiting for a slow subscriber; one that falls further behind
/// re-reads the list, which loses nothing (each push is the whole list).
const CHANGES_BUFFER: usize = 1024;

/// The presence of this process. Cheap to clone.
#[derive(Clone)]
pub struct Presence {
    inner: Arc<Inner>,
}

struct Inner {
    /// This process, as its peers know it.
    node: Uuid,
    board: Mutex<Board>,
    /// The ticket whose list changed, for `ticketPresenceChanged`.
    changed: broadcast::Sender<Uuid>,
    /// Messages for the other processes (none on SQLite).
    outbox: Mutex<Option<mpsc::Sender<Message>>>,
    next_socket: AtomicU64,
}

/// The WebSocket an operation came over, in its request's data: presence it
/// sets ends with that socket.
#[derive(Debug, Clone, Copy)]
pub struct SocketId(u64);

/// One WebSocket's hold on the presence it set: dropped with the socket's
/// session, it removes every entry set over that socket.
pub struct SocketPresence {
    presence: Presence,
    id: SocketId,
}

impl SocketPresence {
    pub fn id(&self) -> SocketId {
        self.id
    }
}

impl Drop for SocketPresence {
    fn drop(&mut self) {
        self.presence.release(self.id);
    }
}

impl Presence {
    pub fn new(settings: &PresenceSettings) -> Presence {
        let bounds = Bounds {
            ttl: Duration::from_millis(settings.presence_ttl_ms),
            max_per_ticket: settings.presence_max_per_ticket,
            max_per_user: settings.presence_max_per_user,
        };
        Presence {
            inner: Arc::new(Inner {
                node: Uuid::new_v4(),
                board: Mutex::new(Board::new(bounds)),
                changed: broadcast::channel(CHANGES_BUFFER).0,
                outbox: Mutex::new(None),
                next_socket: AtomicU64::new(1),
            }),
        }
    }

    /// Starts expiring entries, and, with `peers`, sharing them with the
    /// other processes of the same PostgreSQL database. Until `shutdown`.
    pub async fn start(
        &self,
        peers: Option<Broadcast>,
        shutdown: CancellationToken,
    ) -> Result<(), store::StoreError> {
        tokio::spawn(self.clone().sweep(shutdown.clone()));
        if let Some(peers) = peers {
            peers::start(self.clone(), peers, shutdown).await?;
        }
        Ok(())
    }

    fn board(&self) -> MutexGuard<'_, Board> {
        self.inner
            .board
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A socket's hold on what it sets; see [`SocketPresence`].
    pub fn socket(&self) -> SocketPresence {
        SocketPresence {
            presence: self.clone(),
            id: SocketId(self.inner.next_socket.fetch_add(1, Ordering::Relaxed)),
        }
    }

    /// The changes: ids of tickets whose list changed.
    pub fn changes(&self) -> broadcast::Receiver<Uuid> {
        self.inner.changed.subscribe()
    }

    /// The entries of `ticket`, longest present first.
    pub fn list(&self, ticket: Uuid) -> Vec<Entry> {
        self.board().list(ticket)
    }

    /// `user` is doing `activity` on `ticket` (`None`: they left), set over
    /// `socket` when it came over a WebSocket.
    pub fn set(
        &self,
        ticket: Uuid,
        user: UserProfile,
        activity: Option<Activity>,
        socket: Option<SocketId>,
    ) -> Result<(), Full> {
        let Some(activity) = activity else {
            let removed = self.board().remove(ticket, &user.id);
            if removed {
                self.notify(ticket);
            }
            self.publish(Message::Remove {
                from: self.inner.node,
                ticket,
                user: user.id,
            });
            return Ok(());
        };
        let holder = Holder {
            origin: self.inner.node,
            socket: socket.map(|s| s.0),
        };
        let (entry, changed) =
            self.board()
                .set(ticket, user, activity, holder, Utc::now(), Instant::now())?;
        if changed == Changed::Shown {
            self.notify(ticket);
        }
        self.publish(Message::set(self.inner.node, ticket, &entry));
        Ok(())
    }

    /// Removes what `socket` set (it closed).
    fn release(&self, socket: SocketId) {
        let holder = Holder {
            origin: self.inner.node,
            socket: Some(socket.0),
        };
        let removed = self.board().release(holder);
        for (ticket, user) in removed {
            tracing::debug!(%ticket, %user, "presence ended with its socket");
            self.notify(ticket);
            self.publish(Message::Remove {
                from: self.inner.node,
                ticket,
                user,
            });
        }
    }

    fn notify(&self, ticket: Uuid) {
        // No receiver is not an error: nobody is subscribed.
        let _ = self.inner.changed.send(ticket);
    }

    /// Sends `message` to the other processes, if there are any. A full
    /// outbox drops it: the others then catch up at the next refresh, or
    /// expire the entry.
    fn publish(&self, message: Message) {
        let outbox = self
            .inner
            .outbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(outbox) = outbox.as_ref() {
            if outbox.try_send(message).is_err() {
                tracing::warn!("presence outbox is full; a change was not shared");
            }
        }
    }

    /// Removes expired entries until `shutdown`, checking a few times per
    /// lifetime (at most every second).
    async fn sweep(self, shutdown: CancellationToken) {
        let ttl = self.board().ttl();
        let every = (ttl / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let expired = self.board().expire(Instant::now());
            let mut tickets: Vec<Uuid> = expired.into_iter().map(|(t, _)| t).collect();
            tickets.sort_unstable();
            tickets.dedup();
            for ticket in tickets {
                tracing::debug!(%ticket, "presence expired");
                self.notify(ticket);
            }
        }
    }
}
