//! Contract bodies about reading: a stream, the global log, the head.

use super::{event, ids, whole_log};
use crate::{EventStore, ExpectedVersion, Position, RecordedEvent};

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
