//! The two migration folders (`migrations/sqlite`, `migrations/postgres`)
//! describe one schema in two dialects: after migrating, both databases have
//! the same tables, each with the same columns, the same nullability and the
//! same unique keys (a primary key, a unique constraint or a unique index:
//! SQLite keeps some keys as separate indexes that a rebuild builds after
//! loading). A migration added to one folder only fails here.

// Shared with the PostgreSQL store tests; this one needs only a schema and a
// connection, not the contract harness.
#[allow(dead_code)]
#[path = "support/postgres.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Row;
use store::SqliteEventStore;

/// One table: each column and whether it is NOT NULL, and each unique key
/// as its sorted column names.
#[derive(Debug, Default, PartialEq)]
struct Table {
    columns: BTreeMap<String, bool>,
    unique_keys: BTreeSet<Vec<String>>,
}

type Shape = BTreeMap<String, Table>;

/// Tables of no read model or log: the migrators' own bookkeeping.
fn is_bookkeeping(table: &str) -> bool {
    table.starts_with("_sqlx") || table.starts_with("sqlite_")
}

async fn sqlite_shape() -> Shape {
    let store = SqliteEventStore::connect("sqlite::memory:")
        .await
        .expect("SQLite migrates");
    let pool = store.pool();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(pool)
            .await
            .unwrap();
    let mut shape = Shape::new();
    for table in tables.into_iter().filter(|t| !is_bookkeeping(t)) {
        let rows = sqlx::query("SELECT name, \"notnull\", pk FROM pragma_table_info(?)")
            .bind(&table)
            .fetch_all(pool)
            .await
            .unwrap();
        let mut shaped = Table::default();
        let mut primary_key = Vec::new();
        for row in &rows {
            let name: String = row.get("name");
            let pk: i64 = row.get("pk");
            let not_null: i64 = row.get("notnull");
            // PostgreSQL's primary key columns are never NULL; SQLite's are
            // unless the column says NOT NULL (or is the rowid).
            shaped.columns.insert(name.clone(), not_null != 0 || pk > 0);
            if pk > 0 {
                primary_key.push(name);
            }
        }
        if !primary_key.is_empty() {
            primary_key.sort();
            shaped.unique_keys.insert(primary_key);
        }
        let indexes: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_index_list(?) WHERE \"unique\" = 1")
                .bind(&table)
                .fetch_all(pool)
                .await
                .unwrap();
        for index in indexes {
            let mut columns: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_index_info(?)")
                    .bind(&index)
                    .fetch_all(pool)
                    .await
                    .unwrap();
            columns.sort();
            shaped.unique_keys.insert(columns);
        }
        shape.insert(table, shaped);
    }
    shape
}

async fn postgres_shape(schema: &str) -> Shape {
    let store = support::connect(schema).await;
    let columns = sqlx::query(
        "SELECT c.table_name::text AS table_name, c.column_name::text AS column_name, \
                c.is_nullable = 'NO' AS not_null \
         FROM information_schema.columns c \
         JOIN information_schema.tables t \
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = $1 AND t.table_type = 'BASE TABLE'",
    )
    .bind(schema)
    .fetch_all(store.pool())
    .await
    .unwrap();
    let mut shape = Shape::new();
    for row in columns {
        let table: String = row.get("table_name");
        if !is_bookkeeping(&table) {
            let table = shape.entry(table).or_default();
            table
                .columns
                .insert(row.get("column_name"), row.get("not_null"));
        }
    }
    let keys = sqlx::query(
        "SELECT t.relname::text AS table_name, \
                array_agg(a.attname::text ORDER BY a.attname::text) AS columns \
         FROM pg_index i \
         JOIN pg_class t ON t.oid = i.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY (i.indkey) \
         WHERE n.nspname = $1 AND i.indisunique \
         GROUP BY i.indexrelid, t.relname",
    )
    .bind(schema)
    .fetch_all(store.pool())
    .await
    .unwrap();
    for row in keys {
        let table: String = row.get("table_name");
        if let Some(table) = shape.get_mut(&table) {
            table.unique_keys.insert(row.get("columns"));
        }
    }
    shape
}

/// Both databases, freshly migrated, have the same tables, columns,
/// nullability and unique keys.
#[tokio::test]
async fn both_databases_migrate_to_the_same_tables_and_columns() {
    let schema = support::fresh_schema();
    let postgres = postgres_shape(&schema).await;
    support::drop_schema(&schema).await;
    let sqlite = sqlite_shape().await;
    assert!(sqlite.len() > 5, "the migrations define tables: {sqlite:?}");

    let names = |s: &Shape| s.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&sqlite),
        names(&postgres),
        "the same tables on both databases"
    );
    for (table, columns) in &sqlite {
        assert_eq!(
            Some(columns),
            postgres.get(table),
            "table {table} on SQLite, then on PostgreSQL"
        );
    }
}
