//! Telling the live side what a projection changed, once it is committed.
//!
//! A handler runs inside its batch's transaction and cannot know when (or
//! whether) the batch commits. So it *stages* each message with the log
//! position of its event, and a release task hands messages on to a
//! `tokio::sync::broadcast` channel only once the projection's checkpoint has
//! reached that position: a subscriber that reads the read model on a
//! message always finds the change.
//!
//! Delivery is at least once: a batch that is retried after a failure stages
//! its messages again. Messages carry ids or positions to de-duplicate by.
//! Nothing is staged while nobody subscribes, so a rebuild without a server
//! costs nothing here.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::checkpoint;
use crate::db::ReadDb;
use store::Position;

/// How often the release task looks at the checkpoint while holding messages.
const POLL: Duration = Duration::from_millis(20);

/// Staged messages with the log position of their event.
type Staged<T> = mpsc::UnboundedReceiver<(Position, T)>;

/// Staging and release of one projection's messages. Cheap to clone.
#[derive(Clone)]
pub struct CommitGate<T> {
    staged: mpsc::UnboundedSender<(Position, T)>,
    inbox: Arc<Mutex<Option<Staged<T>>>>,
    published: broadcast::Sender<T>,
}

impl<T: Clone + Send + 'static> CommitGate<T> {
    /// A gate whose subscribers may lag `capacity` messages before they are
    /// told they lagged (`RecvError::Lagged`) and should re-read.
    pub fn new(capacity: usize) -> CommitGate<T> {
        let (staged, inbox) = mpsc::unbounded_channel();
        CommitGate {
            staged,
            inbox: Arc::new(Mutex::new(Some(inbox))),
            published: broadcast::channel(capacity.max(1)).0,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<T> {
        self.published.subscribe()
    }

    /// Stages a message of the event at `position` (dropped if nobody listens).
    pub(crate) fn stage(&self, position: Position, message: T) {
        if self.published.receiver_count() > 0 {
            let _ = self.staged.send((position, message));
        }
    }

    /// Publishes at once, for changes committed outside the runner.
    pub(crate) fn publish(&self, message: T) {
        let _ = self.published.send(message);
    }

    /// Starts the release task for the projection `name` in `db`, until
    /// `shutdown`. Only the first call starts one; later calls return a task
    /// that ends at once.
    pub fn spawn_release(
        &self,
        db: ReadDb,
        name: &'static str,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        let inbox = self.inbox.lock().map(|mut i| i.take()).unwrap_or(None);
        let published = self.published.clone();
        tokio::spawn(async move {
            let Some(inbox) = inbox else { return };
            release(inbox, published, db, name, shutdown).await
        })
    }
}

async fn release<T: Clone>(
    mut inbox: Staged<T>,
    published: broadcast::Sender<T>,
    db: ReadDb,
    name: &'static str,
    shutdown: CancellationToken,
) {
    let mut held: VecDeque<(Position, T)> = VecDeque::new();
    loop {
        if held.is_empty() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                message = inbox.recv() => match message {
                    Some(message) => held.push_back(message),
                    None => return,
                },
            }
        }
        while let Ok(message) = inbox.try_recv() {
            held.push_back(message);
        }
        match checkpoint::read(&db, name).await {
            Ok(committed) => {
                // Positions only grow, except when a retried batch stages
                // again: release everything at or before the checkpoint.
                let (ready, waiting): (VecDeque<_>, VecDeque<_>) = held
                    .drain(..)
                    .partition(|(position, _)| *position <= committed);
                held = waiting;
                for (_, message) in ready {
                    let _ = published.send(message);
                }
            }
            Err(e) => tracing::warn!(projection = name, error = %e, "cannot read the checkpoint"),
        }
        if !held.is_empty() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}
