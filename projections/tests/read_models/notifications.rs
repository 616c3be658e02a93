//! Inboxes: who hears of what, unread counts, mark-read and rebuilds.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::{Actor, Command, Role, TicketPriority};
use projections::notifications::{
    mark_all_read, mark_read, mark_unread, notification, notifications, unread_count,
};
use projections::{NotificationsProjection, ReadDb};
use store::{EventStore, ExpectedVersion, NewEvent};
use uuid::Uuid;

use crate::commands::Script;
use crate::harness::dump_tables;
use crate::harness::{on_postgres_server, postgres_url, run_until_caught_up, Backend, Kind};

const PROJECTION_TABLES: [&str; 4] = [
    "notifications",
    "notification_counts",
    "notification_tickets",
    "notification_users",
];

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap()
}

pub async fn record_profile(store: &dyn EventStore, user: &str, roles: &[&str], teams: &[&str]) {
    let event = NewEvent {
        id: Uuid::new_v4(),
        event_type: "UserProfileRecorded".into(),
        schema_version: 1,
        data: serde_json::json!({"id": user, "roles": roles, "teams": teams}),
        metadata: serde_json::json!({}),
    };
    store
        .append(&format!("user-{user}"), ExpectedVersion::Any, vec![event])
        .await
        .unwrap();
}

/// Decides `command` on the ticket's current stream and appends the events.
pub async fn act(
    store: &dyn EventStore,
    id: Uuid,
    actor: &Actor,
    command: Command,
    at: DateTime<Utc>,
) {
    let stream = domain::stream_name(id);
    let recorded = store::read_whole_stream(store, &stream).await.unwrap();
    let events: Vec<_> = recorded
        .iter()
        .map(|e| domain::decode(&e.event_type, e.schema_version, &e.data).unwrap())
        .collect();
    let state = domain::fold(&events);
    let decided =
        domain::decide(state.as_ref(), &command, actor, at).expect("the command is allowed");
    let expected = match &state {
        None => ExpectedVersion::NoStream,
        Some(t) => ExpectedVersion::Exact(t.version),
    };
    let new = decided
        .iter()
        .map(|e| {
            let encoded = domain::encode(e);
            NewEvent {
                id: Uuid::new_v4(),
                event_type: encoded.event_type.into(),
                schema_version: encoded.schema_version,
                data: encoded.data,
                metadata: serde_json::json!({}),
            }
        })
        .collect();
    store.append(&stream, expected, new).await.unwrap();
}

pub fn alice() -> Actor {
    Actor::new("alice", vec![Role::Requester], vec![])
}
pub fn bob() -> Actor {
    Actor::new("bob", vec![Role::Agent], vec!["support".into()])
}
pub fn dave() -> Actor {
    Actor::new("dave", vec![Role::Admin], vec![])
}

pub async fn profiles(store: &dyn EventStore) {
    record_profile(store, "alice", &["REQUESTER"], &[]).await;
    record_profile(store, "bob", &["AGENT"], &["support"]).await;
    record_profile(store, "carol", &["AGENT"], &["billing"]).await;
    record_profile(store, "dave", &["ADMIN"], &[]).await;
}

pub fn create(id: Uuid, priority: TicketPriority) -> Command {
    Command::Create {
        ticket_id: id,
        reference: "TCK-000042".into(),
        request: "Printer on fire".into(),
        description: None,
        priority,
        queue: "support".into(),
        tags: vec![],
    }
}

async fn titles(db: &ReadDb, user: &str) -> Vec<String> {
    let page = notifications(db, user, false, 100, None).await.unwrap();
    page.items.iter().rev().map(|n| n.title.clone()).collect()
}

crate::on_every_backend! {
    /// The creator, assignee and watchers hear of a ticket's events, never
    /// the user who caused one, and a requester never hears of an internal
    /// note; an assignment to the recipient requires interaction.
    notifications_go_to_the_involved_users_but_never_the_actor
}

async fn notifications_go_to_the_involved_users_but_never_the_actor(kind: Kind) {
    let backend = Backend::new(kind).await;
    let store = &*backend.store;
    profiles(store).await;
    let id = Uuid::from_u128(42);
    let at = |m: i64| t0() + Duration::minutes(m);
    act(
        store,
        id,
        &alice(),
        create(id, TicketPriority::Medium),
        at(0),
    )
    .await;
    let assign = Command::Assign {
        assignee_id: "bob".into(),
        assignee_roles: Some(vec![Role::Agent]),
    };
    act(store, id, &dave(), assign, at(1)).await;
    act(
        store,
        id,
        &dave(),
        Command::Watch {
            user_id: "carol".into(),
        },
        at(2),
    )
    .await;
    let note = Command::Comment {
        comment_id: Uuid::from_u128(1),
        body: "Call facilities".into(),
        internal: true,
    };
    act(store, id, &bob(), note, at(3)).await;
    let reply = Command::Comment {
        comment_id: Uuid::from_u128(2),
        body: "On my way".into(),
        internal: false,
    };
    act(store, id, &bob(), reply, at(4)).await;
    let resolve = Command::ChangeStatus {
        status: domain::TicketStatus::Resolved,
        comment: None,
    };
    act(store, id, &bob(), resolve, at(5)).await;

    let projection = NotificationsProjection::new();
    let runner = backend.runner(&backend.db).with_batch_size(3);
    run_until_caught_up(&runner, store, Arc::new(projection))
        .await
        .unwrap();
    let db = &backend.db;

    assert_eq!(
        titles(db, "alice").await,
        [
            "TCK-000042 was assigned to bob",
            "New comment on TCK-000042",
            "TCK-000042 is now RESOLVED"
        ]
    );
    assert_eq!(
        titles(db, "bob").await,
        ["New ticket TCK-000042 in support", "Ticket assigned to you"],
        "bob, an agent of the queue, hears of the new ticket and of the assignment, \
         not of what he did himself"
    );
    assert_eq!(
        titles(db, "carol").await,
        [
            "You are now watching TCK-000042",
            "New internal note on TCK-000042",
            "New comment on TCK-000042",
            "TCK-000042 is now RESOLVED"
        ]
    );
    assert!(titles(db, "dave").await.is_empty(), "dave is not involved");

    let bobs = notifications(db, "bob", false, 10, None).await.unwrap();
    let assigned = &bobs.items[0];
    assert!(assigned.require_interaction);
    assert_eq!(
        assigned.body,
        "TCK-000042 was assigned to you: Printer on fire"
    );
    assert_eq!(assigned.url, format!("/support/tickets/{id}"));
    assert_eq!(assigned.tag, format!("ticket-{id}"));
    assert_eq!(assigned.event_type, "ASSIGNED");

    // Paging, newest first, and unread counts with mark-read.
    let first = notifications(db, "carol", false, 3, None).await.unwrap();
    assert_eq!(first.items.len(), 3);
    assert!(first.has_next_page);
    assert_eq!(first.unread_count, 4);
    let rest = notifications(db, "carol", false, 3, first.end_cursor.as_deref())
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(!rest.has_next_page);
    assert_eq!(rest.items[0].title, "You are now watching TCK-000042");

    let newest = first.items[0].id;
    assert_eq!(mark_read(db, "carol", &[newest, newest]).await.unwrap(), 1);
    assert_eq!(
        mark_read(db, "alice", &[newest]).await.unwrap(),
        0,
        "not alice's"
    );
    assert_eq!(unread_count(db, "carol").await.unwrap(), 3);
    let unread = notifications(db, "carol", true, 10, None).await.unwrap();
    assert_eq!(unread.items.len(), 3);
    assert!(unread.items.iter().all(|n| !n.read && n.id != newest));
    assert_eq!(mark_all_read(db, "carol").await.unwrap(), 3);
    assert_eq!(unread_count(db, "carol").await.unwrap(), 0);
    assert!(notifications(db, "carol", false, 10, None)
        .await
        .unwrap()
        .items
        .iter()
        .all(|n| n.read));
    assert_eq!(unread_count(db, "alice").await.unwrap(), 3);
    // Unread again: only by its recipient, once.
    assert_eq!(mark_unread(db, "alice", &[newest]).await.unwrap(), 0);
    assert_eq!(
        mark_unread(db, "carol", &[newest, newest]).await.unwrap(),
        1
    );
    assert_eq!(mark_unread(db, "carol", &[newest]).await.unwrap(), 0);
    assert_eq!(unread_count(db, "carol").await.unwrap(), 1);
    backend.cleanup().await;
}

crate::on_every_backend! {
    /// A rebuild from the log gives the same inboxes, in a fresh database and
    /// in place, and read flags survive an in-place rebuild.
    a_rebuild_of_notifications_gives_identical_tables_and_keeps_read_flags
}

async fn a_rebuild_of_notifications_gives_identical_tables_and_keeps_read_flags(kind: Kind) {
    let mut backend = Backend::new(kind).await;
    let mut script = Script::new(21, 10);
    script.run(&*backend.store, 300).await;
    let runner = backend.runner(&backend.db).with_batch_size(32);
    run_until_caught_up(
        &runner,
        &*backend.store,
        Arc::new(NotificationsProjection::new()),
    )
    .await
    .unwrap();
    let live = dump_tables(&backend.db, &PROJECTION_TABLES).await;
    assert!(!live["notifications"].is_empty());
    let marked = mark_all_read(&backend.db, "agent-1").await.unwrap();

    let fresh = backend.fresh_db().await;
    backend
        .runner(&fresh)
        .catch_up(Arc::new(NotificationsProjection::new()))
        .await
        .unwrap();
    assert_eq!(dump_tables(&fresh, &PROJECTION_TABLES).await, live);

    for table in PROJECTION_TABLES {
        sqlx_execute(&backend.db, &format!("DELETE FROM {table}")).await;
    }
    sqlx_execute(
        &backend.db,
        "DELETE FROM projection_checkpoints WHERE name = 'notifications'",
    )
    .await;
    runner
        .catch_up(Arc::new(NotificationsProjection::new()))
        .await
        .unwrap();
    assert_eq!(dump_tables(&backend.db, &PROJECTION_TABLES).await, live);

    // The same through the online rebuild (shadow tables swapped in).
    projections::rebuild::rebuild(
        backend.store.clone(),
        &backend.db,
        Arc::new(NotificationsProjection::new()),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(dump_tables(&backend.db, &PROJECTION_TABLES).await, live);
    let page = notifications(&backend.db, "agent-1", false, 1000, None)
        .await
        .unwrap();
    assert_eq!(page.items.iter().filter(|n| n.read).count() as u64, marked);
    assert_eq!(page.unread_count, 0);
    backend.cleanup().await;
}

async fn sqlx_execute(db: &ReadDb, sql: &str) {
    try_execute(db, sql).await.unwrap();
}

async fn count(db: &ReadDb, sql: &str) -> i64 {
    match db {
        ReadDb::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        ReadDb::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

async fn try_execute(db: &ReadDb, sql: &str) -> Result<(), sqlx::Error> {
    match db {
        ReadDb::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
        ReadDb::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
    }
}

crate::on_every_backend! {
    /// A notification is found by its id in its recipient's inbox however far
    /// back it is, with its read flag, and never through another user's inbox.
    a_notification_is_found_by_id_in_its_recipients_inbox_only
}

async fn a_notification_is_found_by_id_in_its_recipients_inbox_only(kind: Kind) {
    let backend = Backend::new(kind).await;
    let store = &*backend.store;
    profiles(store).await;
    let id = Uuid::from_u128(7);
    let at = |m: i64| t0() + Duration::minutes(m);
    act(store, id, &alice(), create(id, TicketPriority::Low), at(0)).await;
    // More notifications to alice than one page of the inbox holds.
    for n in 0..120 {
        let reply = Command::Comment {
            comment_id: Uuid::from_u128(1000 + n),
            body: format!("Reply {n}"),
            internal: false,
        };
        act(store, id, &bob(), reply, at(1 + n as i64)).await;
    }
    let runner = backend.runner(&backend.db).with_batch_size(50);
    run_until_caught_up(&runner, store, Arc::new(NotificationsProjection::new()))
        .await
        .unwrap();
    let db = &backend.db;
    let mut oldest = None;
    let mut after: Option<String> = None;
    loop {
        let page = notifications(db, "alice", false, 100, after.as_deref())
            .await
            .unwrap();
        oldest = page.items.last().cloned().or(oldest);
        if !page.has_next_page {
            break;
        }
        after = page.end_cursor;
    }
    let oldest = oldest.expect("alice has notifications");
    assert!(oldest.body.contains("Reply 0"), "{oldest:?}");

    let found = notification(db, "alice", oldest.id).await.unwrap();
    assert_eq!(found.as_ref(), Some(&oldest));
    assert_eq!(notification(db, "bob", oldest.id).await.unwrap(), None);
    assert_eq!(
        notification(db, "alice", Uuid::new_v4()).await.unwrap(),
        None
    );
    mark_read(db, "alice", &[oldest.id]).await.unwrap();
    let read = notification(db, "alice", oldest.id).await.unwrap().unwrap();
    assert!(read.read);
    backend.cleanup().await;
}

crate::on_every_backend! {
    /// Migration 0006 stops storing a notification's `url` and `tag`; one
    /// stored before it keeps its row without them (its links are made from
    /// its ticket when read); migration 0007 then clears the notifications
    /// and their checkpoint, so the runner re-projects them with reasons,
    /// and keeps the users' read flags, which apply to the same ids again.
    notifications_survive_0006_and_0007_re_projects_them_keeping_read_flags
}
async fn notifications_survive_0006_and_0007_re_projects_them_keeping_read_flags(kind: Kind) {
    // The migrations up to 0005, as files of their own: a database as the
    // release before 0006 left it.
    let sub = match kind {
        Kind::Sqlite => "sqlite",
        Kind::Postgres => "postgres",
    };
    let old = tempfile::tempdir().unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../migrations")
        .join(sub);
    let mut copied = 0;
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.as_str() < "0006" {
            std::fs::copy(&path, old.path().join(&name)).unwrap();
            copied += 1;
        }
    }
    assert_eq!(copied, 5);
    let before_0006 = sqlx::migrate::Migrator::new(old.path()).await.unwrap();
    // And through 0006 only: 0007 clears the notifications to re-project them.
    let through = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.as_str() < "0007" {
            std::fs::copy(&path, through.path().join(&name)).unwrap();
        }
    }
    let migrator = sqlx::migrate::Migrator::new(through.path()).await.unwrap();

    let (id, ticket) = (Uuid::new_v4(), Uuid::new_v4());
    const INSERT: &str = "INSERT INTO notifications (id, recipient, event_id, position, \
        ticket_id, event_type, title, body, url, tag, require_interaction, created_at) \
        VALUES ($1, 'bob', $2, 7, $3, 'ASSIGNED', 'Ticket assigned to you', 'TCK-1 was \
        assigned to you', $4, $5, $6, $7)";
    let (url, tag) = (
        format!("/support/tickets/{ticket}"),
        format!("ticket-{ticket}"),
    );
    let dir = tempfile::tempdir().unwrap();
    let (db, schema) = match kind {
        Kind::Sqlite => {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(dir.path().join("old.db"))
                .create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            before_0006.run(&pool).await.unwrap();
            sqlx::query(INSERT)
                .bind(id.to_string())
                .bind(Uuid::new_v4().to_string())
                .bind(ticket.to_string())
                .bind(&url)
                .bind(&tag)
                .bind(true)
                .bind("2024-03-01T09:00:00.000000000Z")
                .execute(&pool)
                .await
                .unwrap();
            migrator.run(&pool).await.unwrap();
            (ReadDb::Sqlite(pool), None)
        }
        Kind::Postgres => {
            let schema = format!("t_{}", Uuid::new_v4().simple());
            on_postgres_server(&format!("CREATE SCHEMA \"{schema}\"")).await;
            let options = postgres_url()
                .parse::<sqlx::postgres::PgConnectOptions>()
                .unwrap()
                .options([("search_path", schema.as_str())]);
            let pool = sqlx::PgPool::connect_with(options).await.unwrap();
            before_0006.run(&pool).await.unwrap();
            sqlx::query(INSERT)
                .bind(id)
                .bind(Uuid::new_v4())
                .bind(ticket)
                .bind(&url)
                .bind(&tag)
                .bind(true)
                .bind(t0())
                .execute(&pool)
                .await
                .unwrap();
            migrator.run(&pool).await.unwrap();
            (ReadDb::Postgres(pool), Some(schema))
        }
    };

    let kept = count(
        &db,
        &format!("SELECT COUNT(*) FROM notifications WHERE id = '{id}'"),
    )
    .await;
    assert_eq!(kept, 1, "0006 keeps the row");
    // The columns are gone, not left behind empty.
    let gone = try_execute(&db, "SELECT url FROM notifications")
        .await
        .is_err();
    assert!(gone, "the url column is dropped");

    try_execute(
        &db,
        &format!(
            "INSERT INTO notification_reads (recipient, notification_id, read_at) \
             VALUES ('bob', '{id}', '2024-03-01T09:00:00Z')"
        ),
    )
    .await
    .unwrap();
    try_execute(
        &db,
        "INSERT INTO projection_checkpoints (name, position, state, updated_at) \
         VALUES ('notifications', '7', 'running', '2024-03-01T09:00:00Z')",
    )
    .await
    .unwrap();
    let every = match kind {
        Kind::Sqlite => store::sqlite_migrator(),
        Kind::Postgres => store::postgres_migrator(),
    };
    match &db {
        ReadDb::Sqlite(pool) => every.run(pool).await.unwrap(),
        ReadDb::Postgres(pool) => every.run(pool).await.unwrap(),
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM notifications").await, 0);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM notification_reads").await,
        1
    );
    let checkpoints = count(
        &db,
        "SELECT COUNT(*) FROM projection_checkpoints WHERE name = 'notifications'",
    )
    .await;
    assert_eq!(checkpoints, 0, "the runner starts the notifications over");

    match db {
        ReadDb::Sqlite(pool) => pool.close().await,
        ReadDb::Postgres(pool) => pool.close().await,
    }
    if let Some(schema) = schema {
        on_postgres_server(&format!("DROP SCHEMA \"{schema}\" CASCADE")).await;
    }
}
