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
pub(crate) fn start<F, Fut>(max_group: usize, mut write: F) -> (Appends, JoinHandle<()>)
where
    F: FnMut(Vec<AppendRequest>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let (sender, mut requests) = mpsc::channel::<AppendRequest>(QUEUE);
    let task = tokio::spawn(async move {
        let mut group = Vec::with_capacity(max_group);
        while requests.recv_many(&mut group, max_group).await > 0 {
            write(std::mem::take(&mut group)).await;
        }
    });
    (Appends(sender), task)
}
