//! [`Broadcast`]: short messages between the processes that share one store
//! (one schema), over `NOTIFY` on a channel of their own: what a process
//! publishes, every process listening on the topic hears, itself included.
//!
//! Delivery is at most once: a message sent while a listener's connection is
//! down is lost, and the listener says so with [`Heard::Reconnected`], so its
//! owner can ask the others to say again what it may have missed. Nothing is
//! stored: this is for state that lives in the processes' memory (presence),
//! never for anything the log must keep.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::mpsc;

use crate::StoreError;

/// Longest message PostgreSQL's `NOTIFY` carries, in bytes (its limit is
/// 8000, minus room for the channel name).
pub const MAX_MESSAGE_BYTES: usize = 7900;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What a listener hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A message some process published on the topic.
    Message(String),
    /// The listening connection was lost and is back: messages sent in
    /// between are gone.
    Reconnected,
}

/// Publishes on one topic of one store. Cheap to clone.
#[derive(Clone)]
pub struct Broadcast {
    pool: PgPool,
    channel: String,
}

impl Broadcast {
    /// The topic `topic` of the store whose `schema` and `pool` are given;
    /// the channel is `<topic>_<schema>`, which must fit PostgreSQL's
    /// identifier length (63 bytes).
    pub(super) fn new(pool: PgPool, topic: &str, schema: &str) -> Result<Broadcast, StoreError> {
        let channel = format!("{topic}_{schema}");
        if channel.len() > 63 {
            return Err(StoreError::Invalid(format!(
                "channel {channel:?} is longer than 63 bytes"
            )));
        }
        Ok(Broadcast { pool, channel })
    }

    /// Sends `message` to every listener of the topic (on commit of its own
    /// one-statement transaction).
    #[tracing::instrument(name = "broadcast", skip_all, fields(channel = %self.channel), err)]
    pub async fn publish(&self, message: &str) -> Result<(), StoreError> {
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(StoreError::Invalid(format!(
                "a broadcast message is at most {MAX_MESSAGE_BYTES} bytes"
            )));
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&self.channel)
            .bind(message)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Starts listening: returns once `LISTEN` is in place, so every message
    /// published afterwards is heard. The listening task ends when the
    /// receiver is dropped or the store's pool is closed; up to `buffer`
    /// messages wait for the receiver, further ones are dropped (and logged).
    pub async fn listen(&self, buffer: usize) -> Result<mpsc::Receiver<Heard>, StoreError> {
        let listener = listen(&self.pool, &self.channel).await?;
        let (tx, rx) = mpsc::channel(buffer.max(1));
        tokio::spawn(forward(
            self.pool.clone(),
            self.channel.clone(),
            listener,
            tx,
        ));
        Ok(rx)
    }
}

async fn listen(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
}

async fn forward(pool: PgPool, channel: String, mut listener: PgListener, tx: mpsc::Sender<Heard>) {
    loop {
        let heard = tokio::select! {
            () = tx.closed() => return,
            received = listener.try_recv() => received,
        };
        let heard = match heard {
            Ok(Some(notification)) => Heard::Message(notification.payload().to_string()),
            // `try_recv` re-established the connection: what was sent in
            // between is lost.
            Ok(None) => Heard::Reconnected,
            Err(error) => {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(%channel, %error, "broadcast listener lost; reconnecting");
                match reconnect(&pool, &channel, &tx).await {
                    Some(fresh) => listener = fresh,
                    None => return,
                }
                Heard::Reconnected
            }
        };
        match tx.try_send(heard) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(%channel, "broadcast receiver is full; a message was dropped")
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

/// A new listener, or `None` once the pool is closed or nobody receives.
async fn reconnect(pool: &PgPool, channel: &str, tx: &mpsc::Sender<Heard>) -> Option<PgListener> {
    let mut backoff = FIRST_BACKOFF;
    loop {
        tokio::time::sleep(backoff).await;
        if pool.is_closed() || tx.is_closed() {
            return None;
        }
        match listen(pool, channel).await {
            Ok(listener) => return Some(listener),
            Err(error) => {
                tracing::warn!(%channel, %error, ?backoff, "reconnecting the broadcast listener failed");
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
