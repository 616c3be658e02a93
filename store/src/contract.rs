//! The behaviour every backend must show, as async test bodies.
//!
//! Each body takes a fresh, empty store and panics when the store misbehaves.
//! A backend's test file implements [`Harness`] (how to get a fresh store and
//! clean up after it) and expands [`event_store_contract!`](crate::event_store_contract)
//! to run every body against it, so a behaviour added here is tested on every
//! backend without touching their test files.
//!
//! Compiled into the library (hidden from the docs) rather than behind
//! `cfg(test)`, because the backends' integration tests in `tests/` and other
//! crates' tests link against the normal library build.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::join_all;
use futures::stream::BoxStream;
use futures::StreamExt;
use uuid::Uuid;

use crate::{
    read_whole_stream, EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent, StoreError,
};

/// How long a subscriber may take to deliver an event that is already committed.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// A fresh store for one test, and its cleanup.
#[async_trait]
pub trait Harness: Sized + Send {
    /// A new, empty store. Panics (with a message saying what to set up) if the
    /// backend cannot be reached: a contract test must never pass by not running.
    async fn start() -> Self;
    fn store(&self) -> &dyn EventStore;
    /// Runs whether the test body passed or panicked.
    async fn finish(self);
}

/// Expands to one `#[tokio::test]` per contract body, each run against a fresh
/// store from the given [`Harness`] type.
#[macro_export]
macro_rules! event_store_contract {
    ($harness:ty) => {
        $crate::event_store_contract!(@each $harness;
            appending_to_a_new_stream_starts_at_version_zero_and_reads_back,
            an_exact_expected_version_appends_after_that_version,
            no_stream_on_an_existing_stream_is_a_conflict,
            exact_on_a_missing_stream_or_another_version_is_a_conflict,
            any_appends_whatever_the_stream_holds,
            repeating_an_append_returns_the_original_result_and_writes_nothing,
            reusing_some_ids_or_ids_of_another_stream_is_an_idempotency_mismatch,
            a_multi_event_append_is_all_or_nothing_and_never_interleaved,
            an_empty_append_or_stream_name_is_invalid,
            reading_a_stream_starts_at_a_version_and_stops_at_max,
            reading_the_log_starts_after_a_position_and_stops_at_max,
            the_head_is_the_position_of_the_last_event,
            a_subscription_replays_then_follows_live_appends_without_duplicates,
            concurrent_exact_appends_to_one_stream_have_exactly_one_winner,
        );
    };
    (@each $harness:ty; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::contract::run::<$harness, _>(|store| {
                    ::std::boxed::Box::pin($crate::contract::$name(store))
                })
                .await;
            }
        )*
    };
}

/// Runs `body` against a fresh store from `H`, cleaning up even if it panics.
pub async fn run<H, F>(body: F)
where
    H: Harness,
    F: for<'a> FnOnce(&'a dyn EventStore) -> futures::future::BoxFuture<'a, ()>,
{
    use futures::FutureExt;
    let harness = H::start().await;
    let outcome = std::panic::AssertUnwindSafe(body(harness.store()))
        .catch_unwind()
        .await;
    harness.finish().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// A new event whose payload says which one it is.
pub fn event(n: u64) -> NewEvent {
    NewEvent {
        id: Uuid::new_v4(),
        event_type: "Tested".into(),
        schema_version: 1,
        data: serde_json::json!({ "n": n, "text": "é ✓ \"quoted\"" }),
        metadata: serde_json::json!({ "correlation": n }),
    }
}

/// Takes `n` items from a subscription, failing on an error item or a stall.
pub async fn take(
    subscription: &mut BoxStream<'static, Result<RecordedEvent, StoreError>>,
    n: usize,
) -> Vec<RecordedEvent> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match tokio::time::timeout(DELIVERY_TIMEOUT, subscription.next()).await {
            Ok(Some(Ok(event))) => out.push(event),
            Ok(Some(Err(e))) => panic!("subscription failed after {} events: {e}", out.len()),
            Ok(None) => panic!("subscription ended after {} events", out.len()),
            Err(_) => panic!("subscription stalled after {} of {n} events", out.len()),
        }
    }
    out
}

async fn whole_log(store: &dyn EventStore) -> Vec<RecordedEvent> {
    store
        .read_all(Position::START, 100_000)
        .await
        .expect("read_all")
}

fn ids(events: &[RecordedEvent]) -> Vec<Uuid> {
    events.iter().map(|e| e.id).collect()
}

fn assert_conflict(
    result: Result<impl std::fmt::Debug, StoreError>,
    want_expected: ExpectedVersion,
    want_actual: Option<u64>,
) {
    match result {
        Err(StoreError::Conflict {
            expected, actual, ..
        }) => {
            assert_eq!((expected, actual), (want_expected, want_actual));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// The first event of a stream has version 0, and what is read back is what was
/// appended, in both the stream and the global log.
pub async fn appending_to_a_new_stream_starts_at_version_zero_and_reads_back(
    store: &dyn EventStore,
) {
    let sent = vec![event(0), event(1)];
    let result = store
        .append("ticket-1", ExpectedVersion::NoStream, sent.clone())
        .await
        .expect("append");
    assert_eq!(result.last_version, 1);
    assert!(result.first_position > Position::START);
    assert!(result.first_position < result.last_position);

    let read = read_whole_stream(store, "ticket-1").await.expect("read");
    assert_eq!(read.len(), 2);
    for (i, (got, sent)) in read.iter().zip(&sent).enumerate() {
        assert_eq!(got.version, i as u64);
        assert_eq!(got.stream_id, "ticket-1");
        assert_eq!(got.id, sent.id);
        assert_eq!(got.event_type, sent.event_type);
        assert_eq!(got.schema_version, sent.schema_version);
        assert_eq!(got.data, sent.data);
        assert_eq!(got.metadata, sent.metadata);
    }
    assert_eq!(read[0].position, result.first_position);
    assert_eq!(read[1].position, result.last_position);
    assert_eq!(whole_log(store).await, read);
    let unknown = store.read_stream("nobody", 0, 10).await.expect("read");
    assert!(unknown.is_empty(), "an unknown stream reads as empty");
}

/// `Exact(n)` appends when the stream's last version is n.
pub async fn an_exact_expected_version_appends_after_that_version(store: &dyn EventStore) {
    store
        .append("s", ExpectedVersion::NoStream, vec![event(0)])
        .await
        .expect("first");
    let second = store
        .append("s", ExpectedVersion::Exact(0), vec![event(1), event(2)])
        .await
        .expect("second");
    assert_eq!(second.last_version, 2);
    let third = store
        .append("s", ExpectedVersion::Exact(2), vec![event(3)])
        .await
        .expect("third");
    assert_eq!(third.last_version, 3);
}

/// `NoStream` on a stream with events is a typed conflict naming the version.
pub async fn no_stream_on_an_existing_stream_is_a_conflict(store: &dyn EventStore) {
    store
        .append("s", ExpectedVersion::NoStream, vec![event(0)])
        .await
        .expect("first");
    let again = store
        .append("s", ExpectedVersion::NoStream, vec![event(1)])
        .await;
    assert_conflict(again, ExpectedVersion::NoStream, Some(0));
    assert_eq!(whole_log(store).await.len(), 1);
}

/// `Exact` fails on a missing stream (actual `None`) and on any other version.
pub async fn exact_on_a_missing_stream_or_another_version_is_a_conflict(store: &dyn EventStore) {
    let missing = store
        .append("s", ExpectedVersion::Exact(0), vec![event(0)])
        .await;
    assert_conflict(missing, ExpectedVersion::Exact(0), None);

    store
        .append("s", ExpectedVersion::Any, vec![event(0), event(1)])
        .await
        .expect("append");
    for stale in [0, 2] {
        let result = store
            .append("s", ExpectedVersion::Exact(stale), vec![event(2)])
            .await;
        assert_conflict(result, ExpectedVersion::Exact(stale), Some(1));
    }
    assert_eq!(whole_log(store).await.len(), 2);
}

/// `Any` appends to a new stream and to an existing one alike.
pub async fn any_appends_whatever_the_stream_holds(store: &dyn EventStore) {
    let first = store
        .append("s", ExpectedVersion::Any, vec![event(0)])
        .await
        .expect("new stream");
    assert_eq!(first.last_version, 0);
    let second = store
        .append("s", ExpectedVersion::Any, vec![event(1)])
        .await
        .expect("existing stream");
    assert_eq!(second.last_version, 1);
}

/// A retried append (same ids, same order) returns the original result and writes
/// nothing, even though its expected version is stale by now.
pub async fn repeating_an_append_returns_the_original_result_and_writes_nothing(
    store: &dyn EventStore,
) {
    let batch = vec![event(0), event(1)];
    let original = store
        .append("s", ExpectedVersion::NoStream, batch.clone())
        .await
        .expect("original");
    store
        .append("s", ExpectedVersion::Exact(1), vec![event(2)])
        .await
        .expect("the stream moves on");
    let before = whole_log(store).await;

    let repeat = store
        .append("s", ExpectedVersion::NoStream, batch.clone())
        .await
        .expect("repeat");
    assert_eq!(repeat, original);
    let single = store
        .append("s", ExpectedVersion::Any, vec![batch[1].clone()])
        .await
        .expect("repeat of the tail");
    assert_eq!(single.last_version, 1);
    assert_eq!(single.first_position, original.last_position);
    assert_eq!(whole_log(store).await, before, "a repeat writes nothing");
}

/// Ids reused for a different append are a caller bug, reported as such.
pub async fn reusing_some_ids_or_ids_of_another_stream_is_an_idempotency_mismatch(
    store: &dyn EventStore,
) {
    let (a, b) = (event(0), event(1));
    store
        .append("s", ExpectedVersion::NoStream, vec![a.clone(), b.clone()])
        .await
        .expect("original");
    let before = whole_log(store).await;

    let partial = store
        .append("s", ExpectedVersion::Any, vec![a.clone(), event(2)])
        .await;
    assert!(
        matches!(partial, Err(StoreError::IdempotencyMismatch { .. })),
        "{partial:?}"
    );
    let elsewhere = store
        .append("other", ExpectedVersion::Any, vec![a.clone(), b.clone()])
        .await;
    assert!(
        matches!(elsewhere, Err(StoreError::IdempotencyMismatch { .. })),
        "{elsewhere:?}"
    );
    let reordered = store.append("s", ExpectedVersion::Any, vec![b, a]).await;
    assert!(
        matches!(reordered, Err(StoreError::IdempotencyMismatch { .. })),
        "{reordered:?}"
    );
    assert_eq!(whole_log(store).await, before);
}

/// An append that fails writes none of its events, and the events of one append
/// sit together in the log even when other appends run at the same time.
pub async fn a_multi_event_append_is_all_or_nothing_and_never_interleaved(store: &dyn EventStore) {
    let taken = event(0);
    store
        .append("a", ExpectedVersion::NoStream, vec![taken.clone()])
        .await
        .expect("first");
    let failed = store
        .append("b", ExpectedVersion::Any, vec![event(1), taken])
        .await;
    assert!(failed.is_err());
    assert!(store
        .read_stream("b", 0, 10)
        .await
        .expect("read")
        .is_empty());

    let batches: Vec<(String, Vec<NewEvent>)> = (0..12u64)
        .map(|i| {
            let stream = if i % 2 == 0 { "shared" } else { "own" };
            let stream = format!("{stream}-{}", i % 3);
            (stream, (0..4).map(|n| event(i * 10 + n)).collect())
        })
        .collect();
    let results = join_all(
        batches
            .iter()
            .map(|(stream, events)| store.append(stream, ExpectedVersion::Any, events.clone())),
    )
    .await;
    let log = whole_log(store).await;
    for ((stream, sent), result) in batches.iter().zip(results) {
        let result = result.expect("concurrent append");
        let span: Vec<&RecordedEvent> = log
            .iter()
            .filter(|e| e.position >= result.first_position && e.position <= result.last_position)
            .collect();
        let got: Vec<Uuid> = span.iter().map(|e| e.id).collect();
        let want: Vec<Uuid> = sent.iter().map(|e| e.id).collect();
        assert_eq!(got, want, "one append's events are contiguous and in order");
        for (i, e) in span.iter().enumerate() {
            assert_eq!(&e.stream_id, stream);
            assert_eq!(e.version, result.last_version - 3 + i as u64);
        }
    }
}

/// Nothing to append, or nowhere to append it, is refused without writing.
pub async fn an_empty_append_or_stream_name_is_invalid(store: &dyn EventStore) {
    let empty = store.append("s", ExpectedVersion::Any, Vec::new()).await;
    assert!(matches!(empty, Err(StoreError::Invalid(_))), "{empty:?}");
    let nameless = store.append("", ExpectedVersion::Any, vec![event(0)]).await;
    assert!(
        matches!(nameless, Err(StoreError::Invalid(_))),
        "{nameless:?}"
    );
    assert!(whole_log(store).await.is_empty());
}

/// `read_stream` returns versions from `from_version` on, at most `max` of them,
/// and only the stream's own events.
pub async fn reading_a_stream_starts_at_a_version_and_stops_at_max(store: &dyn EventStore) {
    for n in 0..5 {
        store
            .append("s", ExpectedVersion::Any, vec![event(n)])
            .await
            .expect("append");
        store
            .append("noise", ExpectedVersion::Any, vec![event(100 + n)])
            .await
            .expect("append");
    }
    let versions =
        |events: Vec<RecordedEvent>| events.iter().map(|e| e.version).collect::<Vec<_>>();
    let read = |from, max| store.read_stream("s", from, max);
    assert_eq!(versions(read(0, 100).await.expect("read")), [0, 1, 2, 3, 4]);
    assert_eq!(versions(read(2, 100).await.expect("read")), [2, 3, 4]);
    assert_eq!(versions(read(1, 2).await.expect("read")), [1, 2]);
    assert!(read(5, 100).await.expect("read").is_empty());
    assert!(read(0, 0).await.expect("read").is_empty());
    assert!(read(u64::MAX, 10).await.expect("read").is_empty());
}

/// `read_all` returns the log strictly after a position, in order, at most `max`.
pub async fn reading_the_log_starts_after_a_position_and_stops_at_max(store: &dyn EventStore) {
    let mut sent = Vec::new();
    for n in 0..6 {
        let e = event(n);
        sent.push(e.id);
        store
            .append(&format!("s{}", n % 2), ExpectedVersion::Any, vec![e])
            .await
            .expect("append");
    }
    let log = whole_log(store).await;
    assert_eq!(ids(&log), sent);
    assert!(log.windows(2).all(|w| w[0].position < w[1].position));

    let after_second = store.read_all(log[1].position, 100).await.expect("read");
    assert_eq!(ids(&after_second), sent[2..]);
    let page = store.read_all(log[1].position, 2).await.expect("read");
    assert_eq!(ids(&page), sent[2..4]);
    let past_end = store.read_all(log[5].position, 10).await.expect("read");
    assert!(past_end.is_empty());
    assert!(store
        .read_all(Position::START, 0)
        .await
        .expect("read")
        .is_empty());
}

/// `head` is `START` on an empty log, then the last event's position.
pub async fn the_head_is_the_position_of_the_last_event(store: &dyn EventStore) {
    assert_eq!(store.head().await.expect("head"), Position::START);
    store
        .append("s", ExpectedVersion::Any, vec![event(0)])
        .await
        .expect("append");
    let last = store
        .append("t", ExpectedVersion::Any, vec![event(1), event(2)])
        .await
        .expect("append");
    assert_eq!(store.head().await.expect("head"), last.last_position);
}

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

/// Writers racing with the same `Exact` version: one wins, the others get a typed
/// conflict naming the winner's version, and the stream holds one new event.
pub async fn concurrent_exact_appends_to_one_stream_have_exactly_one_winner(
    store: &dyn EventStore,
) {
    store
        .append("race", ExpectedVersion::NoStream, vec![event(0)])
        .await
        .expect("first");
    let results =
        join_all((1..=8).map(|n| store.append("race", ExpectedVersion::Exact(0), vec![event(n)])))
            .await;
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "{results:?}");
    for result in results.into_iter().filter(|r| r.is_err()) {
        assert_conflict(result, ExpectedVersion::Exact(0), Some(1));
    }
    let stream = read_whole_stream(store, "race").await.expect("read");
    assert_eq!(stream.len(), 2);
    let distinct: HashSet<Uuid> = ids(&whole_log(store).await).into_iter().collect();
    assert_eq!(distinct.len(), 2);
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
