//! The embedded schema of each SQL backend.
//!
//! Both stores run their migrator on connect. Read models add their own tables as
//! further files in the same directories (`migrations/sqlite`, `migrations/postgres`
//! at the workspace root), so one migrator per backend owns the whole database and
//! versions never clash. `store/build.rs` makes cargo re-embed them when a file
//! is added.

use sqlx::migrate::Migrator;

/// Every migration of the SQLite database, in order.
pub static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");

/// Every migration of the PostgreSQL database (run inside the store's schema).
pub static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

/// [`SQLITE_MIGRATOR`], for callers that prefer a function.
pub fn sqlite_migrator() -> &'static Migrator {
    &SQLITE_MIGRATOR
}

/// [`POSTGRES_MIGRATOR`], for callers that prefer a function.
pub fn postgres_migrator() -> &'static Migrator {
    &POSTGRES_MIGRATOR
}
