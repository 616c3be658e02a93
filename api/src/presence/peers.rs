//! Presence shared between the processes of one PostgreSQL database, over
//! `NOTIFY` ([`Broadcast`]) rather than a table: presence changes every few
//! seconds per agent and means nothing a minute later, so it stays out of the
//! database's tables (and out of the read models, which are all derived from
//! the log); each process keeps the whole board in memory and applies the
//! others' changes to it.
//!
//! A message is heard at most once. What a process may have missed (it just
//! started, or its listening connection was cut) it asks for with `hello`,
//! and every other process answers by publishing again the entries it set
//! itself. Anything still lost is set again by the client's next refresh,
//! or expires. A process that dies takes its sockets with it: its entries
//! expire elsewhere after the time to live.

use std::time::Instant;

use chrono::{DateTime, Utc};
use domain::UserProfile;
use serde::{Deserialize, Serialize};
use store::postgres::broadcast::{Broadcast, Heard};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::board::{Activity, Changed, Entry, Holder};
use super::Presence;

/// Messages waiting to be published, and heard messages waiting to be
/// applied.
const BUFFER: usize = 4096;

/// What processes tell each other; `from` is the sending process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub(super) enum Message {
    /// An entry set (or refreshed) in `from`.
    Set {
        from: Uuid,
        ticket: Uuid,
        user: UserProfile,
        activity: Activity,
        since: DateTime<Utc>,
        socket: Option<u64>,
    },
    /// `user` is no longer present on `ticket`.
    Remove {
        from: Uuid,
        ticket: Uuid,
        user: String,
    },
    /// `from` may have missed messages: publish your own entries again.
    Hello { from: Uuid },
}

impl Message {
    pub(super) fn set(from: Uuid, ticket: Uuid, entry: &Entry) -> Message {
        Message::Set {
            from,
            ticket,
            user: entry.user.clone(),
            activity: entry.activity,
            since: entry.since,
            socket: entry.holder.socket,
        }
    }
}

/// Starts publishing this process's changes and applying the others';
/// returns once listening, and after asking the others for their entries.
pub(super) async fn start(
    presence: Presence,
    peers: Broadcast,
    shutdown: CancellationToken,
) -> Result<(), store::StoreError> {
    let heard = peers.listen(BUFFER).await?;
    let (outbox, outgoing) = mpsc::channel(BUFFER);
    *presence
        .inner
        .outbox
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(outbox);
    tokio::spawn(publish(peers, outgoing, shutdown.clone()));
    tokio::spawn(apply(presence.clone(), heard, shutdown));
    presence.publish(Message::Hello {
        from: presence.inner.node,
    });
    Ok(())
}

async fn publish(
    peers: Broadcast,
    mut outgoing: mpsc::Receiver<Message>,
    shutdown: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => return,
            message = outgoing.recv() => match message {
                Some(message) => message,
                None => return,
            },
        };
        let text = match serde_json::to_string(&message) {
            Ok(text) => text,
            Err(e) => {
                tracing::error!(error = %e, "a presence message could not be serialised");
                continue;
            }
        };
        // Logged by `publish` itself; the others catch up at the next refresh.
        let _ = peers.publish(&text).await;
    }
}

async fn apply(presence: Presence, mut heard: mpsc::Receiver<Heard>, shutdown: CancellationToken) {
    let node = presence.inner.node;
    loop {
        let heard = tokio::select! {
            () = shutdown.cancelled() => return,
            heard = heard.recv() => match heard {
                Some(heard) => heard,
                None => return,
            },
        };
        let text = match heard {
            Heard::Message(text) => text,
            Heard::Reconnected => {
                presence.publish(Message::Hello { from: node });
                continue;
            }
        };
        let message: Message = match serde_json::from_str(&text) {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(error = %e, "an unreadable presence message was ignored");
                continue;
            }
        };
        match message {
            Message::Set { from, .. } | Message::Remove { from, .. } | Message::Hello { from }
                if from == node => {}
            Message::Set {
                from,
                ticket,
                user,
                activity,
                since,
                socket,
            } => {
                let ttl = presence.board().ttl();
                let entry = Entry {
                    user,
                    activity,
                    since,
                    holder: Holder {
                        origin: from,
                        socket,
                    },
                    expires: Instant::now() + ttl,
                };
                if presence.board().put(ticket, entry) == Changed::Shown {
                    presence.notify(ticket);
                }
            }
            Message::Remove { ticket, user, .. } => {
                if presence.board().remove(ticket, &user) {
                    presence.notify(ticket);
                }
            }
            Message::Hello { .. } => {
                let own = presence.board().set_in(node);
                for (ticket, entry) in own {
                    presence.publish(Message::set(node, ticket, &entry));
                }
            }
        }
    }
}
