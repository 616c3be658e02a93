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

/// Which SQL a [`ReadDb`] speaks, for the few clauses that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// `column IN` the list bound as parameter `$n` (`Arg::Ids` or
    /// `Arg::Texts`): one parameter whatever the list's length, so the
    /// statement's text never changes.
    pub(crate) fn any(self, column: &str, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("{column} IN (SELECT value FROM json_each(${n}))"),
            Dialect::Postgres => format!("{column} = ANY(${n})"),
        }
    }
}

impl ReadDb {
    pub fn dialect(&self) -> Dialect {
        match self {
            ReadDb::Sqlite(_) => Dialect::Sqlite,
            ReadDb::Postgres(_) => Dialect::Postgres,
        }
    }

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
    pub fn dialect(&self) -> Dialect {
        match self {
            ReadTx::Sqlite(_) => Dialect::Sqlite,
            ReadTx::Postgres(_) => Dialect::Postgres,
        }
    }

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

/// An event's log position as the read-model tables store it: `position`, the
/// commit part, and `prepare_offset`, prepare minus commit (0 on the SQL
/// stores, whose positions are one sequence number). Ordered like
/// [`store::Position`]: for one commit, the offset orders as the prepare does.
///
/// Both parts must fit a signed 64-bit integer (SQLite's integers): EventStoreDB
/// positions are byte offsets in its log, far below 2^63 in practice; the
/// offset of two such numbers then fits as well. A position that does not is
/// a poison event, never a wrapped number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RowPosition {
    pub position: i64,
    pub prepare_offset: i64,
}

impl RowPosition {
    /// The columns of `position`.
    pub fn of(position: store::Position) -> Result<RowPosition, crate::ApplyError> {
        let too_big = || {
            crate::ApplyError::Poison(format!(
                "position {position} does not fit the read models' 64-bit columns"
            ))
        };
        let commit = i64::try_from(position.commit).map_err(|_| too_big())?;
        let prepare = i64::try_from(position.prepare).map_err(|_| too_big())?;
        Ok(RowPosition {
            position: commit,
            prepare_offset: prepare - commit,
        })
    }

    /// The log position these columns stand for; `None` for columns no
    /// position maps to (negative parts).
    pub fn to_position(self) -> Option<store::Position> {
        let commit = u64::try_from(self.position).ok()?;
        let prepare = self.position.checked_add(self.prepare_offset)?;
        Some(store::Position {
            commit,
            prepare: u64::try_from(prepare).ok()?,
        })
    }
}
