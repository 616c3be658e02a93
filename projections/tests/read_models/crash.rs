//! Crashes anywhere in a run neither lose nor double-apply an event.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use projections::{ApplyError, Projection, ReadTx, TicketsProjection, UsersProjection};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use store::RecordedEvent;
use tokio_util::sync::CancellationToken;

use crate::commands::Script;
use crate::harness::{checkpoint, dump, run_until_caught_up, Backend, Kind};

/// The tickets projection in a process that dies (panics) in the middle of its
/// `n`-th event, with the batch's transaction open.
struct DiesOnEvent {
    remaining: AtomicUsize,
}

#[async_trait]
impl Projection for DiesOnEvent {
    fn name(&self) -> &str {
        TicketsProjection.name()
    }

    async fn apply(&self, tx: &mut ReadTx, event: &RecordedEvent) -> Result<(), ApplyError> {
        TicketsProjection.apply(tx, event).await?;
        if self.remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
            panic!("simulated crash in the middle of a batch");
        }
        Ok(())
    }
}

crate::on_every_backend! {
    /// A tickets projection killed several times, mid-batch (a panic with the
    /// transaction open, or the task aborted at a random moment) and between
    /// batches (shutdown), while events keep being appended, ends with exactly
    /// the read model and checkpoint of a clean rebuild into a fresh database.
    a_crash_at_any_point_neither_loses_nor_double_applies_an_event
}

async fn a_crash_at_any_point_neither_loses_nor_double_applies_an_event(kind: Kind) {
    let mut backend = Backend::new(kind).await;
    let mut script = Script::new(3, 10);
    let runner = backend.runner(&backend.db).with_batch_size(7);
    let mut rng = StdRng::seed_from_u64(5);

    for round in 0..9 {
        script.run(&*backend.store, 60).await;
        match round % 3 {
            0 => {
                let dies = Arc::new(DiesOnEvent {
                    remaining: AtomicUsize::new(rng.gen_range(1..=10)),
                });
                let task = runner.spawn(dies, CancellationToken::new());
                let outcome = tokio::time::timeout(Duration::from_secs(30), task)
                    .await
                    .expect("the projection reaches its fatal event");
                assert!(outcome.expect_err("a crash").is_panic());
            }
            1 => {
                let task = runner.spawn(Arc::new(TicketsProjection), CancellationToken::new());
                tokio::time::sleep(Duration::from_millis(rng.gen_range(0..30))).await;
                task.abort();
                let _ = task.await;
            }
            _ => {
                let shutdown = CancellationToken::new();
                let task = runner.spawn(Arc::new(TicketsProjection), shutdown.clone());
                tokio::time::sleep(Duration::from_millis(rng.gen_range(0..30))).await;
                shutdown.cancel();
                task.await.unwrap().expect("a clean shutdown");
            }
        }
    }
    run_until_caught_up(&runner, &*backend.store, Arc::new(TicketsProjection))
        .await
        .unwrap();
    run_until_caught_up(&runner, &*backend.store, Arc::new(UsersProjection))
        .await
        .unwrap();

    let fresh = backend.fresh_db().await;
    let clean = backend.runner(&fresh);
    clean.catch_up(Arc::new(TicketsProjection)).await.unwrap();
    clean.catch_up(Arc::new(UsersProjection)).await.unwrap();

    let survived = dump(&backend.db).await;
    assert!(survived["ticket_activity"].len() > 300, "a long enough log");
    assert_eq!(survived, dump(&fresh).await);
    for name in ["tickets", "users"] {
        assert_eq!(
            checkpoint(&backend.db, name).await.unwrap().position,
            checkpoint(&fresh, name).await.unwrap().position
        );
    }
    backend.cleanup().await;
}
