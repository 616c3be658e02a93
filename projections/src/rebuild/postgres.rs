//! A PostgreSQL shadow: a schema of its own, `<schema>_rb_<name>`, its
//! tables created `LIKE` the live ones.
//!
//! The swap (step 3 of the module docs of [`super`]) drops each live table
//! and moves the shadow's into the live schema, renaming the moved indexes
//! (and with them their primary key and unique constraints) to the names the
//! live ones had, so the schema stays exactly as the migrations made it. No
//! row is copied, but each table must be locked exclusively: when readers
//! hold one longer than [`MOVE_LOCK_TIMEOUT`], the swap starts again and
//! copies the rows instead (readers are never blocked then, but the copy
//! takes time in proportion to the rows). A table carrying something an
//! operator added that a move would lose (a grant, a comment, a trigger, a
//! view over it...) is copied too, and one another table's foreign key
//! points at makes the swap start again as a copy. The shadow is `ANALYZE`d
//! first ([`Shadow::prepare`]), so the planner knows the moved tables at
//! once.

use async_trait::async_trait;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};
use store::Position;

use super::shadow::{copy_rows, with_checkpoints, CatchUp, Shadow};
use super::{RebuildError, REBUILDING};
use crate::checkpoint;
use crate::db::{ReadDb, ReadTx};
use crate::error::ProjectionError;

/// How long a moving swap waits for readers to let go of a live table
/// before it gives up and copies instead. New readers of that table queue
/// behind the waiting swap, so this is also how long they can be held up.
const MOVE_LOCK_TIMEOUT: &str = "1s";

/// One projection's shadow schema on the live database.
pub(super) struct PgShadow {
    /// The live database.
    live_pool: PgPool,
    /// The live schema's name.
    live: String,
    /// The shadow schema's name.
    shadow: String,
    /// The shadow's own pool, its `search_path` the shadow schema.
    pool: PgPool,
    /// `pool`, as the runner writes into it.
    db: ReadDb,
    name: String,
    tables: Vec<&'static str>,
    /// The `CREATE INDEX` and `ADD CONSTRAINT` statements of the deferred
    /// indexes (see [`Shadow`]).
    deferred: Vec<String>,
}

impl PgShadow {
    pub(super) async fn create(
        pool: &PgPool,
        name: &str,
        tables: &[&'static str],
        insert_only: &[&'static str],
    ) -> Result<PgShadow, RebuildError> {
        let live: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(pool)
            .await?;
        let shadow = format!(
            "{live}_rb_{}",
            name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        if shadow.len() > 63 {
            return Err(RebuildError::Unsupported {
                projection: name.to_string(),
                reason: format!("schema name {shadow} is too long"),
            });
        }
        let mut ddl =
            format!("DROP SCHEMA IF EXISTS \"{shadow}\" CASCADE; CREATE SCHEMA \"{shadow}\";");
        for table in with_checkpoints(tables) {
            ddl += &format!(
                "CREATE TABLE \"{shadow}\".{table} (LIKE \"{live}\".{table} INCLUDING ALL);"
            );
        }
        pool.execute(ddl.as_str()).await?;
        // The secondary indexes the copies got, dropped until the load is
        // done (see `Shadow`).
        let secondary: Vec<(String, String)> = sqlx::query_as(
            "SELECT format('DROP INDEX %I.%I', n.nspname, c.relname), \
             pg_get_indexdef(i.indexrelid) \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND NOT i.indisunique AND NOT i.indisprimary \
             ORDER BY c.relname",
        )
        .bind(&shadow)
        .fetch_all(pool)
        .await?;
        // And the primary keys and unique constraints of the tables that are
        // only inserted into, added back after the load.
        let unique: Vec<(String, String)> = sqlx::query_as(
            "SELECT format('ALTER TABLE %I.%I DROP CONSTRAINT %I', n.nspname, t.relname, \
             c.conname), format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', n.nspname, \
             t.relname, c.conname, pg_get_constraintdef(c.oid)) \
             FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             WHERE n.nspname = $1 AND t.relname = ANY($2) AND c.contype IN ('p', 'u') \
             ORDER BY t.relname, c.conname",
        )
        .bind(&shadow)
        .bind(insert_only)
        .fetch_all(pool)
        .await?;
        let mut deferred = Vec::with_capacity(secondary.len() + unique.len());
        for (drop, create) in secondary.into_iter().chain(unique) {
            pool.execute(drop.as_str()).await?;
            deferred.push(create);
        }
        // The shadow's commits do not wait for their WAL to reach the disk:
        // a crash drops the shadow anyway (`create` starts it afresh), and
        // the swap's own commit, which waits, flushes the WAL up to it,
        // every shadow write before it included.
        let options = (*pool.connect_options()).clone().options([
            ("search_path", shadow.as_str()),
            ("synchronous_commit", "off"),
            // Every shadow builds its deferred indexes at once (see
            // `rebuild_all`), one build per shadow already: parallel workers
            // per build only add processes that compete for the same cores.
            ("max_parallel_maintenance_workers", "0"),
        ]);
        let shadow_pool: PgPool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        Ok(PgShadow {
            live_pool: pool.clone(),
            live,
            shadow,
            db: ReadDb::Postgres(shadow_pool.clone()),
            pool: shadow_pool,
            name: name.to_string(),
            tables: tables.to_vec(),
            deferred,
        })
    }

    /// Steps 1 to 3 of the module docs of [`super`], in one live
    /// transaction, putting the rows in place as `how` says.
    async fn swap_as(&self, how: PgSwap, catch_up: &CatchUp) -> Result<Position, RebuildError> {
        let (name, shadow, live) = (&self.name, &self.shadow, &self.live);
        let mut tx = self.live_pool.begin().await?;
        // The row must exist to be locked.
        sqlx::query(
            "INSERT INTO projection_checkpoints (name, position, updated_at, state) \
             VALUES ($1, $2, now(), 'running') ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(Position::START.to_cursor())
        .execute(&mut *tx)
        .await?;
        let mut tx = ReadTx::Postgres(tx);
        let live_at = checkpoint::load(&mut tx, name).await?;
        let at = catch_up.to(live_at).await?;
        let ReadTx::Postgres(mut pg) = tx else {
            unreachable!("a PostgreSQL transaction")
        };
        let (quoted_live, quoted_shadow) = (format!("\"{live}\""), format!("\"{shadow}\""));
        match how {
            PgSwap::Move => {
                pg.execute(format!("SET LOCAL lock_timeout = '{MOVE_LOCK_TIMEOUT}'").as_str())
                    .await?;
                for table in &self.tables {
                    if movable(&mut pg, table, shadow, live).await? {
                        move_table(&mut pg, table, shadow, live).await?;
                    } else {
                        pg.execute(copy_rows(&quoted_live, &quoted_shadow, table).as_str())
                            .await?;
                    }
                }
                pg.execute("SET LOCAL lock_timeout = 0").await?;
            }
            PgSwap::Copy => {
                for table in &self.tables {
                    pg.execute(copy_rows(&quoted_live, &quoted_shadow, table).as_str())
                        .await?;
                }
            }
        }
        sqlx::query("DELETE FROM projection_checkpoints WHERE name = $1")
            .bind(format!("{REBUILDING}{name}"))
            .execute(&mut *pg)
            .await?;
        let mut tx = ReadTx::Postgres(pg);
        checkpoint::save(&mut tx, name, at, None).await?;
        tx.commit().await?;
        Ok(at)
    }
}

#[async_trait]
impl Shadow for PgShadow {
    fn db(&self) -> &ReadDb {
        &self.db
    }

    /// The deferred indexes, then the statistics of the projection's
    /// tables, so the planner knows moved tables at once.
    async fn prepare(&self) -> Result<(), sqlx::Error> {
        for statement in &self.deferred {
            self.pool.execute(statement.as_str()).await?;
        }
        self.pool
            .execute(format!("ANALYZE {}", self.tables.join(", ")).as_str())
            .await?;
        Ok(())
    }

    /// By moving the tables, and again by copying rows if PostgreSQL
    /// refuses the move ([`refuses_to_move`]).
    async fn swap(&self, catch_up: &CatchUp) -> Result<Position, RebuildError> {
        match self.swap_as(PgSwap::Move, catch_up).await {
            Err(RebuildError::Projection(ProjectionError::Database(e))) if refuses_to_move(&e) => {
                tracing::warn!(projection = %self.name, error = %e,
                    "cannot move the rebuilt tables in: swapping in by copying rows");
                self.swap_as(PgSwap::Copy, catch_up).await
            }
            swapped => swapped,
        }
    }

    async fn discard(&self) {
        self.pool.close().await;
        let shadow = &self.shadow;
        let dropped = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{shadow}\" CASCADE"))
            .execute(&self.live_pool)
            .await;
        if let Err(e) = dropped {
            tracing::warn!(schema = %shadow, error = %e, "cannot drop the rebuild's schema");
        }
    }
}

/// How [`PgShadow::swap_as`] puts the shadow's rows in place.
#[derive(Debug, Clone, Copy, PartialEq)]
enum PgSwap {
    /// Drop each live table and move the shadow's into the live schema,
    /// renaming its indexes (and so their constraints) to the live ones'
    /// names: no row is copied, but it needs an exclusive lock on each table,
    /// waited for at most [`MOVE_LOCK_TIMEOUT`]. A table that is not
    /// [`movable`] has its rows copied instead.
    Move,
    /// Replace the live rows with copies of the shadow's: readers are never
    /// blocked, but it takes time in proportion to the rows.
    Copy,
}

/// Replaces `live.table` with `shadow.table`, giving each of the shadow's
/// indexes the name of the live index with the same definition (renaming an
/// index renames the primary key or unique constraint it backs), so the live
/// schema keeps the names the migrations gave it.
async fn move_table(
    tx: &mut sqlx::PgConnection,
    table: &str,
    shadow: &str,
    live: &str,
) -> Result<(), sqlx::Error> {
    // Each index of a table with its definition minus its own name and its
    // table's: what pairs the live indexes with the shadow's.
    const INDEXES: &str = "SELECT c.relname, i.indisunique, \
        regexp_replace(pg_get_indexdef(i.indexrelid), '^.*? USING ', '') \
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
        JOIN pg_class t ON t.oid = i.indrelid \
        JOIN pg_namespace n ON n.oid = t.relnamespace \
        WHERE n.nspname = $1 AND t.relname = $2 ORDER BY c.relname";
    let indexes = |schema: &str| {
        sqlx::query_as::<_, (String, bool, String)>(INDEXES)
            .bind(schema.to_string())
            .bind(table.to_string())
    };
    let mut old = indexes(live).fetch_all(&mut *tx).await?;
    let new = indexes(shadow).fetch_all(&mut *tx).await?;
    tx.execute(
        format!(
            "DROP TABLE \"{live}\".{table}; \
             ALTER TABLE \"{shadow}\".{table} SET SCHEMA \"{live}\""
        )
        .as_str(),
    )
    .await?;
    // First every moved index to a name of its own, then to its live name:
    // a name the shadow generated may be one a live index had.
    let mut renames = Vec::with_capacity(new.len());
    for (i, (generated, unique, definition)) in new.into_iter().enumerate() {
        let Some(at) = old
            .iter()
            .position(|(_, u, d)| *u == unique && *d == definition)
        else {
            // No live twin (cannot happen for a shadow made `LIKE` the live
            // table): it keeps the name it has.
            continue;
        };
        let (wanted, _, _) = old.swap_remove(at);
        if wanted != generated {
            let temporary = format!("rebuild_{i}_{table}");
            tx.execute(
                format!("ALTER INDEX \"{live}\".\"{generated}\" RENAME TO \"{temporary}\"")
                    .as_str(),
            )
            .await?;
            renames.push((temporary, wanted));
        }
    }
    for (temporary, wanted) in renames {
        tx.execute(
            format!("ALTER INDEX \"{live}\".\"{temporary}\" RENAME TO \"{wanted}\"").as_str(),
        )
        .await?;
    }
    Ok(())
}

/// Whether `live.table` can be dropped and replaced by `shadow.table`
/// without losing anything a move would not carry over: what an operator
/// may have added to a live table (privileges, comments, triggers, row
/// security, publications, views over it, another owner or storage
/// options) stays only if the rows are copied instead. (A foreign key
/// from another table makes the drop fail: [`refuses_to_move`].)
async fn movable(
    tx: &mut sqlx::PgConnection,
    table: &str,
    shadow: &str,
    live: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT l.relacl IS NULL AND NOT l.relrowsecurity AND l.relowner = s.relowner \
           AND l.reloptions IS NOT DISTINCT FROM s.reloptions \
           AND NOT EXISTS (SELECT 1 FROM pg_attribute a \
             WHERE a.attrelid = l.oid AND a.attacl IS NOT NULL) \
           AND NOT EXISTS (SELECT 1 FROM pg_trigger t \
             WHERE t.tgrelid = l.oid AND NOT t.tgisinternal) \
           AND NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = l.oid) \
           AND NOT EXISTS (SELECT 1 FROM pg_publication_rel r WHERE r.prrelid = l.oid) \
           AND NOT EXISTS (SELECT 1 FROM pg_description d \
             WHERE d.objoid = l.oid AND d.classoid = 'pg_class'::regclass) \
           AND NOT EXISTS (SELECT 1 FROM pg_depend d \
             WHERE d.refobjid = l.oid AND d.classid = 'pg_rewrite'::regclass) \
         FROM pg_class l, pg_class s \
         WHERE l.oid = format('%I.%I', $1::text, $3::text)::regclass \
           AND s.oid = format('%I.%I', $2::text, $3::text)::regclass",
    )
    .bind(live)
    .bind(shadow)
    .bind(table)
    .fetch_one(&mut *tx)
    .await
}

/// Errors after which a moving swap starts again as a copying one:
/// PostgreSQL gave up waiting for a lock (`lock_timeout`), or would not drop
/// a live table because other objects depend on it (a foreign key).
fn refuses_to_move(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| code == "55P03" || code == "2BP01")
}
