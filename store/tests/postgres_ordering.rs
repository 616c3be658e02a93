//! The gap-free ordering proof on PostgreSQL, and wake-ups across processes.

#[path = "support/postgres.rs"]
mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use store::contract::{self, event, Harness};
use store::{EventStore, ExpectedVersion, Position};
use support::PgSchema;

/// 16 writers racing 32,000 one-event appends to 200 streams, with a subscriber
/// following from the start: it sees every event once, positions strictly
/// increasing, each stream in version order. Out-of-order commits of a plain
/// sequence would make it skip events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_writers_and_a_live_subscriber_agree_on_one_gap_free_order() {
    let harness = PgSchema::start().await;
    let outcome = tokio::spawn(
        contract::concurrent_writers_and_a_live_subscriber_agree_on_one_order(
            harness.store.clone(),
            16,
            2_000,
            200,
        ),
    )
    .await;
    harness.finish().await;
    let elapsed = outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()));
    eprintln!(
        "postgres: 32,000 events from 16 concurrent writers appended and delivered in {elapsed:.2?} \
         ({:.0} events/s)",
        32_000.0 / elapsed.as_secs_f64()
    );
}

/// Two stores with separate pools on one schema, as two processes would be: an
/// append through one wakes a caught-up subscriber of the other through NOTIFY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_through_another_store_wakes_a_subscriber_promptly() {
    let harness = PgSchema::start().await;
    let writer = &harness.store;
    let reader = support::connect(&harness.schema).await;

    let mut subscription = reader.subscribe_all(Position::START);
    // Let the subscriber catch up on the empty log and start waiting.
    let idle = tokio::time::timeout(Duration::from_millis(200), subscription.next()).await;
    let sent = event(0);
    let started = Instant::now();
    let appended = writer
        .append("s", ExpectedVersion::NoStream, vec![sent.clone()])
        .await;
    let received = tokio::time::timeout(Duration::from_secs(5), subscription.next()).await;
    let latency = started.elapsed();

    reader.close().await;
    harness.finish().await;
    assert!(idle.is_err(), "nothing to deliver yet: {idle:?}");
    appended.expect("append");
    let received = received
        .expect("woken within 5 s")
        .expect("stream goes on")
        .expect("an event");
    assert_eq!(received.id, sent.id);
    eprintln!("postgres: a second store's subscriber received the event after {latency:.2?}");
}

/// Killing the store's LISTEN connection (a server restart or a network cut, as
/// far as the store can tell) does not leave subscribers asleep: the listener
/// reconnects and wakes them, and later appends still arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_keeps_following_after_the_listen_connection_is_killed() {
    let harness = PgSchema::start().await;
    let store = &harness.store;
    let mut subscription = store.subscribe_all(Position::START);
    let idle = tokio::time::timeout(Duration::from_millis(200), subscription.next()).await;

    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE query = 'LISTEN \"tickets_events_' || $1 || '\"'",
    )
    .bind(&harness.schema)
    .fetch_all(store.pool())
    .await
    .expect("terminate the listener");
    let sent = event(0);
    // Give the listener a moment to notice; the append must not depend on it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let appended = store
        .append("s", ExpectedVersion::NoStream, vec![sent.clone()])
        .await;
    let received = tokio::time::timeout(Duration::from_secs(5), subscription.next()).await;
    harness.finish().await;

    assert!(idle.is_err(), "nothing to deliver yet: {idle:?}");
    assert_eq!(
        killed,
        [true],
        "exactly the store's listener was terminated"
    );
    appended.expect("append");
    let received = received
        .expect("woken within 5 s after the listener died")
        .expect("stream goes on")
        .expect("an event");
    assert_eq!(received.id, sent.id);
}
