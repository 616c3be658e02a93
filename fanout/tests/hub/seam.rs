use std::sync::Arc;
use std::time::Duration;

use fanout::{Hub, HubConfig, Interest, Item};
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use store::{EventStore, Position};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::commands::Script;
use crate::harness::{Backend, Kind};

/// Every ticket event of the log strictly after `after`.
async fn ticket_events_after(store: &dyn EventStore, after: Position) -> Vec<Position> {
    let mut out = Vec::new();
    let mut cursor = after;
    loop {
        let page = store.read_all(cursor, 1000).await.unwrap();
        let Some(last) = page.last() else {
            return out;
        };
        cursor = last.position;
        out.extend(
            page.iter()
                .filter(|e| e.stream_id.starts_with(domain::STREAM_PREFIX))
                .map(|e| e.position),
        );
    }
}

on_every_backend!(
    /// Writers keep appending while subscribers join with `after` unset, at the
    /// start of the log, at a past position or at the head: each receives
    /// exactly the ticket events after its `after` (without one: every event
    /// from the first it received on), once each, in log order.
    subscribers_joining_under_concurrent_appends_get_every_event_once_in_order
);
async fn subscribers_joining_under_concurrent_appends_get_every_event_once_in_order(kind: Kind) {
    let backend = Backend::new(kind).await;
    let store = backend.store.clone();
    Script::new(1, 20).run(&*store, 100).await;
    let shutdown = CancellationToken::new();
    let config = HubConfig {
        buffer: 100_000,
        cached_tickets: 8,
        recent: 64,
        ..HubConfig::default()
    };
    let hub = Hub::start(store.clone(), config, shutdown.clone())
        .await
        .unwrap();

    // The writers go on until the last subscriber has joined, so every kind
    // of `after` meets appends in flight.
    let joined = CancellationToken::new();
    let writers: Vec<_> = (0..2u64)
        .map(|seed| {
            let store = store.clone();
            let joined = joined.clone();
            tokio::spawn(async move {
                let mut script = Script::new(100 + seed, 30);
                script.run(&*store, 100).await;
                while !joined.is_cancelled() {
                    script.run(&*store, 25).await;
                }
            })
        })
        .collect();

    let (stop, stopped) = watch::channel(None::<Position>);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut subscribers = Vec::new();
    for i in 0..24 {
        let head = store.head().await.unwrap();
        let after = match i % 4 {
            0 => None,
            1 => Some(Position::START),
            2 => Some(Position::from_sequence(rng.gen_range(0..=head.commit))),
            _ => Some(head),
        };
        let mut subscription = hub.subscribe(Interest::All, Arc::new(|_| true), after);
        let mut stopped = stopped.clone();
        subscribers.push(tokio::spawn(async move {
            let mut received = Vec::new();
            loop {
                let done = matches!(*stopped.borrow(), Some(end) if received.last() == Some(&end));
                if done {
                    return (after, received);
                }
                tokio::select! {
                    item = subscription.next() => match item {
                        Some(Item::Event(d)) => received.push(d.position()),
                        other => panic!("the stream ended: {other:?}"),
                    },
                    _ = stopped.changed() => {}
                }
            }
        }));
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..30))).await;
    }
    joined.cancel();
    for writer in writers {
        writer.await.unwrap();
    }
    // One last ticket event, appended after every subscriber joined: each
    // must receive it, whatever its `after`, so it marks where each is done.
    let last = Script::new(999, 1).create_ticket(&*store).await;
    let all = ticket_events_after(&*store, Position::START).await;
    assert_eq!(all.last(), Some(&last));
    stop.send(Some(last)).unwrap();

    for subscriber in subscribers {
        let (after, received) = tokio::time::timeout(Duration::from_secs(60), subscriber)
            .await
            .expect("every subscriber receives the last event")
            .unwrap();
        let expected = match after {
            Some(after) => ticket_events_after(&*store, after).await,
            None => {
                let first = received.first().copied().unwrap_or(Position::START);
                all.iter().copied().filter(|p| *p >= first).collect()
            }
        };
        assert_eq!(received, expected, "subscriber after {after:?}");
    }
    shutdown.cancel();
    backend.cleanup().await;
}
