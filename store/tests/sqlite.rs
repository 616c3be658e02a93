//! Every contract test against SQLite — on a temporary file each, and in memory —
//! plus what only SQLite shows: two stores (as two processes) on one file, and
//! the ordering proof at a smaller scale.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use store::contract::{self, event, Harness};
use store::{EventStore, ExpectedVersion, Position, SqliteEventStore, StoreError};
use tempfile::TempDir;

/// A store on a file in a directory of its own, removed afterwards.
struct SqliteFile {
    dir: TempDir,
    store: SqliteEventStore,
}

impl SqliteFile {
    fn url(dir: &TempDir) -> String {
        format!("sqlite://{}", dir.path().join("events.db").display())
    }

    /// Another store on the same file, as a second process would open it.
    async fn second_store(&self) -> SqliteEventStore {
        SqliteEventStore::connect(&Self::url(&self.dir))
            .await
            .expect("second store")
    }
}

#[async_trait]
impl Harness for SqliteFile {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteEventStore::connect(&Self::url(&dir))
            .await
            .expect("open SQLite file");
        SqliteFile { dir, store }
    }

    fn store(&self) -> &dyn EventStore {
        &self.store
    }

    async fn finish(self) {
        self.store.close().await;
    }
}

store::event_store_contract!(SqliteFile);

/// The same contract on `sqlite::memory:`, where reads and writes share one
/// connection.
mod in_memory {
    use super::*;

    struct Memory(SqliteEventStore);

    #[async_trait]
    impl Harness for Memory {
        async fn start() -> Self {
            Memory(
                SqliteEventStore::connect("sqlite::memory:")
                    .await
                    .expect("open in-memory store"),
            )
        }

        fn store(&self) -> &dyn EventStore {
            &self.0
        }

        async fn finish(self) {
            self.0.close().await;
        }
    }

    store::event_store_contract!(Memory);
}

/// Every stored hash chains to its stream's previous one, grouped appends
/// included, and each append's answer carries the stored hashes.
#[tokio::test]
async fn stored_hashes_chain_each_stream() {
    let harness = SqliteFile::start().await;
    contract::stored_hashes_chain_each_stream(&harness.store).await;
    harness.finish().await;
}

/// 4 writers racing 2,000 appends through the single writer connection, with a
/// subscriber following from the start: one gap-free order, each event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_writers_and_a_live_subscriber_agree_on_one_gap_free_order() {
    let harness = SqliteFile::start().await;
    let elapsed = contract::concurrent_writers_and_a_live_subscriber_agree_on_one_order(
        harness.store.clone(),
        4,
        500,
        50,
    )
    .await;
    harness.finish().await;
    eprintln!("sqlite: 2,000 events from 4 concurrent writers delivered in {elapsed:.2?}");
}

/// Two stores on one file (two processes, in effect) serialise on SQLite's write
/// lock: racing `Exact` appends from both still have exactly one winner, and the
/// losers get typed conflicts rather than "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_serialise_their_appends() {
    let harness = SqliteFile::start().await;
    let other = harness.second_store().await;
    harness
        .store
        .append("race", ExpectedVersion::NoStream, vec![event(0)])
        .await
        .expect("first");
    let stores = [&harness.store, &other];
    let results = futures::future::join_all((0..10u64).map(|n| {
        stores[n as usize % 2].append("race", ExpectedVersion::Exact(0), vec![event(n + 1)])
    }))
    .await;
    other.close().await;
    harness.finish().await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    for result in results.iter().filter(|r| r.is_err()) {
        assert!(
            matches!(
                result,
                Err(StoreError::Conflict {
                    actual: Some(1),
                    ..
                })
            ),
            "{result:?}"
        );
    }
}

/// A subscriber cannot be told of another process's appends, so it re-checks
/// about once a second: the event still arrives, well within 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_sees_another_stores_appends_by_rechecking() {
    let harness = SqliteFile::start().await;
    let other = harness.second_store().await;
    let mut subscription = harness.store.subscribe_all(Position::START);
    let idle = tokio::time::timeout(Duration::from_millis(200), subscription.next()).await;
    let sent = event(0);
    other
        .append("s", ExpectedVersion::NoStream, vec![sent.clone()])
        .await
        .expect("append through the other store");
    let received = tokio::time::timeout(Duration::from_secs(5), subscription.next()).await;
    other.close().await;
    harness.finish().await;
    assert!(idle.is_err(), "nothing to deliver yet: {idle:?}");
    let received = received
        .expect("seen within 5 s")
        .expect("item")
        .expect("event");
    assert_eq!(received.id, sent.id);
}

/// A row whose payload is not JSON reads as `Corrupt` naming it, never a panic,
/// and a subscription yields that error and ends.
#[tokio::test]
async fn a_stored_row_with_malformed_json_reads_as_corrupt() {
    let harness = SqliteFile::start().await;
    harness
        .store
        .append("s", ExpectedVersion::NoStream, vec![event(0)])
        .await
        .expect("append");
    sqlx::query("UPDATE events SET data = '{not json'")
        .execute(harness.store.writer_pool())
        .await
        .expect("tamper");
    let read = harness.store.read_all(Position::START, 10).await;
    let mut subscription = harness.store.subscribe_all(Position::START);
    let first = subscription.next().await;
    let after_error = subscription.next().await;
    harness.finish().await;
    assert!(matches!(read, Err(StoreError::Corrupt(_))), "{read:?}");
    assert!(
        matches!(first, Some(Err(StoreError::Corrupt(_)))),
        "{first:?}"
    );
    assert!(
        after_error.is_none(),
        "the subscription ends after its error"
    );
}

/// A file database outlives its store: reopening finds the events, and the
/// migrations do not run twice.
#[tokio::test]
async fn reopening_a_file_keeps_its_events() {
    let harness = SqliteFile::start().await;
    harness
        .store
        .append("s", ExpectedVersion::NoStream, vec![event(0)])
        .await
        .expect("append");
    let reopened = harness.second_store().await;
    harness.store.close().await;
    let events = reopened.read_stream("s", 0, 10).await;
    reopened.close().await;
    harness.finish().await;
    assert_eq!(events.expect("read").len(), 1);
}

/// Commits reach the database file by a checkpoint on the store's own
/// schedule, not only when 1,000 WAL pages have piled up: after a few
/// dozen appends (far fewer pages than that) the file grows within
/// seconds, while the store stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_checkpointed_into_the_file_soon_after() {
    let harness = SqliteFile::start().await;
    let file = harness.dir.path().join("events.db");
    let size = || std::fs::metadata(&file).expect("database file").len();
    // Whatever opening the store wrote (the migrations) is checkpointed first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = size();
    for n in 0..40u64 {
        let mut e = event(n);
        e.data = serde_json::json!({ "n": n, "text": "x".repeat(3_000) });
        harness
            .store
            .append(&format!("s-{n}"), ExpectedVersion::NoStream, vec![e])
            .await
            .expect("append");
    }
    let grown = tokio::time::timeout(Duration::from_secs(10), async {
        while size() <= before {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        grown.is_ok(),
        "the database file is still {before} bytes: nothing was checkpointed"
    );
    harness.finish().await;
}
