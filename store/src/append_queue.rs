//! The queue in front of a SQL backend's single append writer: a caller sends
//! its append and waits for the answer; the writer task takes everything that
//! has queued (up to a group size) and writes it as one group.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::append;
use crate::{AppendResult, ExpectedVersion, NewEvent, StoreError};

/// Appends waiting for the writer; callers wait when it is full.
const QUEUE: usize = 1024;

/// One caller's append, and where its answer goes.
pub(crate) struct AppendRequest {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    pub reply: oneshot::Sender<Result<AppendResult, StoreError>>,
}

/// The callers' side of the queue.
#[derive(Clone)]
pub(crate) struct Appends(mpsc::Sender<AppendRequest>);

impl Appends {
    /// Validates the append, queues it and waits for the writer's answer.
    pub(crate) async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        append::validate(stream, &events)?;
        let (reply, answer) = oneshot::channel();
        let request = AppendRequest {
            stream: stream.to_string(),
            expected,
            events,
            reply,
        };
        let stopped = || StoreError::Unavailable("the store's append writer has stopped".into());
        self.0.send(request).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Starts the writer task: `write` gets each group of at most `max_group`
/// queued appends and answers every one of them.
///
/// Before cutting a group the writer steps aside (one `yield_now`) for as
/// long as that brings more appends. Callers whose last append was just
/// answered are runnable then but have not queued yet: tokio runs the writer,
/// woken by the first of them, before the rest, so without this the groups
/// come out about half as large as the number of callers, and each group
/// pays a commit (and on PostgreSQL the lock's hand-over and round trips).
/// Each step aside costs the writer one trip through the run queue, nothing
/// when nobody else is runnable.
pub(crate) fn start<F, Fut>(max_group: usize, mut write: F) -> (Appends, JoinHandle<()>)
where
    F: FnMut(Vec<AppendRequest>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let (sender, mut requests) = mpsc::channel::<AppendRequest>(QUEUE);
    let task = tokio::spawn(async move {
        let mut group = Vec::with_capacity(max_group);
        while requests.recv_many(&mut group, max_group).await > 0 {
            while group.len() < max_group {
                tokio::task::yield_now().await;
                let before = group.len();
                while group.len() < max_group {
                    match requests.try_recv() {
                        Ok(request) => group.push(request),
                        Err(_) => break,
                    }
                }
                if group.len() == before {
                    break;
                }
            }
            write(std::mem::take(&mut group)).await;
        }
    });
    (Appends(sender), task)
}
