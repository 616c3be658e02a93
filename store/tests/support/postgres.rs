//! A fresh PostgreSQL schema per test, dropped afterwards.
//!
//! Tests run in parallel, each in a schema of its own, against the server named by
//! `TICKETS_TEST_POSTGRES_URL`. When no server answers they fail, saying so: a
//! store test that passes without a database proves nothing.

use async_trait::async_trait;
use sqlx::{Connection, PgConnection};
use store::contract::Harness;
use store::{EventStore, PostgresEventStore};
use uuid::Uuid;

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn url() -> String {
    std::env::var("TICKETS_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

pub fn fresh_schema() -> String {
    format!("t_{}", Uuid::new_v4().simple())
}

/// Opens a store on `schema`, failing the test with instructions if it cannot.
pub async fn connect(schema: &str) -> PostgresEventStore {
    let url = url();
    PostgresEventStore::connect_with_schema(&url, schema)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL store tests need a server: connecting to {url} failed ({e}). \
                 Start PostgreSQL or point TICKETS_TEST_POSTGRES_URL at one."
            )
        })
}

pub async fn drop_schema(schema: &str) {
    let mut conn = PgConnection::connect(&url())
        .await
        .expect("connect to drop schema");
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(&mut conn)
        .await
        .expect("drop schema");
    let _ = conn.close().await;
}

pub struct PgSchema {
    pub schema: String,
    pub store: PostgresEventStore,
}

#[async_trait]
impl Harness for PgSchema {
    async fn start() -> Self {
        let schema = fresh_schema();
        let store = connect(&schema).await;
        PgSchema { schema, store }
    }

    fn store(&self) -> &dyn EventStore {
        &self.store
    }

    async fn finish(self) {
        self.store.close().await;
        drop_schema(&self.schema).await;
    }
}
