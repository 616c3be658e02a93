//! The databases a scenario runs on: a fresh SQLite file (WAL, the server's
//! durable settings, never `:memory:`) or a fresh PostgreSQL schema, dropped
//! again when the scenario is done.

use std::fmt;
use std::sync::Arc;

use anyhow::Context;
use clap::ValueEnum;
use projections::ReadDb;
use store::{EventStore, PostgresEventStore, SqliteEventStore};
use uuid::Uuid;

/// One event-store backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        })
    }
}

/// `--backend`: one of them or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    Sqlite,
    Postgres,
    Both,
}

impl BackendChoice {
    pub fn backends(self) -> Vec<Backend> {
        match self {
            BackendChoice::Sqlite => vec![Backend::Sqlite],
            BackendChoice::Postgres => vec![Backend::Postgres],
            BackendChoice::Both => vec![Backend::Sqlite, Backend::Postgres],
        }
    }
}

/// A freshly created store and the read-model database beside it.
pub struct Fresh {
    pub log: Arc<dyn EventStore>,
    pub read_db: ReadDb,
    /// The store's URL, for messages.
    pub url: String,
    kind: Kind,
}

enum Kind {
    Sqlite {
        store: SqliteEventStore,
        _dir: tempfile::TempDir,
    },
    Postgres {
        store: PostgresEventStore,
        admin_url: String,
    },
}

impl Fresh {
    /// Creates an empty store on `backend` (migrations run on connect).
    pub async fn open(backend: Backend, postgres_url: &str) -> anyhow::Result<Fresh> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("tickets-bench-")
                    .tempdir()
                    .context("temp dir for the SQLite file")?;
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                let store = SqliteEventStore::connect(&url)
                    .await
                    .context("opening SQLite")?;
                Ok(Fresh {
                    log: Arc::new(store.clone()),
                    read_db: ReadDb::sqlite_store(&store),
                    url,
                    kind: Kind::Sqlite { store, _dir: dir },
                })
            }
            Backend::Postgres => {
                let schema = format!("bench_{}", Uuid::new_v4().simple());
                let store = PostgresEventStore::connect_with_schema(postgres_url, &schema)
                    .await
                    .with_context(|| format!("connecting to PostgreSQL at {postgres_url}"))?;
                Ok(Fresh {
                    log: Arc::new(store.clone()),
                    read_db: ReadDb::postgres_store(&store),
                    url: postgres_url.to_string(),
                    kind: Kind::Postgres {
                        store,
                        admin_url: postgres_url.to_string(),
                    },
                })
            }
        }
    }

    /// Puts what was just written at rest before something is timed:
    /// SQLite's WAL checkpointed into the database file, which is synced,
    /// and truncated; PostgreSQL's dirty buffers written out and synced
    /// (`CHECKPOINT`, which the bench's superuser may run). Without it a
    /// timed rebuild shares the disk with the generator's writes still on
    /// their way, and a run depends on how far they got.
    pub async fn settle(&self) -> anyhow::Result<()> {
        match &self.kind {
            Kind::Sqlite { store, .. } => {
                // The store's own checkpointer may hold the WAL a moment.
                let mut tries = 0;
                loop {
                    let (busy, _, _): (i64, i64, i64) =
                        sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                            .fetch_one(store.writer_pool())
                            .await
                            .context("checkpointing the SQLite WAL")?;
                    if busy == 0 {
                        break;
                    }
                    tries += 1;
                    if tries == 100 {
                        anyhow::bail!("the SQLite WAL stayed busy for 10 s: cannot checkpoint it");
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
            Kind::Postgres { store, .. } => {
                sqlx::query("CHECKPOINT")
                    .execute(store.pool())
                    .await
                    .context("CHECKPOINT (needs a superuser or the pg_checkpoint role)")?;
            }
        }
        Ok(())
    }

    /// Closes the pools and removes the data (the SQLite directory goes with
    /// the temp dir; the PostgreSQL schema is dropped).
    pub async fn close(self) -> anyhow::Result<()> {
        match self.kind {
            Kind::Sqlite { store, _dir } => {
                store.close().await;
                Ok(())
            }
            Kind::Postgres { store, admin_url } => {
                let schema = store.schema().to_string();
                store.close().await;
                let admin = sqlx::PgPool::connect(&admin_url).await?;
                sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                    .execute(&admin)
                    .await
                    .with_context(|| format!("dropping schema {schema}"))?;
                admin.close().await;
                Ok(())
            }
        }
    }
}
