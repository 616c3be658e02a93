//! The stores a process works on, opened from the configured URLs in one
//! place ([`Stores::open`]) for the server, the command line and the demo:
//! the SQL database (read models and checkpoints, and by default the log)
//! and the event log.

use std::sync::Arc;

use anyhow::Context;
use projections::ReadDb;
use store::postgres::PostgresEventStore;
use store::sqlite::SqliteEventStore;
use store::{EventStore, StoreError};

#[cfg(test)]
use store::{ExpectedVersion, NewEvent};

/// The embedded default: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://tickets.db";

/// Where the event log lives. The read models and checkpoints always live in
/// the SQL database (`TICKETS_DATABASE_URL`); the log lives there too unless an
/// EventStoreDB cluster is named (`TICKETS_EVENT_STORE_URL=esdb://...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUrls {
    pub database_url: String,
    pub event_store_url: Option<String>,
}

impl StoreUrls {
    /// The URL of the event log.
    pub fn event_log(&self) -> &str {
        self.event_store_url
            .as_deref()
            .unwrap_or(&self.database_url)
    }
}

/// The SQL database the read models (and, by default, the log) live in.
pub enum SqlDatabase {
    Sqlite(SqliteEventStore),
    Postgres(PostgresEventStore),
}

impl SqlDatabase {
    /// Opens `url` (running migrations), in `schema` on PostgreSQL when given.
    pub async fn open(url: &str, schema: Option<&str>) -> anyhow::Result<SqlDatabase> {
        let what = || format!("opening {}", redact(url));
        if url.starts_with("sqlite:") {
            Ok(SqlDatabase::Sqlite(
                SqliteEventStore::connect(url).await.with_context(what)?,
            ))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let store = match schema {
                Some(schema) => PostgresEventStore::connect_with_schema(url, schema).await,
                None => PostgresEventStore::connect(url).await,
            };
            Ok(SqlDatabase::Postgres(store.with_context(what)?))
        } else {
            anyhow::bail!(
                "unsupported database URL '{}': use sqlite://FILE or postgres://...",
                redact(url)
            )
        }
    }

    /// The log kept in this database.
    pub fn store(&self) -> Arc<dyn EventStore> {
        match self {
            SqlDatabase::Sqlite(s) => Arc::new(s.clone()),
            SqlDatabase::Postgres(s) => Arc::new(s.clone()),
        }
    }

    /// For queries: on SQLite the reader connections, not the single writer.
    pub fn query_db(&self) -> ReadDb {
        match self {
            SqlDatabase::Sqlite(s) => ReadDb::Sqlite(s.pool().clone()),
            SqlDatabase::Postgres(s) => ReadDb::postgres_store(s),
        }
    }

    /// For projection batches: on SQLite through the store's writer.
    pub fn write_db(&self) -> ReadDb {
        match self {
            SqlDatabase::Sqlite(s) => ReadDb::sqlite_store(s),
            SqlDatabase::Postgres(s) => ReadDb::postgres_store(s),
        }
    }
}

/// What a process works on: the SQL database and the event log (the
/// database's own unless an EventStoreDB URL is configured).
pub struct Stores {
    pub database: SqlDatabase,
    pub log: Arc<dyn EventStore>,
}

impl Stores {
    /// Opens the database (running migrations, in `schema` on PostgreSQL when
    /// given), then the log.
    pub async fn open(urls: &StoreUrls, schema: Option<&str>) -> anyhow::Result<Stores> {
        let database = SqlDatabase::open(&urls.database_url, schema).await?;
        let log = match &urls.event_store_url {
            Some(url) => open_store(url)
                .await
                .with_context(|| format!("opening {}", redact(url)))?,
            None => database.store(),
        };
        Ok(Stores { database, log })
    }
}

/// Opens the event store named by `url`: `sqlite://path`, `sqlite::memory:`,
/// `postgres://...` (`postgresql://` too), or `esdb://...` /
/// `esdb+discover://...` for EventStoreDB (connects lazily). Migrations are
/// applied on open for the SQL stores.
pub async fn open_store(url: &str) -> Result<Arc<dyn EventStore>, StoreError> {
    if url.starts_with("esdb://") || url.starts_with("esdb+discover://") {
        Ok(Arc::new(store::esdb::EsdbEventStore::connect(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(
            store::sqlite::SqliteEventStore::connect(url).await?,
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            store::postgres::PostgresEventStore::connect(url).await?,
        ))
    } else {
        Err(StoreError::Invalid(format!(
            "unsupported database URL '{}': use sqlite://FILE or postgres://...",
            redact(url)
        )))
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A password in a database URL never reaches a message.
    #[test]
    fn redact_hides_the_password_only() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://tickets.db"), "sqlite://tickets.db");
    }

    /// An unknown scheme is a clear error, not a panic or a silent default.
    #[tokio::test]
    async fn an_unknown_database_scheme_is_refused() {
        let err = open_store("mysql://u:pw@h/db")
            .await
            .err()
            .expect("refused");
        assert!(matches!(err, StoreError::Invalid(ref m) if m.contains("mysql://u:***@h/db")));
    }

    /// The log on EventStoreDB beside read models on SQLite, in one process: both
    /// open, and with no server listening an append is a typed `Unavailable`, not
    /// a panic (eventstore 4.0.0 installs the rustls provider itself and panics
    /// if something else did first).
    #[tokio::test]
    async fn an_esdb_event_log_opens_beside_sqlite_without_a_panic() {
        let urls = StoreUrls {
            database_url: "sqlite::memory:".into(),
            event_store_url: Some("esdb://127.0.0.1:1?tls=false".into()),
        };
        let read_models = open_store(&urls.database_url).await.expect("sqlite opens");
        let log = open_store(urls.event_log())
            .await
            .expect("esdb opens lazily");
        let event = NewEvent {
            id: uuid::Uuid::new_v4(),
            event_type: "Probe".into(),
            schema_version: 1,
            data: serde_json::json!({}),
            metadata: serde_json::json!({}),
        };
        let appended = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            log.append("probe", ExpectedVersion::Any, vec![event]),
        )
        .await
        .expect("gives up within the timeout");
        assert!(
            matches!(appended, Err(StoreError::Unavailable(_))),
            "{appended:?}"
        );
        assert_eq!(
            read_models.head().await.expect("sqlite still works"),
            store::Position::START
        );
    }

    /// Without an EventStoreDB URL the log lives in the SQL database.
    #[test]
    fn the_event_log_defaults_to_the_database() {
        let urls = StoreUrls {
            database_url: "sqlite://x.db".into(),
            event_store_url: None,
        };
        assert_eq!(urls.event_log(), "sqlite://x.db");
    }
}
