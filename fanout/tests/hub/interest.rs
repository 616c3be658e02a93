use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fanout::{Hub, HubConfig, Interest, Key, Predicate};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::harness::{Backend, Kind};
use crate::{create_ticket, event, next};

/// With 10,000 subscribers registered on other tickets, one event calls the
/// predicate of the interested subscribers only (by ticket, by user, by queue
/// and "all"), and each of them receives the event with its states and changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_costs_predicate_calls_for_interested_subscribers_only() {
    let backend = Backend::new(Kind::Sqlite).await;
    let shutdown = CancellationToken::new();
    let hub = Hub::start(
        backend.store.clone(),
        HubConfig::default(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counting: Predicate = {
        let calls = calls.clone();
        Arc::new(move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            true
        })
    };
    let mut others = Vec::new();
    for _ in 0..10_000 {
        others.push(hub.subscribe(Interest::ticket(Uuid::new_v4()), counting.clone(), None));
    }
    others.push(hub.subscribe(Interest::user("bob"), counting.clone(), None));
    others.push(hub.subscribe(Interest::queues(["hardware"]), counting.clone(), None));

    let mut interested = vec![
        hub.subscribe(Interest::user("alice"), counting.clone(), None),
        hub.subscribe(Interest::queues(["billing"]), counting.clone(), None),
        hub.subscribe(
            Interest::Keys(vec![
                Key::User("alice".into()),
                Key::Queue("billing".into()),
            ]),
            counting.clone(),
            None,
        ),
        hub.subscribe(Interest::All, counting.clone(), None),
    ];
    assert_eq!(hub.subscribers(), 10_006);

    let created = create_ticket(&*backend.store, "alice", "billing").await;
    let mut positions = Vec::new();
    for subscription in &mut interested {
        let delivery = event(next(subscription).await);
        assert_eq!(delivery.after.id, created);
        assert!(delivery.before.is_none());
        assert!(delivery.changes.iter().any(|c| c.field == "queue"));
        positions.push(delivery.position());
    }
    assert!(positions.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "only the interested are asked"
    );

    // Dropping a stream unregisters it.
    drop(others);
    assert_eq!(hub.subscribers(), 4);
    shutdown.cancel();
    backend.cleanup().await;
}

/// The predicate has the final word: an interested subscriber whose predicate
/// refuses an event does not receive it, and receives the next one it accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_predicate_has_the_final_word() {
    let backend = Backend::new(Kind::Sqlite).await;
    let shutdown = CancellationToken::new();
    let hub = Hub::start(
        backend.store.clone(),
        HubConfig::default(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let only_network: Predicate = Arc::new(|d| d.after.queue == "network");
    let mut subscription = hub.subscribe(Interest::All, only_network, None);
    create_ticket(&*backend.store, "alice", "billing").await;
    let wanted = create_ticket(&*backend.store, "alice", "network").await;
    assert_eq!(event(next(&mut subscription).await).after.id, wanted);
    shutdown.cancel();
    backend.cleanup().await;
}
