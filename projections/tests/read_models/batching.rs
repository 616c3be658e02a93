//! How a projection is cut into batches changes nothing in what it writes.

use std::sync::Arc;

use domain::SlaPolicy;
use projections::{
    MetricsProjection, NotificationsProjection, Projection, TicketsProjection, UsersProjection,
};

use crate::commands::Script;
use crate::harness::{dump_tables, Backend, Kind};

crate::on_every_backend! {
    /// Every projection, run over a log of random commands (tags and
    /// watchers added and removed again, moves, deletions, profiles) once
    /// event by event and once as a single batch of the whole log, leaves
    /// identical tables: the batched writes (rows folded in memory, multi-row
    /// statements, last operation per child row) are only a faster way to
    /// the same read model.
    one_batch_of_the_whole_log_writes_what_event_by_event_does
}

async fn one_batch_of_the_whole_log_writes_what_event_by_event_does(kind: Kind) {
    let mut backend = Backend::new(kind).await;
    let mut script = Script::new(21, 8);
    script.record_profile(&*backend.store).await;
    script.run(&*backend.store, 400).await;
    script.record_profile(&*backend.store).await;
    let one_by_one = backend.fresh_db().await;
    let whole = backend.fresh_db().await;
    let projections: [Arc<dyn Projection>; 4] = [
        Arc::new(TicketsProjection),
        Arc::new(UsersProjection),
        Arc::new(MetricsProjection::new(SlaPolicy::default())),
        Arc::new(NotificationsProjection::new()),
    ];
    for projection in projections {
        let single = backend.runner(&one_by_one).with_batch_size(1);
        single.catch_up(projection.clone()).await.unwrap();
        let batched = backend.runner(&whole).with_batch_size(100_000);
        batched.catch_up(projection.clone()).await.unwrap();
        let tables = projection.tables();
        let expected = dump_tables(&one_by_one, tables).await;
        assert!(
            expected.values().any(|rows| !rows.is_empty()),
            "{} wrote something",
            projection.name()
        );
        assert_eq!(
            dump_tables(&whole, tables).await,
            expected,
            "{} in one batch",
            projection.name()
        );
    }
    backend.cleanup().await;
}
