//! What a projection implements: [`Projection`], which the runner feeds
//! the log, and [`BulkLoad`], the hooks of a rebuild's load for the
//! projections that have them.

use async_trait::async_trait;
use store::RecordedEvent;

use crate::db::ReadTx;
use crate::error::ApplyError;
use crate::ticket_event::Reads;

/// A named handler of stored events that writes a read model. It sees every
/// event of the log, in order, and ignores the ones it has no use for.
///
/// `apply` writes only through `tx` and must be idempotent on its own as well
/// (the runner already never hands an event over twice once committed, but a
/// read model whose rows carry the position they were written at stays correct
/// even if two runners race).
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// The checkpoint's key: renaming a projection rebuilds it from scratch.
    fn name(&self) -> &str;

    /// The read-model tables this projection alone writes: what a rebuild
    /// builds anew and swaps in ([`crate::rebuild`]). A projection that names
    /// none cannot be rebuilt while the server runs.
    fn tables(&self) -> &[&'static str] {
        &[]
    }

    async fn apply(&self, tx: &mut ReadTx, event: &RecordedEvent) -> Result<(), ApplyError>;

    /// Applies a whole batch, in log order: what the runner calls. The
    /// default applies each event in turn; a projection may override it to
    /// read and write each row once per batch. It must leave the same rows
    /// as `apply` on each event would. When it reports a poison, the runner
    /// rolls the batch back and applies it again event by event with
    /// `apply`, to stop exactly at the poison event.
    async fn apply_batch(
        &self,
        tx: &mut ReadTx,
        events: &[&RecordedEvent],
    ) -> Result<(), ApplyError> {
        for event in events {
            self.apply(tx, event).await?;
        }
        Ok(())
    }

    /// What this projection does differently while a rebuild loads its
    /// shadow, if anything: a projection that implements [`BulkLoad`]
    /// returns `Some(self)`. `None` (the default): a rebuild loads it with
    /// `apply_batch`.
    fn bulk_load(&self) -> Option<&dyn BulkLoad> {
        None
    }
}

/// The hooks of a rebuild's load ([`crate::rebuild`]), for a projection that
/// can write faster into an empty shadow than into a live model; it hands
/// them over with [`Projection::bulk_load`]. The load is fed the whole log
/// once, from its start, in this process, before the shadow's deferred
/// indexes are built.
#[async_trait]
pub trait BulkLoad: Projection {
    /// Of [`Projection::tables`], those this projection only ever inserts
    /// into, with an `ON CONFLICT DO NOTHING` that names no conflict target:
    /// a rebuild builds their unique indexes after the load, like their
    /// other indexes (one sort per index instead of a b-tree insert per row
    /// into indexes of random keys), since no statement of the load needs
    /// them. The load applies each event once, so it inserts no duplicate;
    /// if a bug made one, building the index fails the rebuild and the live
    /// model is kept. (SQLite: only uniqueness declared with its own
    /// `CREATE UNIQUE INDEX` can be left out; a table's inline constraints
    /// cannot.)
    fn insert_only_tables(&self) -> &[&'static str] {
        &[]
    }

    /// Applies a batch to a rebuild's shadow while it loads: every event
    /// before the batch was applied exactly once, in this process, and the
    /// [`BulkLoad::insert_only_tables`] have no unique index yet. So their
    /// rows can be written without a conflict check (PostgreSQL: COPY, see
    /// [`crate::copy`]); every other row as `apply_batch` writes it. It must
    /// leave the same rows as `apply_batch`; the default is `apply_batch`.
    /// A poison is handled as for `apply_batch`. `reads` holds what each of
    /// `events` decodes to, decoded once for every projection loading the
    /// page; a projection that folds ticket events uses it rather than
    /// decoding them again.
    async fn load_batch(
        &self,
        tx: &mut ReadTx,
        events: &[&RecordedEvent],
        reads: Reads<'_>,
    ) -> Result<(), ApplyError> {
        let _ = reads;
        self.apply_batch(tx, events).await
    }

    /// Called once after a rebuild's last [`BulkLoad::load_batch`], in a
    /// transaction of its own on the shadow, before its deferred indexes
    /// are built: what the load left for its end. The batches of the load
    /// followed by this must leave the same rows as `apply_batch` over the
    /// same events. The default does nothing.
    async fn finish_load(&self, _tx: &mut ReadTx) -> Result<(), sqlx::Error> {
        Ok(())
    }
}
