//! A SQLite shadow: a file beside the live database, `<file>.rebuild-<name>`,
//! its tables created from the live ones' DDL.
//!
//! A table cannot move between database files, so the swap (step 3 of the
//! module docs of [`super`]) attaches the shadow to a live connection and
//! copies the rows under the live database's write lock.

use std::time::Instant;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Executor, SqlitePool};
use store::Position;

use super::shadow::{copy_rows, with_checkpoints, CatchUp, Shadow};
use super::{RebuildError, REBUILDING};
use crate::db::ReadDb;
use crate::error::ProjectionError;

/// The shadow file's page cache, in KiB (negative: a size, not pages),
/// each shadow's own: 16 MiB, 8 times SQLite's default. Not more: a page
/// evicted is read back from the operating system's file cache, while a
/// cache that keeps growing makes the kernel hand out and zero fresh memory
/// (page faults under `pcache1Fetch`), which costs more than the re-reads
/// save and raises the process's peak memory.
const SHADOW_CACHE_SIZE: &str = "-16384";
/// The page size of a shadow file, in bytes: SQLite's largest, where the
/// live file has the default 4 KiB. A shadow is written in bulk, its
/// indexes built by sorting, and then read whole by the swap's copy (which
/// copies rows, not pages, so the sizes need not match): fewer, bigger
/// pages mean fewer reads, writes and b-tree cells to handle. Its cache
/// stays [`SHADOW_CACHE_SIZE`] bytes.
const SHADOW_PAGE_SIZE: u32 = 65_536;

/// One projection's shadow file.
pub(super) struct SqliteShadow {
    /// The live database.
    live_pool: SqlitePool,
    /// The shadow file's path.
    path: String,
    /// The shadow file's own pool (one connection).
    pool: SqlitePool,
    /// `pool`, as the runner writes into it.
    db: ReadDb,
    name: String,
    tables: Vec<&'static str>,
    /// The `CREATE INDEX` statements of the deferred indexes (see
    /// [`Shadow`]).
    deferred: Vec<String>,
}

impl SqliteShadow {
    pub(super) async fn create(
        pool: &SqlitePool,
        name: &str,
        tables: &[&'static str],
        insert_only: &[&'static str],
    ) -> Result<SqliteShadow, RebuildError> {
        let file: String =
            sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                .fetch_one(pool)
                .await?;
        if file.is_empty() {
            return Err(RebuildError::Unsupported {
                projection: name.to_string(),
                reason: "the database is in memory".into(),
            });
        }
        let path = format!("{file}.rebuild-{name}");
        remove_files(&path);
        let mut ddl = Vec::new();
        let mut deferred = Vec::new();
        for table in with_checkpoints(tables) {
            let statements: Vec<(String, bool, bool)> = sqlx::query_as(
                "SELECT sql, type = 'index', sql LIKE 'CREATE UNIQUE%' \
                 FROM sqlite_master WHERE tbl_name = $1 AND sql IS NOT NULL \
                 ORDER BY type = 'index', name",
            )
            .bind(table)
            .fetch_all(pool)
            .await?;
            // Only uniqueness declared with its own `CREATE UNIQUE INDEX` can
            // be deferred; a table's inline constraints come with the table.
            let insert_only = insert_only.contains(&table);
            for (statement, index, unique) in statements {
                if index && (!unique || insert_only) {
                    deferred.push(statement);
                } else {
                    ddl.push(statement);
                }
            }
        }
        // The shadow is a scratch file, deleted on failure and never read
        // after a crash (`create` starts it afresh): no fsyncs, and while it
        // loads, its journal in memory, so each page is written once, to the
        // file (in WAL mode a page would go to the WAL and then again to the
        // file). It turns to WAL before the swap (`Shadow::prepare`). Its
        // pages are bigger than the live file's ([`SHADOW_PAGE_SIZE`]).
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .page_size(SHADOW_PAGE_SIZE)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Memory)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Off)
            .pragma("cache_size", SHADOW_CACHE_SIZE)
            .pragma("temp_store", "memory");
        let shadow_pool: SqlitePool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        for statement in ddl {
            shadow_pool.execute(statement.as_str()).await?;
        }
        Ok(SqliteShadow {
            live_pool: pool.clone(),
            path,
            db: ReadDb::Sqlite(shadow_pool.clone()),
            pool: shadow_pool,
            name: name.to_string(),
            tables: tables.to_vec(),
            deferred,
        })
    }

    /// Steps 1 to 3 of the module docs of [`super`] on `conn`, a live
    /// connection the shadow is attached to as `rebuild`, in one
    /// transaction, which is left open on an error.
    async fn swap_attached(
        &self,
        conn: &mut sqlx::SqliteConnection,
        catch_up: &CatchUp,
    ) -> Result<Position, RebuildError> {
        let name = &self.name;
        // The write lock on the live database only: BEGIN IMMEDIATE would
        // take it on the attached shadow too, and a catch-up writing into
        // the shadow through its own connection would then fail with
        // "database is locked". A write statement that touches no row takes
        // main's lock, waiting out the live runner's batch as BEGIN
        // IMMEDIATE would.
        conn.execute("BEGIN").await?;
        conn.execute("UPDATE main.projection_checkpoints SET position = position WHERE 0")
            .await?;
        let live_at: Option<String> =
            sqlx::query_scalar("SELECT position FROM main.projection_checkpoints WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *conn)
                .await?;
        let live_at = match live_at {
            Some(cursor) => cursor.parse().map_err(|e: store::InvalidPosition| {
                ProjectionError::CorruptCheckpoint {
                    projection: name.to_string(),
                    detail: e.to_string(),
                }
            })?,
            None => Position::START,
        };
        let at = catch_up.to(live_at).await?;
        for table in &self.tables {
            let began = Instant::now();
            conn.execute(copy_rows("main", "rebuild", table).as_str())
                .await?;
            tracing::debug!(table, elapsed = ?began.elapsed(), "rebuild: rows copied");
        }
        sqlx::query("DELETE FROM main.projection_checkpoints WHERE name = $1")
            .bind(format!("{REBUILDING}{name}"))
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO main.projection_checkpoints (name, position, updated_at, state, error) \
             VALUES ($1, $2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'running', NULL) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position, \
             updated_at = excluded.updated_at, state = excluded.state, error = NULL",
        )
        .bind(name)
        .bind(at.to_cursor())
        .execute(&mut *conn)
        .await?;
        let began = Instant::now();
        conn.execute("COMMIT").await?;
        tracing::debug!(elapsed = ?began.elapsed(), "rebuild: swap committed");
        Ok(at)
    }
}

#[async_trait]
impl Shadow for SqliteShadow {
    fn db(&self) -> &ReadDb {
        &self.db
    }

    /// The deferred indexes, then back to WAL mode (after the indexes, so
    /// they are written once, to the file, rather than to the WAL and
    /// again to the file), as the swap needs: it attaches the shadow to a
    /// live connection, and with a rollback journal a read of the shadow
    /// there locks out any writer of it, the catch-up's included
    /// (SQLITE_BUSY).
    async fn prepare(&self) -> Result<(), sqlx::Error> {
        for statement in &self.deferred {
            self.pool.execute(statement.as_str()).await?;
        }
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
            .fetch_one(&self.pool)
            .await?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(sqlx::Error::Protocol(format!(
                "the rebuild's file stayed in journal mode {mode}, not WAL"
            )));
        }
        Ok(())
    }

    async fn swap(&self, catch_up: &CatchUp) -> Result<Position, RebuildError> {
        // One connection: ATTACH is per connection and outside transactions.
        let mut conn = self.live_pool.acquire().await?;
        sqlx::query("ATTACH DATABASE $1 AS rebuild")
            .bind(&self.path)
            .execute(&mut *conn)
            .await?;
        let swapped = self.swap_attached(&mut conn, catch_up).await;
        if swapped.is_err() {
            let _ = conn.execute("ROLLBACK").await;
        }
        if let Err(e) = conn.execute("DETACH DATABASE rebuild").await {
            // A connection with the shadow still attached must not serve
            // anyone else.
            tracing::warn!(error = %e, "cannot detach the rebuild's file");
            conn.close_on_drop();
        }
        swapped
    }

    async fn discard(&self) {
        self.pool.close().await;
        remove_files(&self.path);
    }
}

/// Removes a shadow file and whatever SQLite kept beside it.
fn remove_files(path: &str) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
}
