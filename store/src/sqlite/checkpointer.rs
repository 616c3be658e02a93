//! Checkpoints off the append path.
//!
//! In WAL mode a commit appends pages to the WAL file; a checkpoint copies
//! them back into the database file and is the only moment, at
//! `synchronous = NORMAL`, that anything is flushed to disk (the WAL first,
//! then the database). SQLite's automatic checkpoint runs inside whichever
//! commit takes the WAL past 1,000 pages, so on the single writer connection
//! that append group would wait for a whole checkpoint and its two fsyncs,
//! and every append queued behind it would wait too: such waits would take
//! most of the writer's time and make its slowest appends.
//!
//! So the writer connection has automatic checkpoints off, and this task
//! runs a `PASSIVE` checkpoint on a connection of its own every
//! [`CHECKPOINT_EVERY`]. A passive checkpoint never blocks the writer nor
//! readers; it copies what is committed and not in use by a reader, and
//! does nothing (no fsync) when nothing was committed since the last one.
//! What a power loss can take is bounded in time, about one interval of
//! commits (longer only while a long read keeps the checkpoint from copying
//! anything), rather than up to 1,000 pages of commits however old they are
//! on a quiet server. A process crash loses nothing committed.

use std::time::Duration;

use sqlx::sqlite::SqlitePool;
use tokio::task::JoinHandle;

/// How often committed pages are checkpointed (and so made durable).
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Starts the checkpoint task on `pool` (one connection to the store's file).
pub(super) fn start(pool: SqlitePool) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CHECKPOINT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            every.tick().await;
            // (busy, pages in the WAL, pages checkpointed)
            let done: Result<(i64, i64, i64), _> = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&pool)
                .await;
            match done {
                Ok(_) if failing => {
                    tracing::info!("checkpoints of the SQLite store work again");
                    failing = false;
                }
                Ok(_) => {}
                Err(e) if !failing => {
                    tracing::warn!(error = %e, "checkpoint of the SQLite store failed; retrying");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    })
}
