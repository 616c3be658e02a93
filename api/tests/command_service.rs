//! The command path against a real (in-memory SQLite) event store: expected
//! versions, retries on conflict, idempotency keys, references, relations.

use std::sync::Arc;

use api::command_service::{CommandError, CommandRequest, CommandService};
use chrono::Utc;
use domain::{Actor, Command, Role, TicketPriority};
use store::Position;
use uuid::Uuid;

async fn service() -> CommandService {
    let store = store::sqlite::SqliteEventStore::connect("sqlite::memory:")
        .await
        .expect("in-memory store");
    CommandService::new(Arc::new(store))
}

fn admin() -> Actor {
    Actor {
        user_id: "ada".into(),
        roles: vec![Role::Admin],
        teams: vec![],
    }
}

async fn create(service: &CommandService, request: &str, key: Option<&str>) -> domain::Ticket {
    service
        .create(
            admin(),
            request.into(),
            None,
            TicketPriority::Medium,
            "support".into(),
            vec![],
            key.map(str::to_string),
            Utc::now(),
        )
        .await
        .expect("create")
        .ticket
}

async fn log_len(service: &CommandService) -> usize {
    service
        .store()
        .read_all(Position::START, 100_000)
        .await
        .expect("read log")
        .len()
}

fn tag(id: Uuid, tag: &str) -> CommandRequest {
    CommandRequest::new(id, Command::AddTag { tag: tag.into() }, admin())
}

/// A stale expected version is a typed conflict and appends nothing.
#[tokio::test]
async fn a_stale_expected_version_is_a_conflict_and_appends_nothing() {
    let service = service().await;
    let ticket = create(&service, "Printer on fire", None).await;
    service.execute(tag(ticket.id, "one")).await.expect("tag");
    let before = log_len(&service).await;

    let mut stale = tag(ticket.id, "two");
    stale.expected_version = Some(0);
    let err = service.execute(stale).await.expect_err("stale version");
    assert!(
        matches!(
            err,
            CommandError::Conflict {
                expected: Some(0),
                actual: Some(1)
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "CONFLICT");
    assert_eq!(log_len(&service).await, before);

    let mut fresh = tag(ticket.id, "two");
    fresh.expected_version = Some(1);
    let done = service.execute(fresh).await.expect("current version");
    assert_eq!(done.ticket.version, 2);
}

/// Without an expected version, writers racing on one ticket all land: the losers
/// reload, decide again and retry.
#[tokio::test]
async fn concurrent_commands_without_expected_version_all_land() {
    let service = service().await;
    let ticket = create(&service, "Busy ticket", None).await;
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let service = service.clone();
            tokio::spawn(async move { service.execute(tag(ticket.id, &format!("t{i}"))).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("join").expect("command lands");
    }
    let loaded = service.load(ticket.id).await.expect("load");
    let state = loaded.state.expect("ticket");
    assert_eq!(state.tags, vec!["t0", "t1", "t2", "t3"]);
    assert_eq!(state.version, 4);
}

/// A retried call with the same idempotency key returns the first call's events
/// and appends nothing.
#[tokio::test]
async fn an_idempotent_retry_returns_the_first_result_and_appends_nothing() {
    let service = service().await;
    let ticket = create(&service, "Keyed", None).await;
    let mut first = tag(ticket.id, "urgent");
    first.idempotency_key = Some("k-1".into());
    let one = service.execute(first.clone()).await.expect("first");
    assert_eq!(one.events.len(), 1);
    // Something else happens in between: the retry must not re-decide.
    service
        .execute(tag(ticket.id, "other"))
        .await
        .expect("other");
    let before = log_len(&service).await;

    let two = service.execute(first).await.expect("retry");
    assert_eq!(log_len(&service).await, before);
    assert_eq!(two.events, one.events);
    assert_eq!(two.ticket.version, one.ticket.version);
}

/// An idempotency key used for one command cannot be replayed as another.
#[tokio::test]
async fn a_key_reused_for_another_command_is_refused() {
    let service = service().await;
    let ticket = create(&service, "Keyed", None).await;
    let mut first = tag(ticket.id, "urgent");
    first.idempotency_key = Some("k-2".into());
    service.execute(first).await.expect("first");
    let mut other = CommandRequest::new(
        ticket.id,
        Command::ChangePriority {
            priority: TicketPriority::High,
        },
        admin(),
    );
    other.idempotency_key = Some("k-2".into());
    let err = service.execute(other).await.expect_err("reused key");
    assert_eq!(err.code(), "INVALID");
}

/// A retried create with the same key finds the first ticket and its reference,
/// and burns no new reference number.
#[tokio::test]
async fn an_idempotent_create_returns_the_same_ticket() {
    let service = service().await;
    let one = create(&service, "Once", Some("create-1")).await;
    let two = create(&service, "Once", Some("create-1")).await;
    assert_eq!(one.id, two.id);
    assert_eq!(one.reference, "TCK-000001");
    assert_eq!(two.reference, "TCK-000001");
    let next = create(&service, "Next", None).await;
    assert_eq!(next.reference, "TCK-000002");
}

/// Concurrent creates get distinct references from one unbroken sequence.
#[tokio::test]
async fn concurrent_creates_get_distinct_sequential_references() {
    let service = service().await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let service = service.clone();
            tokio::spawn(async move { create(&service, &format!("ticket {i}"), None).await })
        })
        .collect();
    let mut refs = Vec::new();
    for task in tasks {
        refs.push(task.await.expect("join").reference);
    }
    refs.sort();
    let want: Vec<String> = (1..=8).map(|n| format!("TCK-{n:06}")).collect();
    assert_eq!(refs, want);
    let id = service
        .references()
        .resolve("TCK-000003")
        .await
        .expect("resolve")
        .expect("known reference");
    let loaded = service.load(id).await.expect("load");
    assert_eq!(loaded.state.expect("ticket").reference, "TCK-000003");
}

/// Relating records the relation on both tickets; unrelating removes both sides.
#[tokio::test]
async fn relating_is_recorded_on_both_tickets() {
    let service = service().await;
    let a = create(&service, "A", None).await;
    let b = create(&service, "B", None).await;
    let related = service.related_ticket(&admin(), b.id).await.unwrap();
    let relate = Command::Relate {
        related_id: b.id,
        related,
    };
    let done = service
        .execute(CommandRequest::new(a.id, relate, admin()))
        .await
        .expect("relate");
    assert_eq!(done.ticket.related, vec![b.id]);
    let b_now = service.load(b.id).await.unwrap().state.unwrap();
    assert_eq!(b_now.related, vec![a.id]);

    let related = service.related_ticket(&admin(), a.id).await.unwrap();
    let unrelate = Command::Unrelate {
        related_id: a.id,
        related,
    };
    service
        .execute(CommandRequest::new(b.id, unrelate, admin()))
        .await
        .expect("unrelate");
    assert!(service
        .load(a.id)
        .await
        .unwrap()
        .state
        .unwrap()
        .related
        .is_empty());
    assert!(service
        .load(b.id)
        .await
        .unwrap()
        .state
        .unwrap()
        .related
        .is_empty());
}

/// Relating to a ticket that does not exist is refused and appends nothing.
#[tokio::test]
async fn relating_to_a_missing_ticket_is_refused() {
    let service = service().await;
    let a = create(&service, "A", None).await;
    let before = log_len(&service).await;
    let missing = Uuid::new_v4();
    let related = service.related_ticket(&admin(), missing).await.unwrap();
    let relate = CommandRequest::new(
        a.id,
        Command::Relate {
            related_id: missing,
            related,
        },
        admin(),
    );
    let err = service.execute(relate).await.expect_err("missing ticket");
    assert_eq!(err.code(), "INVALID");
    assert_eq!(log_len(&service).await, before);
}

/// A command on a ticket that does not exist is NOT_FOUND and appends nothing.
#[tokio::test]
async fn a_command_on_a_missing_ticket_is_not_found() {
    let service = service().await;
    let err = service
        .execute(tag(Uuid::new_v4(), "x"))
        .await
        .expect_err("missing");
    assert_eq!(err.code(), "NOT_FOUND");
    assert_eq!(log_len(&service).await, 0);
}

/// Two services on one store, as two server processes: each caches the states
/// it saw. Commands on a state the other service has moved on decide on the
/// fresh stream: the stale append conflicts and is retried, and the final
/// ticket holds every change at consecutive versions.
#[tokio::test]
async fn a_stale_cached_state_is_reloaded_when_the_append_conflicts() {
    let first = service().await;
    let second = CommandService::new(first.store().clone());
    let ticket = create(&first, "Printer on fire", None).await;
    first.execute(tag(ticket.id, "one")).await.expect("tag one");
    second
        .execute(tag(ticket.id, "two"))
        .await
        .expect("tag two");

    let outcome = first
        .execute(tag(ticket.id, "three"))
        .await
        .expect("tag three on a stale cache");
    assert_eq!(outcome.ticket.tags, vec!["one", "three", "two"]);
    assert_eq!(outcome.ticket.version, 3);
    assert_eq!(outcome.events.len(), 1);
    assert_eq!(outcome.events[0].version, 3);
    let reloaded = first.load(ticket.id).await.expect("load");
    assert_eq!(reloaded.state.expect("ticket").tags, outcome.ticket.tags);
}

/// A stale cached state must not refuse a command or call it a no-op: removing
/// a tag that only the other service added is done, not reported as nothing to
/// change, and an expected version the cache does not know yet is no conflict.
#[tokio::test]
async fn a_stale_cached_state_neither_refuses_nor_skips_a_command() {
    let first = service().await;
    let second = CommandService::new(first.store().clone());
    let ticket = create(&first, "Printer on fire", None).await;
    second
        .execute(tag(ticket.id, "two"))
        .await
        .expect("tag two");

    let remove = CommandRequest::new(ticket.id, Command::RemoveTag { tag: "two".into() }, admin());
    let outcome = first
        .execute(remove)
        .await
        .expect("remove on a stale cache");
    assert_eq!(outcome.events.len(), 1, "the tag was there: one event");
    assert!(outcome.ticket.tags.is_empty());

    second
        .execute(tag(ticket.id, "three"))
        .await
        .expect("tag three");
    let mut expected = tag(ticket.id, "four");
    expected.expected_version = Some(3);
    let outcome = first
        .execute(expected)
        .await
        .expect("expected version 3 is current");
    assert_eq!(outcome.ticket.version, 4);
}
