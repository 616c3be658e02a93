//! The queue in front of a SQL backend's single append writer: a caller sends
//! its append and waits for the answer; the writer task takes everything that
//! has queued (up to a group size) and writes it as one group.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::append;
use crate::append::AppendRequest;
use crate::{AppendResult, ExpectedVersion, NewEvent, StoreError};

/// Appends waiting for the writer; callers wait when it is full.
const QUEUE: usize = 1024;

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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::append::tests::event;
    use crate::{AppendResult, Position};

    /// Sixteen callers, each appending again as soon as it is answered, on
    /// a multi-threaded runtime (whose LIFO slot runs the writer right after
    /// the first caller wakes it): the writer's groups take nearly all of
    /// them, not the first one or two that queued.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_writer_gathers_every_ready_caller_into_its_group() {
        const CALLERS: usize = 16;
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let (appends, _writer) = start(64, move |group: Vec<AppendRequest>| {
            seen.lock().unwrap().push(group.len());
            async move {
                // The database's work, during which nobody can queue.
                tokio::time::sleep(Duration::from_millis(1)).await;
                for request in group {
                    let _ = request.reply.send(Ok(AppendResult {
                        last_version: 0,
                        first_position: Position::START,
                        last_position: Position::START,
                        events: vec![],
                    }));
                }
            }
        });
        let callers: Vec<_> = (0..CALLERS)
            .map(|i| {
                let appends = appends.clone();
                tokio::spawn(async move {
                    for _ in 0..20 {
                        let stream = format!("caller-{i}");
                        appends
                            .append(&stream, ExpectedVersion::Any, vec![event()])
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for caller in callers {
            caller.await.unwrap();
        }
        let sizes = sizes.lock().unwrap().clone();
        let total: usize = sizes.iter().sum();
        assert_eq!(total, CALLERS * 20);
        // 20 rounds of 16; a round split in two costs one group more.
        assert!(
            sizes.len() <= 24,
            "{} groups for {total} appends: {sizes:?}",
            sizes.len()
        );
    }
}
