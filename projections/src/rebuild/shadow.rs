//! The shadow a projection is rebuilt into, and the one trait each
//! database's kind of shadow implements: [`super::postgres`] (a schema of
//! its own) and [`super::sqlite`] (a file of its own). The kind is chosen
//! once, by [`create`], from the live database's.

use std::sync::Arc;

use async_trait::async_trait;
use store::{EventStore, Position};

use super::postgres::PgShadow;
use super::sqlite::SqliteShadow;
use super::RebuildError;
use crate::checkpoint;
use crate::db::ReadDb;
use crate::error::ProjectionError;
use crate::runner::{Page, Projection, Runner};

/// A copy of one projection's tables, apart from the live ones, with a
/// checkpoint table of its own: loaded from the log, readied, then swapped
/// in (module docs of [`super`], steps 1 to 3), and dropped in any case.
///
/// Its secondary (non-unique) indexes are created only once the bulk of the
/// log is loaded: one sort per index then, instead of a b-tree insert per
/// row and index during the load. Unique indexes are there from the start,
/// since the projections' `ON CONFLICT` needs them, except on the
/// projection's insert-only tables ([`crate::runner::BulkLoad::insert_only_tables`]):
/// their unique indexes (PostgreSQL: their primary key and unique
/// constraints) are deferred too.
#[async_trait]
pub(super) trait Shadow: Send + Sync {
    /// The shadow's own database: what the load and the catch-up write into.
    fn db(&self) -> &ReadDb;

    /// Readies the loaded shadow for the swap: creates the deferred
    /// indexes, so the shadow's tables are exactly the live ones (the
    /// catch-up and the swap do not care, but a shadow kept for inspection
    /// would), then whatever its database needs before the swap.
    async fn prepare(&self) -> Result<(), sqlx::Error>;

    /// Steps 1 to 3 of the module docs of [`super`], in one transaction on
    /// the live database, step 2 through `catch_up`; returns the checkpoint
    /// swapped in.
    async fn swap(&self, catch_up: &CatchUp) -> Result<Position, RebuildError>;

    /// Drops the shadow (after a swap, or after a failure), logging what it
    /// cannot clean up.
    async fn discard(&self);
}

/// A shadow of the kind of `live` for the projection `name`, holding
/// `tables`, with the unique indexes of `insert_only` deferred with the
/// secondary ones (see [`Shadow`]). Any shadow `name` left behind by a crash
/// is replaced.
pub(super) async fn create(
    live: &ReadDb,
    name: &str,
    tables: &[&'static str],
    insert_only: &[&'static str],
) -> Result<Arc<dyn Shadow>, RebuildError> {
    Ok(match live {
        ReadDb::Postgres(pool) => {
            Arc::new(PgShadow::create(pool, name, tables, insert_only).await?)
        }
        ReadDb::Sqlite(pool) => {
            Arc::new(SqliteShadow::create(pool, name, tables, insert_only).await?)
        }
    })
}

/// The tables a shadow is made of: the projection's and a checkpoint table.
pub(super) fn with_checkpoints(tables: &[&'static str]) -> Vec<&'static str> {
    tables
        .iter()
        .copied()
        .chain(["projection_checkpoints"])
        .collect()
}

/// The statements that replace the rows of `table` in the schema (or
/// attached database) `live` with those in `shadow`, both named as SQL
/// wants them.
pub(super) fn copy_rows(live: &str, shadow: &str, table: &str) -> String {
    format!("DELETE FROM {live}.{table}; INSERT INTO {live}.{table} SELECT * FROM {shadow}.{table}")
}

/// Step 2 of the module docs of [`super`]: the shadow caught up with the
/// live checkpoint, a batch of the runner's size at a time.
pub(super) struct CatchUp {
    pub store: Arc<dyn EventStore>,
    pub projection: Arc<dyn Projection>,
    /// Writes into the shadow, and not as a bulk load: the catch-up comes
    /// after the deferred indexes.
    pub runner: Runner,
}

impl CatchUp {
    /// Applies the log to the shadow until its checkpoint is at least
    /// `live_at` (or the log ends); returns the shadow's checkpoint.
    pub async fn to(&self, live_at: Position) -> Result<Position, ProjectionError> {
        let page = self.runner.batch_size();
        let mut at = checkpoint::read(self.runner.db(), self.projection.name()).await?;
        while at < live_at {
            let events = self.store.read_all(at, page).await?;
            if events.is_empty() {
                break;
            }
            at = self
                .runner
                .apply_batch(&self.projection, Page::new(events))
                .await?;
        }
        Ok(at)
    }
}
