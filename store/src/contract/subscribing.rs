//! Contract bodies about the catch-up subscription, and the ordering proof.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use uuid::Uuid;

use super::{event, ids, take};
use crate::{EventStore, ExpectedVersion, Position, RecordedEvent};

/// A subscription yields the stored events, then those appended later — also
/// those appended between its creation and its first poll — each exactly once
/// and in increasing position; one started later skips what it was told to.
pub async fn a_subscription_replays_then_follows_live_appends_without_duplicates(
    store: &dyn EventStore,
) {
    let mut sent = Vec::new();
    for n in 0..3 {
        let e = event(n);
        sent.push(e.id);
        store
            .append(&format!("s{n}"), ExpectedVersion::Any, vec![e])
            .await
            .expect("append");
    }
    let mut from_start = store.subscribe_all(Position::START);
    let replayed = take(&mut from_start, 3).await;
    assert_eq!(ids(&replayed), sent);

    // Appended after the subscription caught up.
    for n in 3..5 {
        let e = event(n);
        sent.push(e.id);
        store
            .append("live", ExpectedVersion::Any, vec![e])
            .await
            .expect("append");
    }
    let live = take(&mut from_start, 2).await;
    assert_eq!(ids(&live), sent[3..]);

    // Created, then an append, then the first poll: the seam.
    let mut late = store.subscribe_all(replayed[1].position);
    let e = event(5);
    sent.push(e.id);
    store
        .append("live", ExpectedVersion::Any, vec![e])
        .await
        .expect("append");
    let seam = take(&mut late, 4).await;
    assert_eq!(ids(&seam), sent[2..]);
    assert_eq!(ids(&take(&mut from_start, 1).await), sent[5..]);

    let all: Vec<&RecordedEvent> = replayed.iter().chain(&live).collect();
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    for sub in [&mut from_start, &mut late] {
        let extra = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
        assert!(extra.is_err(), "no duplicate or extra event: {extra:?}");
    }
}

/// The ordering proof, at any scale: `writers` tasks each make `appends_each`
/// one-event appends (`Any`) to random streams among `streams`, while a
/// subscriber started at [`Position::START`] runs alongside. The subscriber must
/// receive every event exactly once, in strictly increasing position, and each
/// stream's events in version order 0, 1, 2, ... Returns the time from the first
/// append until the subscriber had everything.
pub async fn concurrent_writers_and_a_live_subscriber_agree_on_one_order<S>(
    store: S,
    writers: usize,
    appends_each: usize,
    streams: usize,
) -> Duration
where
    S: EventStore + Clone,
{
    use std::collections::HashMap;

    /// Longest pause between two deliveries before the subscriber is called stuck.
    const STALL: Duration = Duration::from_secs(30);
    let total = writers * appends_each;
    let started = std::time::Instant::now();

    let mut subscription = store.subscribe_all(Position::START);
    let subscriber = tokio::spawn(async move {
        let mut received = Vec::with_capacity(total);
        while received.len() < total {
            match tokio::time::timeout(STALL, subscription.next()).await {
                Ok(Some(Ok(event))) => received.push(event),
                Ok(Some(Err(e))) => panic!("subscription failed after {}: {e}", received.len()),
                Ok(None) => panic!("subscription ended after {}", received.len()),
                Err(_) => panic!("subscription stalled at {} of {total}", received.len()),
            }
        }
        let elapsed = started.elapsed();
        let extra = tokio::time::timeout(Duration::from_millis(500), subscription.next()).await;
        assert!(
            extra.is_err(),
            "an event beyond the {total} appended: {extra:?}"
        );
        (received, elapsed)
    });

    let writer_tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut sent = Vec::with_capacity(appends_each);
                for n in 0..appends_each {
                    let stream = format!("stream-{}", Uuid::new_v4().as_u128() % streams as u128);
                    let e = event((w * appends_each + n) as u64);
                    sent.push(e.id);
                    store
                        .append(&stream, ExpectedVersion::Any, vec![e])
                        .await
                        .unwrap_or_else(|err| panic!("writer {w}, append {n}: {err}"));
                }
                sent
            })
        })
        .collect();
    let mut sent = HashSet::with_capacity(total);
    for task in writer_tasks {
        sent.extend(task.await.expect("writer task"));
    }
    assert_eq!(sent.len(), total);

    let (received, elapsed) = subscriber.await.expect("subscriber task");
    let received_ids: HashSet<Uuid> = received.iter().map(|e| e.id).collect();
    assert_eq!(received_ids.len(), total, "each event exactly once");
    assert_eq!(received_ids, sent, "exactly the events appended");
    if let Some(w) = received.windows(2).find(|w| w[0].position >= w[1].position) {
        panic!(
            "positions not increasing: {} then {}",
            w[0].position, w[1].position
        );
    }
    let mut next_version: HashMap<&str, u64> = HashMap::new();
    for e in &received {
        let expected = next_version.entry(&e.stream_id).or_insert(0);
        assert_eq!(
            e.version, *expected,
            "stream {} out of version order",
            e.stream_id
        );
        *expected += 1;
    }
    elapsed
}
