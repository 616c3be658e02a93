//! Replaying events the read models already hold changes nothing.

use std::sync::Arc;

use projections::{Projection, TicketsProjection, UsersProjection};

use crate::commands::Script;
use crate::harness::{dump, run_until_caught_up, Backend, Kind};

crate::on_every_backend! {
    /// Applying the same events a second time, both straight through the
    /// handlers (no checkpoint involved) and through the runner after the
    /// checkpoint was reset to the start, leaves every read-model table as it was.
    a_replayed_batch_is_a_no_op
}

async fn a_replayed_batch_is_a_no_op(kind: Kind) {
    let backend = Backend::new(kind).await;
    Script::new(11, 6).run(&*backend.store, 200).await;
    let runner = backend.runner(&backend.db);
    let projections: [Arc<dyn Projection>; 2] =
        [Arc::new(TicketsProjection), Arc::new(UsersProjection)];
    for projection in &projections {
        runner.catch_up(projection.clone()).await.unwrap();
    }
    let before = dump(&backend.db).await;

    let events = backend
        .store
        .read_all(store::Position::START, 10_000)
        .await
        .unwrap();
    for projection in &projections {
        let mut tx = backend.db.begin().await.unwrap();
        for event in &events {
            projection.apply(&mut tx, event).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    assert_eq!(dump(&backend.db).await, before, "handlers applied twice");

    let reset = "UPDATE projection_checkpoints SET position = '0'";
    match &backend.db {
        projections::ReadDb::Sqlite(pool) => sqlx::query(reset).execute(pool).await.map(drop),
        projections::ReadDb::Postgres(pool) => sqlx::query(reset).execute(pool).await.map(drop),
    }
    .unwrap();
    for projection in projections {
        run_until_caught_up(&runner, &*backend.store, projection)
            .await
            .unwrap();
    }
    assert_eq!(
        dump(&backend.db).await,
        before,
        "runner replayed from the start"
    );
    backend.cleanup().await;
}
