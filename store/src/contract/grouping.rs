//! Contract bodies about appends that arrive together. Backends may write
//! appends that queue up at the same time in one transaction (group commit);
//! each append must still succeed or fail on its own, exactly as if it had run
//! alone, in some order.

use std::collections::HashSet;

use futures::future::join_all;
use uuid::Uuid;

use super::{assert_answer_as_stored, assert_conflict, event, ids, whole_log};
use crate::{read_whole_stream, EventStore, ExpectedVersion, StoreError};

/// Appends refused by a rule (a stale version, reused ids) sent together with
/// good ones: the good ones are written with the versions they asked for, the
/// bad ones get their own typed errors and write nothing.
pub async fn a_refused_append_does_not_affect_the_appends_sent_with_it(store: &dyn EventStore) {
    let taken = event(0);
    store
        .append("taken", ExpectedVersion::NoStream, vec![taken.clone()])
        .await
        .expect("first");
    let good: Vec<_> = (0..6u64)
        .map(|n| (format!("good-{n}"), vec![event(10 + n), event(20 + n)]))
        .collect();
    let stale = store.append("taken", ExpectedVersion::Exact(5), vec![event(1)]);
    let reused = store.append("other", ExpectedVersion::Any, vec![event(2), taken.clone()]);
    let goods =
        join_all(good.iter().map(|(stream, events)| {
            store.append(stream, ExpectedVersion::NoStream, events.clone())
        }));
    let (stale, reused, goods) = futures::join!(stale, reused, goods);

    assert_conflict(stale, ExpectedVersion::Exact(5), Some(0));
    assert!(
        matches!(reused, Err(StoreError::IdempotencyMismatch { .. })),
        "{reused:?}"
    );
    for ((stream, sent), result) in good.iter().zip(goods) {
        assert_eq!(result.expect("a good append").last_version, 1);
        let read = read_whole_stream(store, stream).await.expect("read");
        let want: Vec<Uuid> = sent.iter().map(|e| e.id).collect();
        assert_eq!(ids(&read), want);
    }
    assert!(store
        .read_stream("other", 0, 10)
        .await
        .expect("read")
        .is_empty());
    assert_eq!(whole_log(store).await.len(), 1 + 2 * good.len());
}

/// The same append sent twice at once (a client retrying before its first
/// reply): both get the one original result, and its events are stored once.
pub async fn an_append_repeated_while_the_original_is_pending_is_stored_once(
    store: &dyn EventStore,
) {
    store
        .append("s", ExpectedVersion::NoStream, vec![event(0)])
        .await
        .expect("first");
    let batch = vec![event(1), event(2)];
    let results =
        join_all((0..4).map(|_| store.append("s", ExpectedVersion::Exact(0), batch.clone()))).await;
    let first = results[0].as_ref().expect("original").to_owned();
    assert_eq!(first.last_version, 2);
    for result in &results {
        assert_eq!(result.as_ref().expect("repeat"), &first);
    }
    let stream = read_whole_stream(store, "s").await.expect("read");
    assert_eq!(stream.len(), 3);
    let distinct: HashSet<Uuid> = ids(&whole_log(store).await).into_iter().collect();
    assert_eq!(distinct.len(), 3);
}

/// Appends to one stream sent together with `Any`, one event each: every one is
/// written, at consecutive versions in the order of their positions.
pub async fn appends_to_one_stream_sent_together_take_consecutive_versions(store: &dyn EventStore) {
    let sent: Vec<_> = (0..16u64).map(event).collect();
    let results = join_all(
        sent.iter()
            .map(|e| store.append("busy", ExpectedVersion::Any, vec![e.clone()])),
    )
    .await;
    let mut versions: Vec<u64> = results
        .iter()
        .map(|r| r.as_ref().expect("append").last_version)
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (0..16).collect::<Vec<u64>>());
    let stream = read_whole_stream(store, "busy").await.expect("read");
    assert_eq!(stream.len(), 16);
    for pair in stream.windows(2) {
        assert!(pair[0].position < pair[1].position, "{pair:?}");
    }
    for (result, e) in results.iter().zip(&sent) {
        let result = result.as_ref().expect("append");
        let stored = &stream[result.last_version as usize];
        assert_eq!((stored.id, stored.position), (e.id, result.last_position));
    }
}

/// Appends sent together, mixing new streams, several appends to one stream, a
/// conflict, a repeat of a stored append and a repeat of one in the same
/// group: every answer carries its events' positions and times as stored, and
/// the repeats answer with their originals'.
pub async fn appends_sent_together_answer_with_each_event_as_stored(store: &dyn EventStore) {
    let stored_batch = vec![event(0), event(1)];
    let stored = store
        .append("old", ExpectedVersion::NoStream, stored_batch.clone())
        .await
        .expect("stored before");
    let pending_batch = vec![event(2), event(3)];

    let news: Vec<_> = (0..4u64)
        .map(|n| (format!("new-{n}"), vec![event(10 + n), event(20 + n)]))
        .collect();
    let new_appends =
        join_all(news.iter().map(|(stream, events)| {
            store.append(stream, ExpectedVersion::NoStream, events.clone())
        }));
    let busy = join_all(
        (0..4u64).map(|n| store.append("busy", ExpectedVersion::Any, vec![event(30 + n)])),
    );
    let conflict = store.append("old", ExpectedVersion::NoStream, vec![event(4)]);
    let repeat = store.append("old", ExpectedVersion::NoStream, stored_batch);
    let pending = join_all(
        (0..3).map(|_| store.append("pending", ExpectedVersion::Any, pending_batch.clone())),
    );
    let (new_appends, busy, conflict, repeat, pending) =
        futures::join!(new_appends, busy, conflict, repeat, pending);

    for ((stream, _), result) in news.iter().zip(&new_appends) {
        let result = result.as_ref().expect("a new stream");
        assert_eq!(result.last_version, 1);
        assert_answer_as_stored(store, stream, result).await;
    }
    for result in &busy {
        assert_answer_as_stored(store, "busy", result.as_ref().expect("busy")).await;
    }
    assert_conflict(conflict, ExpectedVersion::NoStream, Some(1));
    assert_eq!(repeat.expect("repeat"), stored);
    let original = pending[0].as_ref().expect("pending").clone();
    assert_answer_as_stored(store, "pending", &original).await;
    for result in &pending {
        assert_eq!(result.as_ref().expect("pending repeat"), &original);
    }
    assert_eq!(
        whole_log(store).await.len(),
        2 + 2 * news.len() + busy.len() + pending_batch.len()
    );
}
