use std::sync::Arc;

use fanout::{Hub, HubConfig, Interest, Item, Predicate};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::harness::{Backend, Kind};
use crate::{create_ticket, event, next};

/// A subscriber that stops reading is dropped once its buffer is full: it
/// drains what was buffered, then gets `Lagged` with the position of the last
/// event it received, and resuming from there with `after` gives the rest.
/// A subscriber that keeps reading receives every event meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_is_dropped_with_its_position_and_can_resume() {
    let backend = Backend::new(Kind::Sqlite).await;
    let shutdown = CancellationToken::new();
    let config = HubConfig {
        buffer: 4,
        ..HubConfig::default()
    };
    let hub = Hub::start(backend.store.clone(), config, shutdown.clone())
        .await
        .unwrap();
    let all: Predicate = Arc::new(|_| true);
    let mut slow = hub.subscribe(Interest::All, all.clone(), None);
    let mut fast = hub.subscribe(Interest::All, all.clone(), None);
    // The writer waits for the fast subscriber to take each event, so only
    // the slow one falls behind, however busy the machine is.
    let mut fast_positions = Vec::new();
    for _ in 0..20 {
        create_ticket(&*backend.store, "alice", "billing").await;
        fast_positions.push(event(next(&mut fast).await).position());
    }
    assert_eq!(fast_positions.len(), 20);

    let mut received = Vec::new();
    let reached = loop {
        match next(&mut slow).await {
            Item::Event(delivery) => received.push(delivery.position()),
            Item::Lagged { position_reached } => break position_reached,
        }
    };
    assert_eq!(received.len(), 4, "its buffer, then the end");
    assert_eq!(received, fast_positions[..4]);
    assert_eq!(reached, fast_positions[3]);
    assert!(slow.next().await.is_none(), "Lagged is the last item");

    let mut resumed = hub.subscribe(Interest::All, all, Some(reached));
    for expected in &fast_positions[4..] {
        assert_eq!(event(next(&mut resumed).await).position(), *expected);
    }
    shutdown.cancel();
    backend.cleanup().await;
}

/// Stopping the hub ends every stream with `Lagged`, so clients reconnect
/// (to another process) with `after` rather than wait forever; its worker
/// task finishes, so a server can wait for it at shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_hub_ends_every_stream_with_lagged() {
    let backend = Backend::new(Kind::Sqlite).await;
    let shutdown = CancellationToken::new();
    let (hub, worker) = Hub::start_joinable(
        backend.store.clone(),
        HubConfig::default(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let mut subscription = hub.subscribe(Interest::All, Arc::new(|_| true), None);
    create_ticket(&*backend.store, "alice", "billing").await;
    let first = event(next(&mut subscription).await).position();
    shutdown.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(20), worker)
        .await
        .expect("the worker stops on shutdown")
        .expect("the worker did not panic");
    assert_eq!(hub.subscribers(), 0);
    match next(&mut subscription).await {
        Item::Lagged { position_reached } => assert_eq!(position_reached, first),
        Item::Event(_) => panic!("no more events after the hub stopped"),
    }
    backend.cleanup().await;
}
