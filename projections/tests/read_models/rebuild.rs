//! Rebuilding a projection while the server keeps serving and writing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::SlaPolicy;
use projections::rebuild::{rebuild, rebuild_all, rebuild_all_in_pages, Progress};
use projections::report::status_report;
use projections::{
    BulkLoad, MetricsProjection, NotificationsProjection, Projection, ProjectionState, ReadDb,
    TicketsProjection, UsersProjection,
};
use tokio_util::sync::CancellationToken;

use crate::commands::Script;
use crate::harness::{append_undecodable, checkpoint, dump, dump_tables, Backend, Kind};
use crate::on_every_backend;

async fn ticket_count(db: &ReadDb) -> i64 {
    const SQL: &str = "SELECT count(*) FROM tickets";
    match db {
        ReadDb::Sqlite(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await.unwrap(),
        ReadDb::Postgres(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await.unwrap(),
    }
}

/// Every projection the server runs, fresh.
fn every_projection() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(TicketsProjection),
        Arc::new(UsersProjection),
        Arc::new(MetricsProjection::new(SlaPolicy::default())),
        Arc::new(NotificationsProjection::new()),
    ]
}

/// Every projection caught up with the log, live.
async fn catch_up_every_projection(backend: &Backend) {
    for projection in every_projection() {
        backend
            .runner(&backend.db)
            .catch_up(projection)
            .await
            .unwrap();
    }
}

on_every_backend!(
    /// While the live runner runs and writers append, a rebuild of the tickets
    /// projection reports progress, never shows readers fewer tickets than
    /// before (no half-built model), and swaps in a model that the live runner
    /// carries on from: afterwards the read model equals a clean rebuild, and
    /// the status report shows it running without lag.
    a_rebuild_under_load_swaps_in_a_complete_model_the_runner_carries_on_from
);
async fn a_rebuild_under_load_swaps_in_a_complete_model_the_runner_carries_on_from(kind: Kind) {
    let mut backend = Backend::new(kind).await;
    // One script: two would hand out the same ticket references.
    let mut script = Script::new(21, 40);
    script.run(&*backend.store, 400).await;
    let shutdown = CancellationToken::new();
    let live = backend
        .runner(&backend.db)
        .with_batch_size(50)
        .spawn(Arc::new(TicketsProjection), shutdown.clone());

    let writer = {
        let store = backend.store.clone();
        tokio::spawn(async move {
            script.run(&*store, 200).await;
            script
        })
    };
    let reader_stop = CancellationToken::new();
    let reader = {
        let db = backend.db.clone();
        let stop = reader_stop.clone();
        tokio::spawn(async move {
            let mut seen = 0;
            while !stop.is_cancelled() {
                let count = ticket_count(&db).await;
                assert!(count >= seen, "readers saw {count} tickets after {seen}");
                seen = count;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    let reports: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let swapped = {
        let reports = reports.clone();
        rebuild(
            backend.store.clone(),
            &backend.db,
            Arc::new(TicketsProjection),
            move |p| reports.lock().unwrap().push(p),
        )
        .await
        .unwrap()
    };
    let reports = reports.lock().unwrap().clone();
    assert!(!reports.is_empty());
    assert!(reports.windows(2).all(|w| w[0].done <= w[1].done));
    let last = reports.last().unwrap();
    assert!(last.done <= last.total && last.events_per_sec > 0.0);
    assert!(checkpoint(&backend.db, "tickets").await.unwrap().position >= swapped);

    let mut script = writer.await.unwrap();
    script.run(&*backend.store, 50).await;
    let head = backend.store.head().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while checkpoint(&backend.db, "tickets").await.unwrap().position < head {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the live runner carries on"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reader_stop.cancel();
    reader.await.unwrap();

    let report = status_report(&*backend.store, &backend.db).await.unwrap();
    let tickets = report.iter().find(|r| r.name == "tickets").unwrap();
    assert_eq!(tickets.state, ProjectionState::Running);
    assert_eq!((tickets.lag, tickets.checkpoint), (0, head));
    assert!(report.iter().all(|r| r.rebuild_position.is_none()));

    shutdown.cancel();
    live.await.unwrap().unwrap();
    let clean = backend.projected_afresh(Arc::new(TicketsProjection)).await;
    assert_eq!(dump(&backend.db).await, dump(&clean).await);
    backend.cleanup().await;
}

on_every_backend!(
    /// Rebuilding every projection from one reading of the log (each page
    /// applied to all the shadows at once) swaps in, for each, what
    /// event-by-event projection into a fresh database writes, over a live
    /// model that was behind; each reports progress under its own name, and
    /// no rebuild is left marked in progress. Small pages, so the load spans
    /// many of them: what a load carries from page to page or leaves to its
    /// end (the queue figures) must come out as event by event.
    rebuilding_every_projection_at_once_equals_projecting_event_by_event
);
async fn rebuilding_every_projection_at_once_equals_projecting_event_by_event(kind: Kind) {
    rebuild_all_equals_event_by_event(kind, Script::new(33, 8), Some(16)).await;
}

on_every_backend!(
    /// The same with texts a text format would have to escape (tabs, line
    /// breaks, backslashes, quotes, characters of several bytes) and times
    /// with a fraction below a microsecond: the load (binary COPY on
    /// PostgreSQL) stores them exactly as event-by-event inserts do.
    a_rebuild_stores_awkward_texts_and_times_as_inserts_do
);
async fn a_rebuild_stores_awkward_texts_and_times_as_inserts_do(kind: Kind) {
    rebuild_all_equals_event_by_event(kind, Script::new(34, 8).with_awkward_values(), None).await;
}

/// `script`'s log, partly projected live, then every projection rebuilt at
/// once (`page` events per page of the load, or the rebuild's own page
/// size): each must equal event-by-event projection into a fresh database.
async fn rebuild_all_equals_event_by_event(kind: Kind, mut script: Script, page: Option<usize>) {
    let mut backend = Backend::new(kind).await;
    script.record_profile(&*backend.store).await;
    script.run(&*backend.store, 200).await;
    catch_up_every_projection(&backend).await;
    script.run(&*backend.store, 200).await;
    script.record_profile(&*backend.store).await;

    let names: Arc<Mutex<Vec<String>>> = Arc::default();
    let rebuilt = {
        let names = names.clone();
        let progress = move |name: &str, _| names.lock().unwrap().push(name.to_string());
        let (store, db) = (backend.store.clone(), &backend.db);
        match page {
            Some(page) => rebuild_all_in_pages(store, db, every_projection(), page, progress).await,
            None => rebuild_all(store, db, every_projection(), progress).await,
        }
        .unwrap()
    };
    let head = backend.store.head().await.unwrap();
    assert_eq!(rebuilt.len(), 4);
    let names = names.lock().unwrap().clone();
    for (projection, one) in every_projection().iter().zip(&rebuilt) {
        assert_eq!(one.name, projection.name());
        assert_eq!(one.position, head);
        assert!(names.contains(&one.name), "{} reported progress", one.name);
    }

    let clean = backend.fresh_db().await;
    for projection in every_projection() {
        let single = backend.runner(&clean).with_batch_size(1);
        single.catch_up(projection.clone()).await.unwrap();
        let tables = projection.tables();
        assert_eq!(
            dump_tables(&backend.db, tables).await,
            dump_tables(&clean, tables).await,
            "{} rebuilt",
            projection.name()
        );
        assert_eq!(
            checkpoint(&backend.db, projection.name())
                .await
                .unwrap()
                .position,
            head
        );
    }
    let report = status_report(&*backend.store, &backend.db).await.unwrap();
    assert!(report.iter().all(|r| r.rebuild_position.is_none()));
    backend.cleanup().await;
}

/// The live schema as a list of lines: every column (in order), index and
/// constraint of the current schema, with its name and definition. A
/// column's place is its rank among the table's columns, not PostgreSQL's
/// `attnum`, which keeps the gaps of dropped columns (migration 0006 drops
/// two) that a table made `LIKE` it does not have.
async fn schema(db: &ReadDb) -> Vec<String> {
    match db {
        ReadDb::Sqlite(pool) => sqlx::query_scalar(
            "SELECT type || ' ' || name || ' ' || tbl_name || ': ' || coalesce(sql, '') \
             FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
        ReadDb::Postgres(pool) => sqlx::query_scalar(
            "SELECT line FROM ( \
               SELECT format('column %s.%s %s: %s %s %s', t.relname, \
                 row_number() OVER (PARTITION BY t.oid ORDER BY a.attnum), a.attname, \
                 format_type(a.atttypid, a.atttypmod), a.attnotnull, \
                 coalesce(pg_get_expr(d.adbin, d.adrelid), '')) AS line \
               FROM pg_attribute a JOIN pg_class t ON t.oid = a.attrelid \
               LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
               WHERE t.relnamespace = current_schema()::regnamespace AND t.relkind = 'r' \
                 AND a.attnum > 0 AND NOT a.attisdropped \
               UNION ALL \
               SELECT format('index %s: %s', c.relname, pg_get_indexdef(i.indexrelid)) \
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
               WHERE c.relnamespace = current_schema()::regnamespace \
               UNION ALL \
               SELECT format('constraint %s.%s: %s', t.relname, c.conname, \
                 pg_get_constraintdef(c.oid)) \
               FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
               WHERE t.relnamespace = current_schema()::regnamespace \
             ) s ORDER BY line",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
    }
}

/// The identity of the live `tickets` table: a moved-in table has a new one.
async fn tickets_table_oid(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT 'tickets'::regclass::oid::int8")
        .fetch_one(pool)
        .await
        .unwrap()
}

on_every_backend!(
    /// A rebuild of every projection leaves the live schema exactly as the
    /// migrations made it: the same columns, indexes and constraints under
    /// the same names. On PostgreSQL the tables are moved in, not copied.
    a_rebuild_leaves_the_live_schema_as_the_migrations_made_it
);
async fn a_rebuild_leaves_the_live_schema_as_the_migrations_made_it(kind: Kind) {
    let backend = Backend::new(kind).await;
    let mut script = Script::new(5, 6);
    script.record_profile(&*backend.store).await;
    script.run(&*backend.store, 120).await;
    let before = schema(&backend.db).await;
    assert!(before
        .iter()
        .any(|line| line.contains("notifications_recipient_position_key")));
    let oid = match &backend.db {
        ReadDb::Postgres(pool) => Some(tickets_table_oid(pool).await),
        ReadDb::Sqlite(_) => None,
    };
    rebuild_all(
        backend.store.clone(),
        &backend.db,
        every_projection(),
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(schema(&backend.db).await, before);
    assert!(ticket_count(&backend.db).await > 0);
    if let (ReadDb::Postgres(pool), Some(oid)) = (&backend.db, oid) {
        assert_ne!(tickets_table_oid(pool).await, oid, "moved in, not copied");
    }
    backend.cleanup().await;
}

/// A reader that keeps a live table locked does not hold the swap up: after
/// waiting a moment for it, the swap copies the rows instead of moving the
/// table, and readers never wait on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_holding_a_live_table_makes_the_swap_copy_instead() {
    let mut backend = Backend::new(Kind::Postgres).await;
    let mut script = Script::new(9, 6);
    script.run(&*backend.store, 120).await;
    let ReadDb::Postgres(pool) = backend.db.clone() else {
        unreachable!("a PostgreSQL backend")
    };
    let oid = tickets_table_oid(&pool).await;
    let mut reader = pool.begin().await.unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets")
        .fetch_one(&mut *reader)
        .await
        .unwrap();
    assert_eq!(seen, 0, "nothing projected yet");

    rebuild(
        backend.store.clone(),
        &backend.db,
        Arc::new(TicketsProjection),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(tickets_table_oid(&pool).await, oid, "copied, not moved");
    // The reader carries on, and its next statement sees the new model.
    let now: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets")
        .fetch_one(&mut *reader)
        .await
        .unwrap();
    reader.commit().await.unwrap();
    assert!(now > 0);
    assert_eq!(ticket_count(&backend.db).await, now);

    let clean = backend.projected_afresh(Arc::new(TicketsProjection)).await;
    let tables = TicketsProjection.tables();
    assert_eq!(
        dump_tables(&backend.db, tables).await,
        dump_tables(&clean, tables).await
    );
    backend.cleanup().await;
}

/// The identity of the live table `table`.
async fn table_oid(pool: &sqlx::PgPool, table: &str) -> i64 {
    sqlx::query_scalar("SELECT $1::text::regclass::oid::int8")
        .bind(table)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// What an operator added to live tables survives a rebuild: those tables
/// are copied into, the others still moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_an_operator_added_to_a_live_table_survives_a_rebuild() {
    let backend = Backend::new(Kind::Postgres).await;
    let mut script = Script::new(13, 6);
    script.record_profile(&*backend.store).await;
    script.run(&*backend.store, 120).await;
    let ReadDb::Postgres(pool) = backend.db.clone() else {
        unreachable!("a PostgreSQL backend")
    };
    for statement in [
        "CREATE VIEW ticket_ids AS SELECT id FROM tickets",
        "COMMENT ON TABLE ticket_activity IS 'one row per event'",
        "GRANT SELECT ON notifications TO PUBLIC",
        "CREATE TABLE user_notes (user_id text REFERENCES users (id), note text)",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    let acl = "SELECT relacl::text FROM pg_class WHERE oid = 'notifications'::regclass";
    let granted: Option<String> = sqlx::query_scalar(acl).fetch_one(&pool).await.unwrap();
    let kept = ["tickets", "ticket_activity", "notifications", "users"];
    let mut oids = vec![];
    for table in kept.iter().chain(&["ticket_tags"]) {
        oids.push(table_oid(&pool, table).await);
    }
    let all: Vec<Arc<dyn Projection>> = vec![
        Arc::new(TicketsProjection),
        Arc::new(UsersProjection),
        Arc::new(NotificationsProjection::new()),
    ];
    rebuild_all(backend.store.clone(), &backend.db, all, |_, _| {})
        .await
        .unwrap();

    let viewed: i64 = sqlx::query_scalar("SELECT count(*) FROM ticket_ids")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(viewed > 0);
    assert_eq!(viewed, ticket_count(&backend.db).await);
    let comment: Option<String> =
        sqlx::query_scalar("SELECT obj_description('ticket_activity'::regclass, 'pg_class')")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(comment.as_deref(), Some("one row per event"));
    let still: Option<String> = sqlx::query_scalar(acl).fetch_one(&pool).await.unwrap();
    assert_eq!(still, granted);
    let foreign_keys: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_constraint WHERE confrelid = 'users'::regclass",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(foreign_keys, 1);
    for (table, oid) in kept.iter().zip(&oids) {
        assert_eq!(table_oid(&pool, table).await, *oid, "{table} copied into");
    }
    // The foreign key made the whole swap of `users` a copy; the tickets
    // projection's other tables, untouched by the operator, were moved.
    assert_ne!(
        table_oid(&pool, "ticket_tags").await,
        oids[4],
        "ticket_tags moved"
    );
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(users > 0);
    backend.cleanup().await;
}

/// A broken notifications projection: for every event it inserts one and the
/// same notification, as an insert-only table's writer would (no conflict
/// target). Live, the unique index swallows the repeats; in a rebuild's
/// shadow the index comes only after the load, so the repeats are there
/// when it is built.
struct RepeatsOneNotification;

#[async_trait::async_trait]
impl Projection for RepeatsOneNotification {
    fn name(&self) -> &str {
        projections::notifications::NAME
    }

    fn tables(&self) -> &[&'static str] {
        projections::notifications::TABLES
    }

    fn bulk_load(&self) -> Option<&dyn BulkLoad> {
        Some(self)
    }

    async fn apply(
        &self,
        tx: &mut projections::ReadTx,
        _event: &store::RecordedEvent,
    ) -> Result<(), projections::ApplyError> {
        const SQL: &str = "INSERT INTO notifications (id, recipient, event_id, position, \
            ticket_id, event_type, title, body, require_interaction, created_at) \
            VALUES ($1, 'someone', $1, 1, $1, 'TicketCreated', 't', 'b', $2, $3) \
            ON CONFLICT DO NOTHING";
        let id = uuid::Uuid::from_u128(42);
        match tx {
            projections::ReadTx::Sqlite(tx) => sqlx::query(SQL)
                .bind(id.to_string())
                .bind(false)
                .bind("2026-01-01T00:00:00.000000000Z")
                .execute(&mut **tx)
                .await
                .map(drop),
            projections::ReadTx::Postgres(tx) => sqlx::query(SQL)
                .bind(id)
                .bind(false)
                .bind(chrono::Utc::now())
                .execute(&mut **tx)
                .await
                .map(drop),
        }
        .map_err(projections::ApplyError::from)
    }
}

impl BulkLoad for RepeatsOneNotification {
    fn insert_only_tables(&self) -> &[&'static str] {
        projections::notifications::INSERT_ONLY_TABLES
    }
}

on_every_backend!(
    /// A rebuild whose load put two equal rows in a table of
    /// `insert_only_tables` (whose unique indexes it builds only after the
    /// load) fails when it builds them: the live model, its checkpoint and
    /// the schema stay as they were, and no shadow or `rebuilding` mark is
    /// left behind.
    a_rebuild_that_loaded_a_duplicate_fails_and_keeps_the_live_model
);
async fn a_rebuild_that_loaded_a_duplicate_fails_and_keeps_the_live_model(kind: Kind) {
    let backend = Backend::new(kind).await;
    let mut script = Script::new(7, 4);
    script.run(&*backend.store, 40).await;
    backend
        .runner(&backend.db)
        .catch_up(Arc::new(NotificationsProjection::new()))
        .await
        .unwrap();
    let tables = projections::notifications::TABLES;
    let rows = dump_tables(&backend.db, tables).await;
    let at = checkpoint(&backend.db, projections::notifications::NAME).await;
    let layout = schema(&backend.db).await;

    let failed = rebuild(
        backend.store.clone(),
        &backend.db,
        Arc::new(RepeatsOneNotification),
        |_| {},
    )
    .await
    .expect_err("two equal notifications cannot get a unique index");
    let message = failed.to_string().to_lowercase();
    assert!(
        message.contains("unique") || message.contains("duplicate"),
        "{failed}"
    );

    assert_eq!(dump_tables(&backend.db, tables).await, rows);
    assert_eq!(
        checkpoint(&backend.db, projections::notifications::NAME).await,
        at
    );
    assert_eq!(schema(&backend.db).await, layout);
    let report = status_report(&*backend.store, &backend.db).await.unwrap();
    assert!(report.iter().all(|r| r.rebuild_position.is_none()));
    match &backend.db {
        ReadDb::Postgres(pool) => {
            let shadows: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_namespace WHERE nspname LIKE current_schema() || '_rb_%'",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            assert_eq!(shadows, 0, "the shadow schema is dropped");
        }
        ReadDb::Sqlite(pool) => {
            let file: String =
                sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                    .fetch_one(pool)
                    .await
                    .unwrap();
            let shadow = format!("{file}.rebuild-{}", projections::notifications::NAME);
            assert!(
                !std::path::Path::new(&shadow).exists(),
                "{shadow} is deleted"
            );
        }
    }
    backend.cleanup().await;
}

on_every_backend!(
    /// A rebuild of every projection at once over a log holding a ticket
    /// event that cannot be decoded (each page is decoded once and shared
    /// by the projections that load it) fails with that event named as
    /// the poison: every live model, its checkpoint and the schema stay as
    /// they were, and no rebuild is left marked in progress.
    a_rebuild_meeting_an_undecodable_event_fails_naming_it_and_keeps_every_live_model
);
async fn a_rebuild_meeting_an_undecodable_event_fails_naming_it_and_keeps_every_live_model(
    kind: Kind,
) {
    let backend = Backend::new(kind).await;
    let store = &*backend.store;
    let mut script = Script::new(21, 4);
    script.record_profile(store).await;
    script.run(store, 40).await;
    catch_up_every_projection(&backend).await;
    let (poison_id, poison) = append_undecodable(store).await;
    script.run(store, 40).await;
    let rows = dump(&backend.db).await;
    let mut positions = Vec::new();
    for projection in every_projection() {
        positions.push(checkpoint(&backend.db, projection.name()).await);
    }
    let layout = schema(&backend.db).await;

    let failed = rebuild_all_in_pages(
        backend.store.clone(),
        &backend.db,
        every_projection(),
        16,
        |_, _| {},
    )
    .await
    .expect_err("an undecodable event stops the rebuild");
    let message = failed.to_string();
    assert!(message.contains(&poison_id.to_string()), "{message}");
    assert!(message.contains(&format!("position {poison}")), "{message}");

    assert_eq!(dump(&backend.db).await, rows);
    for (projection, at) in every_projection().iter().zip(positions) {
        assert_eq!(checkpoint(&backend.db, projection.name()).await, at);
    }
    assert_eq!(schema(&backend.db).await, layout);
    let report = status_report(store, &backend.db).await.unwrap();
    assert!(report.iter().all(|r| r.rebuild_position.is_none()));
    backend.cleanup().await;
}
