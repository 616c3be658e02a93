//! Leases: with several server processes on one database, each projection is
//! written by one of them at a time.
//!
//! PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) on a
//! dedicated connection, keyed by the schema and the projection's name (so
//! two stores in two schemas of one database do not exclude each other). The
//! lock lives as long as that connection: if the holder dies, or its
//! connection does, the server releases it and another process takes over.
//! The holder checks its connection every few seconds ([`Lease::check`]) and
//! stops writing when it is gone. (Even a batch in flight at that moment is
//! harmless: each batch locks the checkpoint row and skips events at or before
//! it, so two writers take turns rather than apply an event twice.)
//!
//! SQLite: one process owns the file (the store's single writer connection),
//! so the lease is granted at once and never lost.

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, Postgres};

use crate::db::ReadDb;

/// The right to write one projection, held until dropped or released.
#[derive(Debug)]
pub struct Lease {
    name: String,
    hold: Hold,
}

#[derive(Debug)]
enum Hold {
    /// SQLite: nothing to hold.
    Granted,
    Postgres(PgConnection),
}

const TRY_LOCK: &str =
    "SELECT pg_try_advisory_lock(hashtextextended(current_schema() || '/' || $1, 0))";
const UNLOCK: &str =
    "SELECT pg_advisory_unlock(hashtextextended(current_schema() || '/' || $1, 0))";

impl Lease {
    /// Takes the lease of `name` if nobody holds it; `None` if another
    /// session does.
    #[tracing::instrument(skip(db), err)]
    pub async fn try_acquire(db: &ReadDb, name: &str) -> Result<Option<Lease>, sqlx::Error> {
        let hold = match db {
            ReadDb::Sqlite(_) => Hold::Granted,
            ReadDb::Postgres(pool) => {
                // Detached: the lock must not go back to the pool with the
                // connection, and must die with it.
                let pooled: PoolConnection<Postgres> = pool.acquire().await?;
                let mut conn = pooled.detach();
                let taken: bool = sqlx::query_scalar(TRY_LOCK)
                    .bind(name)
                    .fetch_one(&mut conn)
                    .await?;
                if !taken {
                    let _ = sqlx::Connection::close(conn).await;
                    return Ok(None);
                }
                Hold::Postgres(conn)
            }
        };
        Ok(Some(Lease {
            name: name.to_string(),
            hold,
        }))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the lease is still held: on PostgreSQL, a round trip on the
    /// lock's connection. An error means it may have been lost: stop writing
    /// and acquire again.
    pub async fn check(&mut self) -> Result<(), sqlx::Error> {
        match &mut self.hold {
            Hold::Granted => Ok(()),
            Hold::Postgres(conn) => {
                sqlx::query("SELECT 1").execute(&mut *conn).await?;
                Ok(())
            }
        }
    }

    /// Gives the lease up now rather than when the connection is dropped.
    pub async fn release(self) {
        if let Hold::Postgres(mut conn) = self.hold {
            let _ = sqlx::query(UNLOCK)
                .bind(&self.name)
                .execute(&mut conn)
                .await;
            let _ = sqlx::Connection::close(conn).await;
        }
    }
}
