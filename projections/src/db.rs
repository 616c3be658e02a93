//! The database read models live in, and the transaction one batch is written in.
//!
//! Read models usually share the event store's database, but need not: a rebuild
//! can read one store's log and write into a fresh database.

use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use store::{PostgresEventStore, SqliteEventStore};

/// A read-model database whose schema is migrated (the event store's migrator
/// creates the read-model tables).
#[derive(Clone, Debug)]
pub enum ReadDb {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// One open transaction of a [`ReadDb`]. Dropping it rolls back.
pub enum ReadTx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl ReadDb {
    /// The read models in the store's own file, written through its single writer
    /// connection so that projection batches queue behind appends in-process.
    pub fn sqlite_store(store: &SqliteEventStore) -> ReadDb {
        ReadDb::Sqlite(store.writer_pool().clone())
    }

    /// The read models in the store's own schema.
    pub fn postgres_store(store: &PostgresEventStore) -> ReadDb {
        ReadDb::Postgres(store.pool().clone())
    }

    /// Starts a write transaction. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so it never fails half-way upgrading a read lock.
    pub async fn begin(&self) -> Result<ReadTx, sqlx::Error> {
        Ok(match self {
            ReadDb::Sqlite(pool) => ReadTx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            ReadDb::Postgres(pool) => ReadTx::Postgres(pool.begin().await?),
        })
    }
}

impl ReadTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            ReadTx::Sqlite(tx) => tx.commit().await,
            ReadTx::Postgres(tx) => tx.commit().await,
        }
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            ReadTx::Sqlite(tx) => tx.rollback().await,
            ReadTx::Postgres(tx) => tx.rollback().await,
        }
    }
}

/// The log position as the read-model tables store it (`position` columns): the
/// single sequence number of the SQL stores. A two-part (EventStoreDB) position
/// has no such number, so such an event cannot be applied to these tables.
pub(crate) fn row_position(position: store::Position) -> Result<i64, crate::ApplyError> {
    if position.commit != position.prepare {
        return Err(crate::ApplyError::Poison(format!(
            "position {position} is not a single sequence number; \
             the SQL read models need a SQL event store"
        )));
    }
    i64::try_from(position.commit).map_err(|_| {
        crate::ApplyError::Poison(format!("position {position} does not fit a BIGINT"))
    })
}
