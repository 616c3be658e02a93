//! Several runners of one projection on one PostgreSQL database: one writes,
//! another takes over when it dies.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use projections::{ApplyError, Projection, ReadTx, TicketsProjection};
use store::{Position, RecordedEvent};
use tokio_util::sync::CancellationToken;

use crate::commands::Script;
use crate::harness::{checkpoint, dump, Backend, Kind};

/// The tickets projection, counting the events it is handed.
struct Counting {
    applied: Arc<AtomicUsize>,
}

#[async_trait]
impl Projection for Counting {
    fn name(&self) -> &str {
        projections::tickets::NAME
    }

    async fn apply(&self, tx: &mut ReadTx, event: &RecordedEvent) -> Result<(), ApplyError> {
        self.applied.fetch_add(1, Ordering::SeqCst);
        TicketsProjection.apply(tx, event).await
    }
}

async fn wait_for_checkpoint(backend: &Backend, at: Position) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let reached = checkpoint(&backend.db, projections::tickets::NAME)
            .await
            .map(|s| s.position);
        if reached.unwrap_or(Position::START) >= at {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "stuck before {at}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two runners of the tickets projection on one schema: only the lease holder
/// applies events; when it is killed (its task aborted, its lock connection
/// dropped) the other takes the lease, catches up, and the read model equals
/// a clean rebuild.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_writes_and_another_takes_over_when_it_dies() {
    let mut backend = Backend::new(Kind::Postgres).await;
    let mut script = Script::new(11, 20);
    script.run(&*backend.store, 150).await;

    let counts = [Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0))];
    let shutdown = CancellationToken::new();
    let mut tasks: Vec<_> = counts
        .iter()
        .map(|applied| {
            let runner = backend
                .runner(&backend.db)
                .with_lease_retry(Duration::from_millis(100));
            let projection = Arc::new(Counting {
                applied: applied.clone(),
            });
            Some(runner.spawn(projection, shutdown.clone()))
        })
        .collect();
    wait_for_checkpoint(&backend, backend.store.head().await.unwrap()).await;
    script.run(&*backend.store, 50).await;
    wait_for_checkpoint(&backend, backend.store.head().await.unwrap()).await;

    let applied = counts.each_ref().map(|c| c.load(Ordering::SeqCst));
    let holder = match applied {
        [n, 0] if n > 0 => 0,
        [0, n] if n > 0 => 1,
        other => panic!("exactly one runner applies events, got {other:?}"),
    };
    let other = 1 - holder;

    if let Some(task) = tasks[holder].take() {
        task.abort();
        let _ = task.await;
    }
    script.run(&*backend.store, 100).await;
    wait_for_checkpoint(&backend, backend.store.head().await.unwrap()).await;
    assert!(
        counts[other].load(Ordering::SeqCst) > 0,
        "the other runner took over"
    );

    shutdown.cancel();
    if let Some(task) = tasks[other].take() {
        task.await.unwrap().unwrap();
    }
    let clean = backend.projected_afresh(Arc::new(TicketsProjection)).await;
    assert_eq!(dump(&backend.db).await, dump(&clean).await);
    backend.cleanup().await;
}
