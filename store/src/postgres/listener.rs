//! The one `LISTEN` connection of a PostgreSQL store, turned into wake-ups.
//!
//! Notifications sent while no connection is listening are gone for good, so
//! whenever the listener (re)connects it wakes every subscriber: they re-read, and
//! the read catches whatever committed while nobody was listening. Reconnects back
//! off exponentially so a database restart is not met with a connection storm.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::StoreError;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Starts listening on `channel`; returns once the first `LISTEN` is in place,
/// so that no commit after `start` returns can go unheard.
pub(super) async fn start(
    pool: PgPool,
    channel: String,
    wake: Arc<watch::Sender<u64>>,
) -> Result<JoinHandle<()>, StoreError> {
    let listener = listen(&pool, &channel).await?;
    Ok(tokio::spawn(forward(pool, channel, listener, wake)))
}

async fn listen(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
}

/// Any change of the value wakes the subscribers; the value itself means nothing.
fn wake_all(wake: &watch::Sender<u64>) {
    wake.send_modify(|n| *n = n.wrapping_add(1));
}

async fn forward(
    pool: PgPool,
    channel: String,
    mut listener: PgListener,
    wake: Arc<watch::Sender<u64>>,
) {
    loop {
        match listener.try_recv().await {
            Ok(Some(_notification)) => wake_all(&wake),
            // The connection dropped and `try_recv` re-established it: whatever
            // was notified in between is lost.
            Ok(None) => {
                tracing::warn!(%channel, "event notification connection was re-established");
                wake_all(&wake);
            }
            Err(error) => {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(%channel, %error, "event notifications lost; reconnecting");
                match reconnect(&pool, &channel).await {
                    Some(fresh) => listener = fresh,
                    None => return,
                }
                wake_all(&wake);
            }
        }
    }
}

/// A new listener, or `None` once the store's pool is closed.
async fn reconnect(pool: &PgPool, channel: &str) -> Option<PgListener> {
    let mut backoff = FIRST_BACKOFF;
    loop {
        tokio::time::sleep(backoff).await;
        if pool.is_closed() {
            return None;
        }
        match listen(pool, channel).await {
            Ok(listener) => return Some(listener),
            Err(error) => {
                tracing::warn!(%channel, %error, ?backoff, "reconnecting the event listener failed");
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
