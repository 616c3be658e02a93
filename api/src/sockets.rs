//! [`Sockets`]: what the server knows about its WebSockets as a whole — how
//! many each user holds (for the per-user limit) and how many are open (so
//! shutdown can wait for their close frames to go out).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// Shared by every socket of one server. A std mutex is enough for the
/// per-user counts: it is held for one map update, never across an await.
#[derive(Debug, Default)]
pub struct Sockets {
    per_user: Mutex<HashMap<String, u32>>,
    open: AtomicUsize,
    none_open: Notify,
}

/// One open socket; counted until dropped.
#[derive(Debug)]
pub(crate) struct OpenSocket(Arc<Sockets>);

/// One of a user's sockets under the per-user limit; given back on drop.
#[derive(Debug)]
pub(crate) struct UserSlot {
    sockets: Arc<Sockets>,
    user: Box<str>,
}

impl Sockets {
    pub fn new() -> Arc<Sockets> {
        Arc::default()
    }

    /// Counts a socket as open until the guard is dropped.
    pub(crate) fn open(self: &Arc<Self>) -> OpenSocket {
        self.open.fetch_add(1, Ordering::SeqCst);
        OpenSocket(self.clone())
    }

    /// A slot for one more socket of `user`, or `None` when they already hold
    /// `limit`.
    pub(crate) fn claim(self: &Arc<Self>, user: &str, limit: u32) -> Option<UserSlot> {
        let mut per_user = self.per_user.lock().unwrap_or_else(PoisonError::into_inner);
        let held = per_user.entry(user.to_string()).or_insert(0);
        if *held >= limit {
            return None;
        }
        *held += 1;
        Some(UserSlot {
            sockets: self.clone(),
            user: user.into(),
        })
    }

    /// How many sockets are open now.
    pub fn open_count(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Resolves once no socket is open (at once if none is).
    pub async fn all_closed(&self) {
        loop {
            let notified = self.none_open.notified();
            tokio::pin!(notified);
            // Registered before the check, so a close in between still wakes us.
            notified.as_mut().enable();
            if self.open_count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.none_open.notify_waiters();
        }
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut per_user = self
            .sockets
            .per_user
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = per_user.get_mut(&*self.user) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                per_user.remove(&*self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user gets at most `limit` slots; giving one back makes room again,
    /// and other users are not affected.
    #[test]
    fn a_user_holds_at_most_the_limit_of_sockets() {
        let sockets = Sockets::new();
        let a = sockets.claim("sam", 2).expect("first");
        let _b = sockets.claim("sam", 2).expect("second");
        assert!(sockets.claim("sam", 2).is_none());
        assert!(sockets.claim("kim", 2).is_some());
        drop(a);
        assert!(sockets.claim("sam", 2).is_some());
    }

    /// Waiting for all sockets to close ends when the last one is dropped.
    #[tokio::test]
    async fn all_closed_waits_for_the_last_socket() {
        let sockets = Sockets::new();
        sockets.all_closed().await;
        let first = sockets.open();
        let second = sockets.open();
        let waiter = {
            let sockets = sockets.clone();
            tokio::spawn(async move { sockets.all_closed().await })
        };
        drop(first);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(second);
        waiter.await.expect("the waiter ends");
        assert_eq!(sockets.open_count(), 0);
    }
}
