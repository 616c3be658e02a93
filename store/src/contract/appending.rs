//! Contract bodies about appending: versions, expected versions, idempotency,
//! atomicity and racing writers.

use std::collections::HashSet;

use futures::future::join_all;
use uuid::Uuid;

use super::{assert_answer_as_stored, assert_conflict, event, ids, whole_log};
use crate::{
    read_whole_stream, EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent, StoreError,
};

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

/// An append of more events than one SQL statement can bind (SQLite: 32,766
/// values, 8 per event) is still all or nothing, contiguous and in order.
pub async fn an_append_bigger_than_one_statement_is_all_or_nothing(store: &dyn EventStore) {
    const EVENTS: u64 = 4_500;
    let taken = event(0);
    store
        .append("a", ExpectedVersion::NoStream, vec![taken.clone()])
        .await
        .expect("first");
    let mut refused: Vec<NewEvent> = (1..EVENTS).map(event).collect();
    refused.push(taken);
    assert!(store
        .append("big", ExpectedVersion::NoStream, refused)
        .await
        .is_err());
    assert!(store
        .read_stream("big", 0, 10)
        .await
        .expect("read")
        .is_empty());
    assert_eq!(
        store
            .read_all(Position::START, 10)
            .await
            .expect("log")
            .len(),
        1,
        "nothing of it is stored"
    );

    let sent: Vec<NewEvent> = (1..=EVENTS).map(event).collect();
    let result = store
        .append("big", ExpectedVersion::NoStream, sent.clone())
        .await
        .expect("big append");
    assert_eq!(result.last_version, EVENTS - 1);
    let stored = store
        .read_stream("big", 0, EVENTS as usize + 1)
        .await
        .expect("read");
    let got: Vec<Uuid> = stored.iter().map(|e| e.id).collect();
    let want: Vec<Uuid> = sent.iter().map(|e| e.id).collect();
    assert_eq!(got, want);
    assert_eq!(
        stored.first().map(|e| e.position),
        Some(result.first_position)
    );
    assert_eq!(
        stored.last().map(|e| e.position),
        Some(result.last_position)
    );
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

/// An append's answer carries each event's position and time as the stream
/// reads back, so callers need not read them; a repeat answers with the
/// original's, however much later it comes.
pub async fn an_append_answers_with_each_event_as_reading_the_stream_gives_it(
    store: &dyn EventStore,
) {
    let single = store
        .append("s", ExpectedVersion::NoStream, vec![event(0)])
        .await
        .expect("single");
    assert_answer_as_stored(store, "s", &single).await;
    let batch = vec![event(1), event(2), event(3)];
    let triple = store
        .append("s", ExpectedVersion::Exact(0), batch.clone())
        .await
        .expect("triple");
    assert_eq!(triple.events.len(), 3);
    assert_answer_as_stored(store, "s", &triple).await;

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let repeat = store
        .append("s", ExpectedVersion::Exact(0), batch)
        .await
        .expect("repeat");
    assert_eq!(
        repeat, triple,
        "a repeat answers with the original's places and times"
    );
    let repeat_single = store
        .append(
            "s",
            ExpectedVersion::Any,
            vec![single_event_of(store, "s").await],
        )
        .await
        .expect("repeat of the first");
    assert_eq!(repeat_single, single);
}

/// The first event of `stream`, as a new event with the same id and content.
async fn single_event_of(store: &dyn EventStore, stream: &str) -> NewEvent {
    let first = store
        .read_stream(stream, 0, 1)
        .await
        .expect("read")
        .pop()
        .expect("a first event");
    NewEvent {
        id: first.id,
        event_type: first.event_type,
        schema_version: first.schema_version,
        data: first.data,
        metadata: first.metadata,
    }
}
