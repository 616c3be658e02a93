//! A server whose log does not answer at start still starts: its hub learns
//! the head later, and subscriptions opened meanwhile begin at that head
//! (live) or replay from their `after`, as they would have.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use projections::fanout::{Hub, HubConfig, Interest, Predicate};
use store::{
    AppendResult, EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent, StoreError,
};
use tokio_util::sync::CancellationToken;

use crate::harness::{Backend, Kind};
use crate::{create_ticket, event, next};

/// A store whose `head` fails until `reachable` is set.
struct LateHead {
    inner: Arc<dyn EventStore>,
    reachable: AtomicBool,
}

#[async_trait]
impl EventStore for LateHead {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.inner.append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, from_version, max).await
    }

    async fn read_all(
        &self,
        after: Position,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(after, max).await
    }

    async fn head(&self) -> Result<Position, StoreError> {
        if self.reachable.load(Ordering::SeqCst) {
            self.inner.head().await
        } else {
            Err(StoreError::Unavailable("not yet".into()))
        }
    }

    fn subscribe_all(
        &self,
        after: Position,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        self.inner.subscribe_all(after)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_started_before_the_log_answers_begins_at_its_head() {
    let backend = Backend::new(Kind::Sqlite).await;
    let earlier = create_ticket(&*backend.store, "alice", "billing").await;
    let store = Arc::new(LateHead {
        inner: backend.store.clone(),
        reachable: AtomicBool::new(false),
    });
    let shutdown = CancellationToken::new();
    let hub = Hub::start(store.clone(), HubConfig::default(), shutdown.clone())
        .await
        .expect("the hub starts without the head");
    let all: Predicate = Arc::new(|_| true);
    let mut live = hub.subscribe(Interest::All, all.clone(), None);
    let mut replaying = hub.subscribe(Interest::All, all, Some(Position::START));

    store.reachable.store(true, Ordering::SeqCst);
    let head = backend.store.head().await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        while hub.position() < head {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the hub learns the head once the log answers");
    let later = create_ticket(&*backend.store, "alice", "billing").await;
    // The hub dispatches the later ticket before `live` is first polled: a
    // stream opened while the head was unknown must still begin at the head
    // the hub began at, not wherever the hub is when it is first polled.
    let end = backend.store.head().await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        while hub.position() < end {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the hub dispatches the later ticket");

    // Live from the head: the later ticket, not the earlier one.
    assert_eq!(event(next(&mut live).await).after.id, later);
    // From the start: both, in order.
    assert_eq!(event(next(&mut replaying).await).after.id, earlier);
    assert_eq!(event(next(&mut replaying).await).after.id, later);
    shutdown.cancel();
}
