//! The catch-up subscription shared by the SQL backends.
//!
//! A subscription is a loop over the store's own `read_all`: read a batch after
//! the last position yielded, yield it, and when a read comes back short (the
//! reader has caught up) wait for a wake-up before reading again. There is no
//! separate "live" path, so the seam between replay and live cannot duplicate or
//! drop an event: every event comes from the same ordered read, filtered to be
//! strictly after the last one yielded.
//!
//! Wake-ups are a [`tokio::sync::watch`] channel that the backend bumps after every
//! commit it learns of (its own appends on SQLite; `NOTIFY`s on PostgreSQL). The
//! subscription takes its receiver when it is *created*, before its first read, so
//! an append that commits after a read began always finds the receiver already
//! there and marks it changed: no wake-up is lost between "read came back short"
//! and "start waiting". A watch coalesces bursts (a thousand appends cost one
//! extra read, not a thousand), and a wake-up is only a hint to read again, so a
//! spurious one is harmless.
//!
//! Backends that cannot hear every writer (SQLite, where another process may
//! append to the same file) pass a `fallback` interval: the subscription re-reads
//! at least that often while idle.

use std::collections::VecDeque;
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::watch;

use crate::{EventStore, Position, RecordedEvent, StoreError};

/// Events fetched per read: large enough that replaying a long log is a few
/// hundred queries, small enough that one batch is a modest amount of memory.
pub const BATCH: usize = 500;

/// A catch-up subscription over `store`, strictly after `after`.
///
/// `wake` must have been taken from the backend's wake-up channel no later than
/// now (see the module docs). The stream ends only after yielding an error.
pub fn catch_up<S>(
    store: S,
    after: Position,
    wake: watch::Receiver<u64>,
    fallback: Option<Duration>,
) -> BoxStream<'static, Result<RecordedEvent, StoreError>>
where
    S: EventStore + Clone,
{
    let state = CatchUp {
        store,
        last: after,
        buffered: VecDeque::new(),
        caught_up: false,
        finished: false,
        wake,
        fallback,
    };
    stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    })
    .boxed()
}

struct CatchUp<S> {
    store: S,
    /// The last position yielded (or the subscription's start).
    last: Position,
    buffered: VecDeque<RecordedEvent>,
    /// The last read came back short: wait for a wake-up before the next one.
    caught_up: bool,
    /// An error was yielded: the stream is over.
    finished: bool,
    wake: watch::Receiver<u64>,
    fallback: Option<Duration>,
}

impl<S: EventStore> CatchUp<S> {
    async fn next(&mut self) -> Option<Result<RecordedEvent, StoreError>> {
        loop {
            if self.finished {
                return None;
            }
            if let Some(event) = self.buffered.pop_front() {
                self.last = event.position;
                return Some(Ok(event));
            }
            if self.caught_up {
                if let Err(e) = self.wait_for_wake_up().await {
                    return Some(Err(self.fail(e)));
                }
            }
            match self.store.read_all(self.last, BATCH).await {
                Ok(events) => {
                    self.caught_up = events.len() < BATCH;
                    let last = self.last;
                    // `read_all` is ordered and strictly after `last`; the filter
                    // keeps "each event once, in increasing order" true even if a
                    // backend ever returned an overlapping page.
                    self.buffered
                        .extend(events.into_iter().filter(|e| e.position > last));
                }
                Err(e) => return Some(Err(self.fail(e))),
            }
        }
    }

    async fn wait_for_wake_up(&mut self) -> Result<(), StoreError> {
        let changed = self.wake.changed();
        let outcome = match self.fallback {
            Some(every) => match tokio::time::timeout(every, changed).await {
                Ok(outcome) => outcome,
                // Nothing heard: re-read anyway, for writers we cannot hear.
                Err(_elapsed) => Ok(()),
            },
            None => changed.await,
        };
        outcome.map_err(|_| StoreError::Unavailable("the event store was shut down".into()))
    }

    fn fail(&mut self, e: StoreError) -> StoreError {
        self.finished = true;
        tracing::warn!(error = %e, after = %self.last, "subscription ends on an error");
        e
    }
}
