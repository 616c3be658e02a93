//! A server whose log does not answer at start still starts: its hub learns
//! the head later, and subscriptions opened meanwhile begin at that head
//! (live) or replay from their `after`, as they would have.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use fanout::{Hub, HubConfig, Interest, Predicate};
use store::Position;
use tokio_util::sync::CancellationToken;

use crate::faulty::Faulty;
use crate::harness::{Backend, Kind};
use crate::{create_ticket, event, next};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_started_before_the_log_answers_begins_at_its_head() {
    let backend = Backend::new(Kind::Sqlite).await;
    let earlier = create_ticket(&*backend.store, "alice", "billing").await;
    let store = Arc::new(Faulty::new(backend.store.clone()));
    store.head_down.store(true, Ordering::SeqCst);
    let shutdown = CancellationToken::new();
    let hub = Hub::start(store.clone(), HubConfig::default(), shutdown.clone())
        .await
        .expect("the hub starts without the head");
    let all: Predicate = Arc::new(|_| true);
    let mut live = hub.subscribe(Interest::All, all.clone(), None);
    let mut replaying = hub.subscribe(Interest::All, all, Some(Position::START));

    store.head_down.store(false, Ordering::SeqCst);
    let head = backend.store.head().await.unwrap();
    reached(&hub, head, "the hub learns the head once the log answers").await;
    let later = create_ticket(&*backend.store, "alice", "billing").await;
    // The hub dispatches the later ticket before `live` is first polled: a
    // stream opened while the head was unknown must still begin at the head
    // the hub began at, not wherever the hub is when it is first polled.
    let end = backend.store.head().await.unwrap();
    reached(&hub, end, "the hub dispatches the later ticket").await;

    // Live from the head: the later ticket, not the earlier one.
    assert_eq!(event(next(&mut live).await).after.id, later);
    // From the start: both, in order.
    assert_eq!(event(next(&mut replaying).await).after.id, earlier);
    assert_eq!(event(next(&mut replaying).await).after.id, later);
    shutdown.cancel();
}

/// Waits (at most 20 s, else fails with `what`) until `hub` is at `position`.
async fn reached(hub: &Hub, position: Position, what: &str) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while hub.position() < position {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect(what);
}
