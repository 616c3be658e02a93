//! Opening a PostgreSQL store: the schema, the pool, the migrations, the
//! listener, and the names derived from the schema (lock key and channel).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use tokio::sync::watch;

use super::writer::{self, Writer};
use super::{listener, Inner, PostgresEventStore};
use crate::chain::{ChainHeads, Chained, FILL_PAGE};
use crate::row::{self, PgEventRow, EVENT_COLUMNS};
use crate::{StoreError, POSTGRES_MIGRATOR};

/// Connections per store. Appends serialise on the advisory lock anyway, so more
/// connections would only queue inside PostgreSQL instead of in the pool.
const MAX_CONNECTIONS: u32 = 10;

/// How long a call waits for a free connection before reporting `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long opening the store waits for the server's first answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Channel names are identifiers (at most 63 bytes); the schema goes after this.
const CHANNEL_PREFIX: &str = "tickets_events_";

/// Longest schema name [`PostgresEventStore::connect_with_schema`] accepts, so
/// that the channel name stays within PostgreSQL's identifier length.
pub const MAX_SCHEMA_LEN: usize = 63 - CHANNEL_PREFIX.len();

impl PostgresEventStore {
    /// Connects to the database at `url`, using the schema its search path
    /// resolves to (usually `public`), and runs the migrations.
    // Not `err`: the caller reports a failure to open (the command line as
    // its one `error:` line), so logging it here too would say it twice.
    #[tracing::instrument(skip_all)]
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = parse_url(url)?;
        first_connection(&options).await?.close().await?;
        Self::open(options, None).await
    }

    /// Connects with every pooled connection's `search_path` set to `schema`,
    /// creating the schema if it is missing, and runs the migrations there. Each
    /// schema is a separate store with its own log, lock and channel (tests use a
    /// fresh schema each). `schema`: lowercase ASCII letters, digits and `_`, not
    /// starting with a digit, at most [`MAX_SCHEMA_LEN`] bytes.
    // Not `err`: the caller reports a failure to open (the command line as
    // its one `error:` line), so logging it here too would say it twice.
    #[tracing::instrument(skip_all, fields(schema = %schema))]
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        check_schema_name(schema)?;
        let options = parse_url(url)?;
        // One plain connection for the DDL: the pool's connections will already
        // point their search path at the schema.
        let mut conn = first_connection(&options).await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(schema)
                .fetch_one(&mut conn)
                .await?;
        if !exists {
            // The name was checked above to be a plain identifier, so quoting it
            // is enough. Another process may create it at the same moment.
            let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .execute(&mut conn)
                .await;
            if let Err(e) = created {
                let raced =
                    e.as_database_error().and_then(|d| d.code()).as_deref() == Some("23505");
                if !raced {
                    return Err(e.into());
                }
            }
        }
        conn.close().await?;
        Self::open(options.options([("search_path", schema)]), Some(schema)).await
    }

    async fn open(options: PgConnectOptions, schema: Option<&str>) -> Result<Self, StoreError> {
        // Plan every statement with its parameters, every time. sqlx prepares
        // each statement once per connection, and PostgreSQL then switches to a
        // generic plan that it keeps until the table is next analysed. A plan
        // made while the log was small is a sequential scan, and on a server
        // whose autovacuum is off nothing ever analyses the log: the append
        // writer's facts query would read the whole `events` table on every
        // group, slower with every event appended. Our statements are short;
        // planning each costs far less than one wrong plan.
        let options = options.options([("plan_cache_mode", "force_custom_plan")]);
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // sqlx already pings every connection when it is returned to the
            // pool; pinging again on acquire would add a round trip to every
            // append, and a connection that died in between only costs one
            // `Unavailable` that the caller retries.
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        POSTGRES_MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrating the events schema: {e}")))?;
        let schema = match schema {
            Some(schema) => schema.to_string(),
            None => sqlx::query_scalar::<_, Option<String>>("SELECT current_schema()")
                .fetch_one(&pool)
                .await?
                .ok_or_else(|| {
                    StoreError::Invalid("the search path names no existing schema".into())
                })?,
        };
        if schema.len() > MAX_SCHEMA_LEN {
            return Err(StoreError::Invalid(format!(
                "schema name {schema:?} is longer than {MAX_SCHEMA_LEN} bytes"
            )));
        }
        fill_missing_hashes(&pool, lock_key(&schema)).await?;
        let channel = format!("{CHANNEL_PREFIX}{schema}");
        let wake = Arc::new(watch::Sender::new(0));
        // Listening before `connect` returns: a subscriber created afterwards can
        // rely on hearing every commit that follows its first read.
        let listener = listener::start(pool.clone(), channel.clone(), wake.clone()).await?;
        let (appends, writer) = writer::start(Writer {
            pool: pool.clone(),
            lock_key: lock_key(&schema),
            channel,
        });
        Ok(PostgresEventStore {
            inner: Arc::new(Inner {
                pool,
                schema,
                appends,
                writer,
                wake,
                listener,
            }),
        })
    }
}

/// Gives every event stored without a hash (a log written before migration
/// 0008) its hash, in one transaction holding the append lock: all or
/// nothing, no append interleaves, and a node opening at the same time waits
/// and then finds nothing left to do.
#[tracing::instrument(skip_all, err)]
async fn fill_missing_hashes(pool: &PgPool, lock_key: i64) -> Result<(), StoreError> {
    let missing: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE hash = '')")
        .fetch_one(pool)
        .await?;
    if !missing {
        return Ok(());
    }
    let mut tx = pool
        .begin_with(format!("BEGIN; SELECT pg_advisory_xact_lock({lock_key})"))
        .await?;
    let mut heads = ChainHeads::default();
    let mut after = 0_i64;
    let mut filled = 0_usize;
    loop {
        let rows: Vec<PgEventRow> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2"
        ))
        .bind(after)
        .bind(FILL_PAGE)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            break;
        }
        let events = row::decode_all(rows)?;
        let (mut positions, mut hashes) = (Vec::new(), Vec::new());
        for e in &events {
            let hash = heads.next(Chained::from(e), &e.hash);
            if e.hash.is_empty() {
                positions.push(row::sql_i64(e.position.commit));
                hashes.push(hash);
            }
        }
        after = events
            .last()
            .map_or(after, |e| row::sql_i64(e.position.commit));
        filled += positions.len();
        sqlx::query(
            "UPDATE events SET hash = u.hash \
             FROM UNNEST($1::int8[], $2::text[]) AS u(position, hash) \
             WHERE events.position = u.position",
        )
        .bind(positions)
        .bind(hashes)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    tracing::info!(filled, "gave the events stored without a hash theirs");
    Ok(())
}

/// One connection before the pool is built, so that a server nobody answers
/// at, or one that refuses us, is reported at once with what was tried (the
/// pool would retry until its acquire timeout, then say only "timed out").
/// Nobody answering is `Unavailable` (it may be back later); a server that
/// answers and refuses (credentials, a missing database) is `Open`.
async fn first_connection(options: &PgConnectOptions) -> Result<PgConnection, StoreError> {
    let target = format!("{}:{}", options.get_host(), options.get_port());
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(sqlx::Error::Io(e))) => Err(StoreError::Unavailable(format!(
            "no PostgreSQL server answered at {target}: {e} (is it running? check --database-url)"
        ))),
        Ok(Err(e @ sqlx::Error::Database(_))) => Err(StoreError::Open(format!(
            "the PostgreSQL server at {target} refused the connection: {e}"
        ))),
        Ok(Err(e)) => Err(StoreError::Unavailable(format!(
            "cannot connect to PostgreSQL at {target}: {e}"
        ))),
        Err(_) => Err(StoreError::Unavailable(format!(
            "no PostgreSQL server answered at {target} within {} s (check --database-url)",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

fn parse_url(url: &str) -> Result<PgConnectOptions, StoreError> {
    // The url may carry a password: keep it out of the error.
    PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Invalid(format!("bad PostgreSQL url: {e}")))
}

fn check_schema_name(schema: &str) -> Result<(), StoreError> {
    let mut chars = schema.chars();
    let plain = matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'));
    if plain && schema.len() <= MAX_SCHEMA_LEN {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "schema name {schema:?}: use lowercase letters, digits and '_' \
             (not first), at most {MAX_SCHEMA_LEN} bytes"
        )))
    }
}

/// The advisory lock key of a schema's store: FNV-1a (64 bit), stable across
/// builds and platforms.
fn lock_key(schema: &str) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = format!("tickets.events:{schema}")
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    // Reinterpreted, not truncated: PostgreSQL keys are signed.
    hash as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every process must compute the same key for a schema, whatever build it
    /// runs: pin one value.
    #[test]
    fn the_lock_key_of_a_schema_is_stable() {
        assert_eq!(lock_key("public"), lock_key("public"));
        assert_ne!(lock_key("public"), lock_key("t_other"));
        // FNV-1a 64 of "tickets.events:public", checked independently.
        assert_eq!(lock_key("public"), 2_156_094_923_535_383_328);
    }

    /// Names that would need quoting (or break the channel name) are refused.
    #[test]
    fn only_plain_schema_names_are_accepted() {
        assert!(check_schema_name("t_0123abc").is_ok());
        for bad in [
            "",
            "1abc",
            "Abc",
            "a-b",
            "a\"b",
            &"x".repeat(MAX_SCHEMA_LEN + 1),
        ] {
            assert!(check_schema_name(bad).is_err(), "{bad:?}");
        }
    }
}
