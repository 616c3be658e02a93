//! One SQL text, two databases: values bound and read back in each
//! database's native types (see `migrations/README.md`, "Types per
//! database"), so the queue-metrics and notifications read models write
//! their SQL once.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Postgres, QueryBuilder, Row, Sqlite};
use uuid::Uuid;

use crate::db::{ReadDb, ReadTx};

/// A value to bind.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
    Bool(bool),
    Id(Uuid),
    Time(DateTime<Utc>),
    OptTime(Option<DateTime<Utc>>),
    Day(NaiveDate),
    Json(&'a serde_json::Value),
    /// A list of ids, for [`any_id`]: on SQLite a JSON array, on PostgreSQL
    /// a `uuid[]`; one parameter whatever the list's length, so the
    /// statement's text never changes.
    Ids(&'a [Uuid]),
    /// A list of texts, for [`any_id`] likewise: a JSON array or a `text[]`.
    Texts(&'a [String]),
}

/// `column IN` the ids bound as parameter `$n` ([`Arg::Ids`]), in each
/// database's SQL.
pub(crate) fn any_id(tx: &ReadTx, column: &str, n: usize) -> String {
    tx.dialect().any(column, n)
}

/// Times as SQLite stores them: fixed-width RFC 3339, so text order is time order.
pub(crate) fn sqlite_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn sqlite_day(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

/// Evaluates `$body` with `$v` bound to `$arg` as SQLite stores it.
macro_rules! sqlite_value {
    ($arg:expr, $v:ident => $body:expr) => {
        match $arg {
            Arg::Text($v) => {
                let $v = $v.to_string();
                $body
            }
            Arg::OptText($v) => {
                let $v = $v.map(str::to_string);
                $body
            }
            Arg::Int($v) => $body,
            Arg::Bool($v) => $body,
            Arg::Id($v) => {
                let $v = $v.to_string();
                $body
            }
            Arg::Time($v) => {
                let $v = sqlite_time($v);
                $body
            }
            Arg::OptTime($v) => {
                let $v = $v.map(sqlite_time);
                $body
            }
            Arg::Day($v) => {
                let $v = sqlite_day($v);
                $body
            }
            Arg::Json($v) => {
                let $v = $v.to_string();
                $body
            }
            Arg::Ids($v) => {
                let $v =
                    serde_json::Value::from($v.iter().map(Uuid::to_string).collect::<Vec<_>>())
                        .to_string();
                $body
            }
            Arg::Texts($v) => {
                let $v = serde_json::Value::from($v.to_vec()).to_string();
                $body
            }
        }
    };
}

/// Evaluates `$body` with `$v` bound to `$arg` in PostgreSQL's own type.
macro_rules! postgres_value {
    ($arg:expr, $v:ident => $body:expr) => {
        match $arg {
            Arg::Text($v) => {
                let $v = $v.to_string();
                $body
            }
            Arg::OptText($v) => {
                let $v = $v.map(str::to_string);
                $body
            }
            Arg::Int($v) => $body,
            Arg::Bool($v) => $body,
            Arg::Id($v) => $body,
            Arg::Time($v) => $body,
            Arg::OptTime($v) => $body,
            Arg::Day($v) => $body,
            Arg::Json($v) => {
                let $v = $v.clone();
                $body
            }
            Arg::Ids($v) => {
                let $v = $v.to_vec();
                $body
            }
            Arg::Texts($v) => {
                let $v = $v.to_vec();
                $body
            }
        }
    };
}

macro_rules! bind_sqlite {
    ($sql:expr, $args:expr) => {{
        let mut query = sqlx::query($sql);
        for arg in $args {
            query = sqlite_value!(*arg, v => query.bind(v));
        }
        query
    }};
}

macro_rules! bind_postgres {
    ($sql:expr, $args:expr) => {{
        let mut query = sqlx::query($sql);
        for arg in $args {
            query = postgres_value!(*arg, v => query.bind(v));
        }
        query
    }};
}

/// Runs `head VALUES (...), (...) tail` in `tx`, one parenthesised group per
/// row of `rows` (each row the same columns), `per_statement` rows per
/// statement: a batch's rows in a few statements instead of one each. The
/// number of rows it affected.
pub(crate) async fn execute_values(
    tx: &mut ReadTx,
    head: &str,
    tail: &str,
    rows: &[Vec<Arg<'_>>],
    per_statement: usize,
) -> Result<u64, sqlx::Error> {
    let mut affected = 0;
    for chunk in rows.chunks(per_statement.max(1)) {
        affected += match tx {
            ReadTx::Sqlite(tx) => {
                let mut query = QueryBuilder::<Sqlite>::new(head);
                query.push_values(chunk, |mut b, row| {
                    for arg in row {
                        sqlite_value!(*arg, v => { b.push_bind(v); });
                    }
                });
                query.push(tail);
                query.build().execute(&mut **tx).await?.rows_affected()
            }
            ReadTx::Postgres(tx) => {
                let mut query = QueryBuilder::<Postgres>::new(head);
                query.push_values(chunk, |mut b, row| {
                    for arg in row {
                        postgres_value!(*arg, v => { b.push_bind(v); });
                    }
                });
                query.push(tail);
                query.build().execute(&mut **tx).await?.rows_affected()
            }
        };
    }
    Ok(affected)
}

/// Runs a statement in `tx`; the number of rows it affected.
pub(crate) async fn execute(
    tx: &mut ReadTx,
    sql: &str,
    args: &[Arg<'_>],
) -> Result<u64, sqlx::Error> {
    Ok(match tx {
        ReadTx::Sqlite(tx) => bind_sqlite!(sql, args)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
        ReadTx::Postgres(tx) => bind_postgres!(sql, args)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
    })
}

/// Every row of a query in `tx`.
pub(crate) async fn fetch(
    tx: &mut ReadTx,
    sql: &str,
    args: &[Arg<'_>],
) -> Result<Vec<AnyRow>, sqlx::Error> {
    Ok(match tx {
        ReadTx::Sqlite(tx) => bind_sqlite!(sql, args)
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .map(AnyRow::Sqlite)
            .collect(),
        ReadTx::Postgres(tx) => bind_postgres!(sql, args)
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .map(AnyRow::Postgres)
            .collect(),
    })
}

/// Every row of a query on the pool, outside any transaction.
pub(crate) async fn fetch_db(
    db: &ReadDb,
    sql: &str,
    args: &[Arg<'_>],
) -> Result<Vec<AnyRow>, sqlx::Error> {
    Ok(match db {
        ReadDb::Sqlite(pool) => bind_sqlite!(sql, args)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(AnyRow::Sqlite)
            .collect(),
        ReadDb::Postgres(pool) => bind_postgres!(sql, args)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(AnyRow::Postgres)
            .collect(),
    })
}

/// A row of either database, read back into Rust types.
pub(crate) enum AnyRow {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

fn decode_error(column: &str, e: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: e.to_string().into(),
    }
}

fn parse_time(column: &str, text: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| decode_error(column, e))
}

impl AnyRow {
    pub fn text(&self, column: &str) -> Result<String, sqlx::Error> {
        match self {
            AnyRow::Sqlite(row) => row.try_get(column),
            AnyRow::Postgres(row) => row.try_get(column),
        }
    }

    pub fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        match self {
            AnyRow::Sqlite(row) => row.try_get(column),
            AnyRow::Postgres(row) => row.try_get(column),
        }
    }

    pub fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
        match self {
            AnyRow::Sqlite(row) => row.try_get(column),
            AnyRow::Postgres(row) => row.try_get(column),
        }
    }

    /// SQLite answers `EXISTS (...)` and 0/1 columns as integers.
    pub fn bool(&self, column: &str) -> Result<bool, sqlx::Error> {
        match self {
            AnyRow::Sqlite(row) => Ok(row.try_get::<i64, _>(column)? != 0),
            AnyRow::Postgres(row) => row.try_get(column),
        }
    }

    pub fn id(&self, column: &str) -> Result<Uuid, sqlx::Error> {
        match self {
            AnyRow::Sqlite(row) => {
                let text: String = row.try_get(column)?;
                Uuid::parse_str(&text).map_err(|e| decode_error(column, e))
            }
            AnyRow::Postgres(row) => row.try_get(column),
        }
    }

    pub fn time(&self, column: &str) -> Result<DateTime<Utc>, sqlx::Error> {
        match self {
            AnyRow::Sqlite(row) => parse_time(column, &row.try_get::<String, _>(column)?),
            AnyRow::Postgres(row) => row.try_get(column),
        }
    }

    pub fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        match self {
            AnyRow::Sqlite(row) => row
                .try_get::<Option<String>, _>(column)?
                .map(|text| parse_time(column, &text))
                .transpose(),
            AnyRow::Postgres(row) => row.try_get(column),
        }
    }

    /// A JSON column read straight into `T` (on SQLite from its text, with
    /// no intermediate `Value`).
    pub fn decode<T: serde::de::DeserializeOwned>(&self, column: &str) -> Result<T, sqlx::Error> {
        match self {
            AnyRow::Sqlite(row) => {
                let text: &str = row.try_get(column)?;
                serde_json::from_str(text).map_err(|e| decode_error(column, e))
            }
            AnyRow::Postgres(row) => {
                let value: serde_json::Value = row.try_get(column)?;
                serde_json::from_value(value).map_err(|e| decode_error(column, e))
            }
        }
    }

    pub fn json(&self, column: &str) -> Result<serde_json::Value, sqlx::Error> {
        match self {
            AnyRow::Sqlite(row) => {
                let text: String = row.try_get(column)?;
                serde_json::from_str(&text).map_err(|e| decode_error(column, e))
            }
            AnyRow::Postgres(row) => row.try_get(column),
        }
    }
}
