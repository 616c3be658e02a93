//! A replay from the log rides out a store that is briefly unavailable (a
//! pool timeout on a busy machine): it tries the same page again after a
//! short wait instead of ending the client's stream with `Lagged`, and
//! gives up with `Lagged` only when the store stays away.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use fanout::{Hub, HubConfig, Interest, Item, Predicate};
use store::Position;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::faulty::Faulty;
use crate::harness::{Backend, Kind};
use crate::{create_ticket, event, next};

/// Four tickets in the log, a hub that keeps only the last delivery in
/// memory (so replays from the start read the log), and the store.
async fn hub_past_four_tickets(
    backend: &Backend,
    shutdown: &CancellationToken,
) -> (Hub, Arc<Faulty>, Vec<Uuid>) {
    let mut tickets = Vec::new();
    for _ in 0..4 {
        tickets.push(create_ticket(&*backend.store, "alice", "billing").await);
    }
    let store = Arc::new(Faulty::new(backend.store.clone()));
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
    store.read_all_failures.store(2, Ordering::SeqCst);
    let all: Predicate = Arc::new(|_| true);
    let mut replaying = hub.subscribe(Interest::All, all, Some(Position::START));
    for ticket in &tickets {
        assert_eq!(event(next(&mut replaying).await).after.id, *ticket);
    }
    assert_eq!(
        store.read_all_failures.load(Ordering::SeqCst),
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
    store.read_all_failures.store(u32::MAX, Ordering::SeqCst);
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
