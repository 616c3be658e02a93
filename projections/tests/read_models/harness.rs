//! A fresh event store and read-model database per test, and canonical dumps of
//! the read-model tables to compare two databases with.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use projections::{Projection, ProjectionError, ReadDb, Runner};
use store::{EventStore, Position, PostgresEventStore, SqliteEventStore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// Every read-model table, in the order dumps list them.
pub const READ_MODEL_TABLES: [&str; 8] = [
    "tickets",
    "ticket_comments",
    "ticket_attachments",
    "ticket_watchers",
    "ticket_tags",
    "ticket_relations",
    "ticket_activity",
    "users",
];

/// The store under test, its read models (in the same database) and any extra
/// databases a test asked for.
pub struct Backend {
    pub store: Arc<dyn EventStore>,
    pub db: ReadDb,
    kind: Kind,
    dir: tempfile::TempDir,
    opened: Vec<Opened>,
}

/// A database kept open until [`Backend::cleanup`].
enum Opened {
    Sqlite(SqliteEventStore),
    Postgres(PostgresEventStore),
}

pub fn postgres_url() -> String {
    std::env::var("TICKETS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Runs `sql` on the PostgreSQL test server, outside any test's schema.
pub async fn on_postgres_server(sql: &str) {
    let admin = sqlx::PgPool::connect(&postgres_url()).await.unwrap();
    sqlx::query(sql).execute(&admin).await.unwrap();
    admin.close().await;
}

impl Backend {
    pub async fn new(kind: Kind) -> Backend {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let opened = open(kind, &dir).await;
        let (store, db): (Arc<dyn EventStore>, ReadDb) = match &opened {
            Opened::Sqlite(s) => (Arc::new(s.clone()), ReadDb::sqlite_store(s)),
            Opened::Postgres(s) => (Arc::new(s.clone()), ReadDb::postgres_store(s)),
        };
        Backend {
            store,
            db,
            kind,
            dir,
            opened: vec![opened],
        }
    }

    /// An empty, migrated database of the same kind, for a clean rebuild.
    pub async fn fresh_db(&mut self) -> ReadDb {
        let opened = open(self.kind, &self.dir).await;
        let db = match &opened {
            Opened::Sqlite(s) => ReadDb::sqlite_store(s),
            Opened::Postgres(s) => ReadDb::postgres_store(s),
        };
        self.opened.push(opened);
        db
    }

    /// A fresh database into which `projection` has caught up with the whole
    /// log: what the model under test must equal.
    pub async fn projected_afresh(&mut self, projection: Arc<dyn Projection>) -> ReadDb {
        let clean = self.fresh_db().await;
        self.runner(&clean).catch_up(projection).await.unwrap();
        clean
    }

    /// A runner over the store under test, writing into `db`.
    pub fn runner(&self, db: &ReadDb) -> Runner {
        Runner::new(self.store.clone(), db.clone())
    }

    /// Closes every database and drops the PostgreSQL schemas.
    pub async fn cleanup(self) {
        let mut schemas = vec![];
        for opened in &self.opened {
            match opened {
                Opened::Sqlite(store) => store.close().await,
                Opened::Postgres(store) => {
                    store.close().await;
                    schemas.push(store.schema().to_string());
                }
            }
        }
        if schemas.is_empty() {
            return;
        }
        let admin = sqlx::PgPool::connect(&postgres_url()).await.unwrap();
        for schema in schemas {
            sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .execute(&admin)
                .await
                .unwrap();
        }
        admin.close().await;
    }
}

async fn open(kind: Kind, dir: &tempfile::TempDir) -> Opened {
    match kind {
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
    }
}

/// Every read-model table as sorted rows of JSON text: two databases whose dumps
/// are equal hold the same read models.
pub async fn dump(db: &ReadDb) -> BTreeMap<&'static str, Vec<String>> {
    dump_tables(db, &READ_MODEL_TABLES).await
}

/// `tables` as sorted rows of JSON text, to compare two databases.
pub async fn dump_tables(
    db: &ReadDb,
    tables: &[&'static str],
) -> BTreeMap<&'static str, Vec<String>> {
    let mut dump = BTreeMap::new();
    for table in tables {
        let rows = match db {
            ReadDb::Sqlite(pool) => {
                let columns: Vec<String> =
                    sqlx::query_scalar("SELECT name FROM pragma_table_info($1) ORDER BY cid")
                        .bind(table)
                        .fetch_all(pool)
                        .await
                        .unwrap();
                sqlx::query_scalar(&format!(
                    "SELECT json_array({}) AS r FROM {table} ORDER BY r",
                    columns.join(", ")
                ))
                .fetch_all(pool)
                .await
                .unwrap()
            }
            ReadDb::Postgres(pool) => sqlx::query_scalar(&format!(
                "SELECT row_to_json(t)::text AS r FROM {table} t ORDER BY r"
            ))
            .fetch_all(pool)
            .await
            .unwrap(),
        };
        dump.insert(*table, rows);
    }
    dump
}

/// The checkpoint of `name` as `status` reports it.
pub async fn checkpoint(db: &ReadDb, name: &str) -> Option<projections::ProjectionStatus> {
    projections::status(db)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == name)
}

/// Runs `projection` live until its checkpoint reaches the head of the log,
/// then shuts it down and returns the run's result.
pub async fn run_until_caught_up(
    runner: &Runner,
    store: &dyn EventStore,
    projection: Arc<dyn Projection>,
) -> Result<(), ProjectionError> {
    let head = store.head().await.unwrap();
    let name = projection.name().to_string();
    let shutdown = CancellationToken::new();
    let task = runner.spawn(projection, shutdown.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if task.is_finished() {
            break;
        }
        let at = checkpoint(runner.db(), &name).await.map(|s| s.position);
        if at.unwrap_or(Position::START) >= head {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} did not reach {head}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    task.await.expect("the runner task")
}

/// Reads one column of strings, e.g. `CAST(tag AS TEXT)`, filtered by ticket id.
pub async fn strings(db: &ReadDb, sql: &str, ticket_id: Uuid) -> Vec<String> {
    let id = ticket_id.to_string();
    match db {
        ReadDb::Sqlite(pool) => sqlx::query_scalar(sql).bind(id).fetch_all(pool).await,
        ReadDb::Postgres(pool) => sqlx::query_scalar(sql).bind(id).fetch_all(pool).await,
    }
    .unwrap()
}

/// Appends to a new ticket stream a `TicketCommented` whose payload no
/// projection can decode; returns its id and position.
pub async fn append_undecodable(store: &dyn EventStore) -> (Uuid, Position) {
    let id = Uuid::new_v4();
    let position = store
        .append(
            &domain::stream_name(Uuid::new_v4()),
            store::ExpectedVersion::Any,
            vec![store::NewEvent {
                id,
                event_type: "TicketCommented".into(),
                schema_version: 1,
                data: serde_json::json!({"garbage": true}),
                metadata: serde_json::json!({}),
            }],
        )
        .await
        .unwrap()
        .first_position;
    (id, position)
}
