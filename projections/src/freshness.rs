//! Read-your-writes, across nodes: before a query of a read model,
//! [`wait_for_log_head`] waits (at most a configured time) for that
//! projection to reach the head of the log as it stood when the query began.
//! A write acknowledged by any node is in the log before its response leaves,
//! so a client that writes through node B and then reads through node A sees
//! its write, with no token to carry between requests and no sticky sessions.
//! The price is one cheap `store.head()` per query (`MAX(position)` on the SQL
//! stores), and on a busy log a wait of about one projection batch.

use std::time::Duration;

use store::{EventStore, Position};
use tokio::time::Instant;

use crate::checkpoint::ProjectionState;
use crate::db::ReadDb;

/// How a [`wait_for_log_head`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// The projection holds every event up to the target.
    Reached,
    /// The time ran out first: the query answers from the model as it stands.
    TimedOut,
    /// The projection is stopped on a poison event: waiting would not help.
    Stopped,
    /// Its checkpoint could not be read: the query itself will tell.
    Unknown,
}

/// Waits, at most `timeout`, until `projection` has applied the log up to its
/// head as of now, and at least up to `own_write` (the caller's last write in
/// this process, in case the head cannot be read). Never an error: a read model
/// that does not catch up in time is answered as it stands.
#[tracing::instrument(name = "wait for the read model", skip(store, db), ret)]
pub async fn wait_for_log_head(
    store: &dyn EventStore,
    db: &ReadDb,
    projection: &str,
    own_write: Option<Position>,
    timeout: Duration,
) -> Freshness {
    let deadline = Instant::now() + timeout;
    let head = match store.head().await {
        Ok(head) => Some(head),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the head of the log");
            None
        }
    };
    let Some(target) = head.max(own_write) else {
        return Freshness::Unknown;
    };
    if target == Position::START {
        return Freshness::Reached;
    }
    // Short pauses first: on an idle node one batch is a few milliseconds.
    let mut pause = Duration::from_millis(2);
    loop {
        let status = match crate::status(db).await {
            Ok(all) => all.into_iter().find(|s| s.name == projection),
            Err(_) => return Freshness::Unknown,
        };
        match status {
            Some(s) if s.state == ProjectionState::Failed => return Freshness::Stopped,
            Some(s) if s.position >= target => return Freshness::Reached,
            _ => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Freshness::TimedOut;
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}
