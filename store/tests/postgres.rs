//! Every contract test against PostgreSQL (a fresh schema each), plus what only
//! PostgreSQL can show: writers that bypass the store's lock, and bad connections.

#[path = "support/postgres.rs"]
mod support;

use std::time::Duration;

use sqlx::{Acquire, PgPool};
use store::contract::{event, Harness};
use store::{EventStore, ExpectedVersion, NewEvent, PostgresEventStore, StoreError};
use support::PgSchema;

store::event_store_contract!(support::PgSchema);

/// Inserts `event` as (`stream`, `version`) in an open transaction that commits
/// only after `append` has started and is blocked on the row, then returns what
/// the append answered: the unique-violation path, made deterministic.
async fn append_racing_an_outside_writer(
    harness: &PgSchema,
    outside: (&str, u64, &NewEvent),
    append: (&str, ExpectedVersion, Vec<NewEvent>),
) -> Result<store::AppendResult, StoreError> {
    let pool: &PgPool = harness.store.pool();
    let mut conn = pool.acquire().await.expect("acquire");
    let mut tx = conn.begin().await.expect("begin");
    let (stream, version, e) = outside;
    sqlx::query(
        "INSERT INTO events (id, stream_id, version, event_type, schema_version, data, metadata) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(e.id)
    .bind(stream)
    .bind(version as i64)
    .bind(&e.event_type)
    .bind(e.schema_version)
    .bind(&e.data)
    .bind(&e.metadata)
    .execute(&mut *tx)
    .await
    .expect("outside insert");

    let store = harness.store.clone();
    let (stream, expected, events) = append;
    let stream = stream.to_string();
    let racing = tokio::spawn(async move { store.append(&stream, expected, events).await });
    // Long enough for the append to pass its checks and block on the index.
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.commit().await.expect("outside commit");
    racing.await.expect("append task")
}

/// Every stored hash chains to its stream's previous one, batched appends
/// included, and each append's answer carries the stored hashes.
#[tokio::test]
async fn stored_hashes_chain_each_stream() {
    let harness = PgSchema::start().await;
    store::contract::stored_hashes_chain_each_stream(&harness.store).await;
    harness.finish().await;
}

/// A writer outside the store taking the version we were about to write is a
/// typed conflict, not "unavailable".
#[tokio::test]
async fn an_outside_writer_taking_our_version_is_a_conflict() {
    let harness = PgSchema::start().await;
    let outcome = append_racing_an_outside_writer(
        &harness,
        ("s", 0, &event(0)),
        ("s", ExpectedVersion::NoStream, vec![event(1)]),
    )
    .await;
    harness.finish().await;
    assert!(
        matches!(
            outcome,
            Err(StoreError::Conflict {
                actual: Some(0),
                expected: ExpectedVersion::NoStream,
                ..
            })
        ),
        "{outcome:?}"
    );
}

/// An outside writer storing our event id in another stream is an idempotency
/// mismatch; storing exactly our append makes ours a successful repeat.
#[tokio::test]
async fn an_outside_writer_storing_our_ids_is_a_mismatch_or_a_repeat() {
    let harness = PgSchema::start().await;
    let e = event(0);
    let elsewhere = append_racing_an_outside_writer(
        &harness,
        ("other", 0, &e),
        ("s", ExpectedVersion::Any, vec![e.clone()]),
    )
    .await;
    let same = event(1);
    let repeat = append_racing_an_outside_writer(
        &harness,
        ("s", 0, &same),
        ("s", ExpectedVersion::NoStream, vec![same.clone()]),
    )
    .await;
    let stream = harness.store.read_stream("s", 0, 10).await;
    harness.finish().await;
    assert!(
        matches!(elsewhere, Err(StoreError::IdempotencyMismatch { .. })),
        "{elsewhere:?}"
    );
    let repeat = repeat.expect("a full repeat succeeds");
    let stream = stream.expect("read");
    assert_eq!(stream.len(), 1);
    assert_eq!(repeat.last_version, 0);
    assert_eq!(repeat.last_position, stream[0].position);
}

/// No server at the address: `Unavailable`, quickly, not a hang or a panic.
#[tokio::test]
async fn connecting_where_no_server_answers_is_unavailable() {
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        PostgresEventStore::connect("postgres://postgres@127.0.0.1:1/test"),
    )
    .await
    .expect("connect gives up");
    assert!(matches!(result, Err(StoreError::Unavailable(_))));
}

/// Schema names go into SQL and channel names, so only plain ones are taken.
#[tokio::test]
async fn a_schema_name_that_needs_quoting_is_invalid() {
    let result =
        PostgresEventStore::connect_with_schema(&support::url(), "bad\"; DROP TABLE x; --").await;
    assert!(matches!(result, Err(StoreError::Invalid(_))));
}

/// Connecting twice to one schema finds the tables already migrated and the
/// events already there.
#[tokio::test]
async fn reconnecting_to_a_schema_keeps_its_events() {
    let schema = support::fresh_schema();
    let first = support::connect(&schema).await;
    first
        .append("s", ExpectedVersion::NoStream, vec![event(0)])
        .await
        .expect("append");
    first.close().await;
    let second = support::connect(&schema).await;
    let events = second.read_stream("s", 0, 10).await;
    second.close().await;
    support::drop_schema(&schema).await;
    assert_eq!(events.expect("read").len(), 1);
}

/// Appends queued together are written in one transaction; when one of them
/// breaks a uniqueness mid-batch, the others are still written and only that
/// one reports its conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_append_failing_inside_a_batch_does_not_fail_the_others() {
    let harness = PgSchema::start().await;
    let pool: &PgPool = harness.store.pool();
    let mut conn = pool.acquire().await.expect("acquire");
    let mut tx = conn.begin().await.expect("begin");
    let outside = event(0);
    sqlx::query(
        "INSERT INTO events (id, stream_id, version, event_type, schema_version, data, metadata) \
         VALUES ($1, 'contested', 0, $2, $3, $4, $5)",
    )
    .bind(outside.id)
    .bind(&outside.event_type)
    .bind(outside.schema_version)
    .bind(&outside.data)
    .bind(&outside.metadata)
    .execute(&mut *tx)
    .await
    .expect("outside insert");

    let appends = (0..6u64).map(|n| {
        let store = harness.store.clone();
        let stream = if n == 2 {
            "contested".to_string()
        } else {
            format!("free-{n}")
        };
        tokio::spawn(async move {
            store
                .append(&stream, ExpectedVersion::NoStream, vec![event(n + 1)])
                .await
        })
    });
    let appends: Vec<_> = appends.collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.commit().await.expect("outside commit");
    let mut results = Vec::new();
    for task in appends {
        results.push(task.await.expect("append task"));
    }
    let log = harness.store.read_all(store::Position::START, 100).await;
    harness.finish().await;

    for (n, result) in results.iter().enumerate() {
        if n == 2 {
            assert!(
                matches!(
                    result,
                    Err(StoreError::Conflict {
                        actual: Some(0),
                        ..
                    })
                ),
                "{result:?}"
            );
        } else {
            assert!(result.is_ok(), "append {n}: {result:?}");
        }
    }
    assert_eq!(
        log.expect("read").len(),
        6,
        "five appends and the outside row"
    );
}

/// Every connection of the store plans each statement with its parameters: a
/// generic plan cached while the log was small (a sequential scan) would be
/// kept for as long as nothing analyses the table, which on a server without
/// autovacuum is forever, and every append would then read the whole log.
#[tokio::test]
async fn every_connection_plans_statements_with_their_parameters() {
    let schema = support::fresh_schema();
    let store = support::connect(&schema).await;
    let mut modes = Vec::new();
    // More than one connection: the setting must be the pool's, not a session's.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut conn = store.pool().acquire().await.expect("a connection");
        let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
            .fetch_one(&mut *conn)
            .await
            .expect("show plan_cache_mode");
        modes.push(mode);
        held.push(conn);
    }
    drop(held);
    store.close().await;
    support::drop_schema(&schema).await;
    assert_eq!(modes, vec!["force_custom_plan"; 3]);
}
