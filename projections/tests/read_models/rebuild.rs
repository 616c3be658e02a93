//! Rebuilding a projection while the server keeps serving and writing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::SlaPolicy;
use projections::rebuild::{rebuild, rebuild_all, Progress};
use projections::report::status_report;
use projections::{
    MetricsProjection, NotificationsProjection, Projection, ProjectionState, ReadDb,
    TicketsProjection, UsersProjection,
};
use tokio_util::sync::CancellationToken;

use crate::commands::Script;
use crate::harness::{checkpoint, dump, dump_tables, Backend, Kind};
use crate::on_every_backend;

async fn ticket_count(db: &ReadDb) -> i64 {
    const SQL: &str = "SELECT count(*) FROM tickets";
    match db {
        ReadDb::Sqlite(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await.unwrap(),
        ReadDb::Postgres(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await.unwrap(),
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
    let clean = backend.fresh_db().await;
    backend
        .runner(&clean)
        .catch_up(Arc::new(TicketsProjection))
        .await
        .unwrap();
    assert_eq!(dump(&backend.db).await, dump(&clean).await);
    backend.cleanup().await;
}

on_every_backend!(
    /// Rebuilding every projection from one reading of the log (each page
    /// applied to all the shadows at once) swaps in, for each, what
    /// event-by-event projection into a fresh database writes, over a live
    /// model that was behind; each reports progress under its own name, and
    /// no rebuild is left marked in progress.
    rebuilding_every_projection_at_once_equals_projecting_event_by_event
);
async fn rebuilding_every_projection_at_once_equals_projecting_event_by_event(kind: Kind) {
    let mut backend = Backend::new(kind).await;
    let mut script = Script::new(33, 8);
    script.record_profile(&*backend.store).await;
    script.run(&*backend.store, 200).await;
    let all = || -> Vec<Arc<dyn Projection>> {
        vec![
            Arc::new(TicketsProjection),
            Arc::new(UsersProjection),
            Arc::new(MetricsProjection::new(SlaPolicy::default())),
            Arc::new(NotificationsProjection::new()),
        ]
    };
    for projection in all() {
        backend
            .runner(&backend.db)
            .catch_up(projection)
            .await
            .unwrap();
    }
    script.run(&*backend.store, 200).await;
    script.record_profile(&*backend.store).await;

    let names: Arc<Mutex<Vec<String>>> = Arc::default();
    let rebuilt = {
        let names = names.clone();
        rebuild_all(backend.store.clone(), &backend.db, all(), move |name, _| {
            names.lock().unwrap().push(name.to_string())
        })
        .await
        .unwrap()
    };
    let head = backend.store.head().await.unwrap();
    assert_eq!(rebuilt.len(), 4);
    let names = names.lock().unwrap().clone();
    for (projection, one) in all().iter().zip(&rebuilt) {
        assert_eq!(one.name, projection.name());
        assert_eq!(one.position, head);
        assert!(names.contains(&one.name), "{} reported progress", one.name);
    }

    let clean = backend.fresh_db().await;
    for projection in all() {
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
