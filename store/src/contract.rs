//! The behaviour every backend must show, as async test bodies.
//!
//! Each body takes a fresh, empty store and panics when the store misbehaves.
//! A backend's test file implements [`Harness`] (how to get a fresh store and
//! clean up after it) and expands `store::event_store_contract!`
//! to run every body against it, so a behaviour added here is tested on every
//! backend without touching their test files.
//!
//! The bodies live in `appending`, `grouping` (appends sent together, as group
//! commit writes them), `reading` and `subscribing` (which also holds
//! the ordering proof that the backends run at their own scale).
//!
//! Compiled into the library (hidden from the docs) rather than behind
//! `cfg(test)`, because the backends' integration tests in `tests/` and other
//! crates' tests link against the normal library build.

mod appending;
mod grouping;
mod reading;
mod subscribing;

pub use appending::*;
pub use grouping::*;
pub use reading::*;
pub use subscribing::*;

use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use uuid::Uuid;

use crate::{
    AppendResult, AppendedEvent, EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent,
    StoreError,
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
#[doc(hidden)]
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
            an_append_bigger_than_one_statement_is_all_or_nothing,
            an_empty_append_or_stream_name_is_invalid,
            reading_a_stream_starts_at_a_version_and_stops_at_max,
            reading_the_log_starts_after_a_position_and_stops_at_max,
            the_head_is_the_position_of_the_last_event,
            a_subscription_replays_then_follows_live_appends_without_duplicates,
            concurrent_exact_appends_to_one_stream_have_exactly_one_winner,
            a_refused_append_does_not_affect_the_appends_sent_with_it,
            an_append_repeated_while_the_original_is_pending_is_stored_once,
            appends_to_one_stream_sent_together_take_consecutive_versions,
            an_append_answers_with_each_event_as_reading_the_stream_gives_it,
            appends_sent_together_answer_with_each_event_as_stored,
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

pub(crate) async fn whole_log(store: &dyn EventStore) -> Vec<RecordedEvent> {
    store
        .read_all(Position::START, 100_000)
        .await
        .expect("read_all")
}

pub(crate) fn ids(events: &[RecordedEvent]) -> Vec<Uuid> {
    events.iter().map(|e| e.id).collect()
}

/// Checks that `result`, an append's answer, tells each of its events' position
/// time and hash exactly as reading the stream gives them.
pub(crate) async fn assert_answer_as_stored(
    store: &dyn EventStore,
    stream: &str,
    result: &AppendResult,
) {
    let count = result.events.len() as u64;
    assert!(count > 0, "an answer without events: {result:?}");
    let first_version = (result.last_version + 1)
        .checked_sub(count)
        .expect("no more events than versions");
    let stored = store
        .read_stream(stream, first_version, result.events.len())
        .await
        .expect("read");
    let places: Vec<AppendedEvent> = stored
        .iter()
        .map(|e| AppendedEvent {
            position: e.position,
            recorded_at: e.recorded_at,
            hash: e.hash.clone(),
        })
        .collect();
    assert_eq!(result.events, places, "the answer for {stream}");
    assert_eq!(result.first_position, places[0].position);
    assert_eq!(result.last_position, places[places.len() - 1].position);
}

pub(crate) fn assert_conflict(
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

/// For the stores that keep hashes (the SQL ones; EventStoreDB keeps none):
/// every stored hash chains to its stream's previous one as `chain` says,
/// across separate appends and appends written in one group, and each
/// append's answer carries exactly the stored hashes.
pub async fn stored_hashes_chain_each_stream(store: &dyn EventStore) {
    let first = store
        .append(
            "chained",
            ExpectedVersion::NoStream,
            vec![event(0), event(1)],
        )
        .await
        .expect("first append");
    assert_answer_as_stored(store, "chained", &first).await;
    let together = futures::future::join_all((0..8).map(|n| async move {
        let stream = if n % 2 == 0 { "chained" } else { "other" };
        store
            .append(stream, ExpectedVersion::Any, vec![event(n), event(n + 100)])
            .await
            .expect("grouped append")
    }))
    .await;
    for (n, answer) in together.iter().enumerate() {
        let stream = if n % 2 == 0 { "chained" } else { "other" };
        assert_answer_as_stored(store, stream, answer).await;
    }
    for stream in ["chained", "other"] {
        let events = crate::read_whole_stream(store, stream).await.expect("read");
        let mut previous = crate::chain::GENESIS.to_string();
        for e in &events {
            let expected = crate::chain::event_hash(&previous, e.into());
            assert_eq!(e.hash, expected, "{stream} at version {}", e.version);
            previous = expected;
        }
    }
}
