//! A replay from the log rides out a store that is briefly unavailable (a
//! pool timeout on a busy machine): it tries the same page again after a
//! short wait instead of ending the client's stream with `Lagged`, and
//! gives up with `Lagged` only when the store stays away.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use projections::fanout::{Hub, HubConfig, Interest, Item, Predicate};
use store::{
    AppendResult, EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent, StoreError,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::harness::{Backend, Kind};
use crate::{create_ticket, event, next};

/// A store whose next `failures` reads of the whole log fail.
struct FlakyReads {
    inner: Arc<dyn EventStore>,
    failures: AtomicU32,
}

#[async_trait]
impl EventStore for FlakyReads {
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
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(StoreError::Unavailable("pool timed out".into()));
        }
        self.inner.read_all(after, max).await
    }

    async fn head(&self) -> Result<Position, StoreError> {
        self.inner.head().await
    }

    fn subscribe_all(
        &self,
        after: Position,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        self.inner.subscribe_all(after)
    }
}

/// Four tickets in the log, a hub that keeps only the last delivery in
/// memory (so replays from the start read the log), and the store.
async fn hub_past_four_tickets(
    backend: &Backend,
    shutdown: &CancellationToken,
) -> (Hub, Arc<FlakyReads>, Vec<Uuid>) {
    let mut tickets = Vec::new();
    for _ in 0..4 {
        tickets.push(create_ticket(&*backend.store, "alice", "billing").await);
    }
    let store = Arc::new(FlakyReads {
        inner: backend.store.clone(),
        failures: AtomicU32::new(0),
    });
    let config = HubConfig {
        recent: 1,
        ..HubConfig::default()
    };
    let hub = Hub::start(store.clone(), config, shutdown.clone())
        .await
        .unwrap();
    (hub, store, tickets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_tries_again_while_the_store_is_briefly_unavailable() {
    let backend = Backend::new(Kind::Sqlite).await;
    let shutdown = CancellationToken::new();
    let (hub, store, tickets) = hub_past_four_tickets(&backend, &shutdown).await;
    store.failures.store(2, Ordering::SeqCst);
    let all: Predicate = Arc::new(|_| true);
    let mut replaying = hub.subscribe(Interest::All, all, Some(Position::START));
    for ticket in &tickets {
        assert_eq!(event(next(&mut replaying).await).after.id, *ticket);
    }
    assert_eq!(
        store.failures.load(Ordering::SeqCst),
        0,
        "both failures were met"
    );
    // Nothing more: no `Lagged` waits behind the four.
    let more = tokio::time::timeout(Duration::from_millis(300), next(&mut replaying)).await;
    assert!(more.is_err(), "unexpected item after the replay: {more:?}");
    shutdown.cancel();
    backend.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_gives_up_with_lagged_when_the_store_stays_away() {
    let backend = Backend::new(Kind::Sqlite).await;
    let shutdown = CancellationToken::new();
    let (hub, store, _) = hub_past_four_tickets(&backend, &shutdown).await;
    store.failures.store(u32::MAX, Ordering::SeqCst);
    let all: Predicate = Arc::new(|_| true);
    let mut replaying = hub.subscribe(Interest::All, all, Some(Position::START));
    match tokio::time::timeout(
        Duration::from_secs(20),
        futures::StreamExt::next(&mut replaying),
    )
    .await
    {
        Ok(Some(Item::Lagged { position_reached })) => {
            assert_eq!(position_reached, Position::START)
        }
        other => panic!("expected Lagged at the start, got {other:?}"),
    }
    shutdown.cancel();
    backend.cleanup().await;
}
