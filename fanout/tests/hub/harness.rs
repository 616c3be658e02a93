//! A fresh event store per test, on SQLite or PostgreSQL: the hub needs a log
//! and nothing else.

use std::sync::Arc;

use store::{EventStore, PostgresEventStore, SqliteEventStore};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// The store under test, kept open until [`Backend::cleanup`].
pub struct Backend {
    pub store: Arc<dyn EventStore>,
    opened: Opened,
    _dir: tempfile::TempDir,
}

enum Opened {
    Sqlite(SqliteEventStore),
    Postgres(PostgresEventStore),
}

fn postgres_url() -> String {
    std::env::var("TICKETS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl Backend {
    pub async fn new(kind: Kind) -> Backend {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let opened = match kind {
            Kind::Sqlite => {
                let path = dir.path().join(format!("{}.db", Uuid::new_v4().simple()));
                let url = format!("sqlite://{}", path.display());
                Opened::Sqlite(
                    SqliteEventStore::connect(&url)
                        .await
                        .expect("a SQLite store"),
                )
            }
            Kind::Postgres => {
                let url = postgres_url();
                let schema = format!("t_{}", Uuid::new_v4().simple());
                let store = PostgresEventStore::connect_with_schema(&url, &schema)
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "no PostgreSQL server answers at {url} \
                             (set TICKETS_TEST_POSTGRES_URL): {e}"
                        )
                    });
                Opened::Postgres(store)
            }
        };
        let store: Arc<dyn EventStore> = match &opened {
            Opened::Sqlite(s) => Arc::new(s.clone()),
            Opened::Postgres(s) => Arc::new(s.clone()),
        };
        Backend {
            store,
            opened,
            _dir: dir,
        }
    }

    /// Closes the database and drops the PostgreSQL schema.
    pub async fn cleanup(self) {
        match &self.opened {
            Opened::Sqlite(store) => store.close().await,
            Opened::Postgres(store) => {
                store.close().await;
                let admin = sqlx::PgPool::connect(&postgres_url()).await.unwrap();
                sqlx::query(&format!(
                    "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                    store.schema()
                ))
                .execute(&admin)
                .await
                .unwrap();
                admin.close().await;
            }
        }
    }
}
