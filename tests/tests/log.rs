//! `tickets log`: verify, digest, export and import, driven as an auditor or
//! an operator would, on SQLite files and PostgreSQL schemas; tampering is
//! done with SQL on a copy of the database, as someone with file access would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sqlx::{Connection, Row};
use tests::{one_error_line, stdout_ok, tickets_bin};

/// Where a test's log lives: a SQLite file, or a PostgreSQL schema.
struct Db {
    url: String,
    schema: Option<String>,
}

impl Db {
    fn sqlite(dir: &Path, name: &str) -> Db {
        Db {
            url: format!("sqlite://{}", dir.join(name).display()),
            schema: None,
        }
    }

    fn postgres(prefix: &str) -> Db {
        let url = std::env::var("TICKETS_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            tests::unique() % 1_000_000
        );
        Db {
            url,
            schema: Some(schema),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(tickets_bin());
        command
            .args(args)
            .env("TICKETS_DATABASE_URL", &self.url)
            .env_remove("TICKETS_DATABASE_SCHEMA")
            .env_remove("TICKETS_ACTOR");
        if let Some(schema) = &self.schema {
            command.env("TICKETS_DATABASE_SCHEMA", schema);
        }
        command.output().expect("run tickets")
    }

    fn ok(&self, args: &[&str]) -> String {
        stdout_ok(&self.run(args))
    }

    /// The SQLite file behind this database.
    fn file(&self) -> PathBuf {
        PathBuf::from(self.url.trim_start_matches("sqlite://"))
    }

    /// A copy of this SQLite database (its file and write-ahead log) as
    /// `name` in the same folder.
    fn copy(&self, name: &str) -> Db {
        let from = self.file();
        let to = from.with_file_name(name);
        std::fs::copy(&from, &to).expect("copy the database");
        for suffix in ["-wal", "-shm"] {
            let side = PathBuf::from(format!("{}{suffix}", from.display()));
            if side.exists() {
                std::fs::copy(&side, format!("{}{suffix}", to.display())).expect("copy");
            }
        }
        Db {
            url: format!("sqlite://{}", to.display()),
            schema: None,
        }
    }

    /// Runs `sql` on this SQLite database, as someone with the file would.
    async fn tamper(&self, sql: &[&str]) {
        let mut conn = sqlx::SqliteConnection::connect(&self.url)
            .await
            .expect("open the copy");
        for statement in sql {
            sqlx::query(statement)
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        conn.close().await.expect("close");
    }

    /// A connection to this PostgreSQL database, in its schema.
    async fn pg(&self) -> sqlx::PgConnection {
        let mut conn = sqlx::PgConnection::connect(&self.url).await.expect("open");
        let schema = self.schema.as_deref().expect("a PostgreSQL database");
        sqlx::query(&format!("SET search_path TO \"{schema}\""))
            .execute(&mut conn)
            .await
            .expect("search path");
        conn
    }

    /// Runs `sql` in this PostgreSQL database's schema.
    async fn pg_tamper(&self, sql: &[&str]) {
        let mut conn = self.pg().await;
        for statement in sql {
            sqlx::query(statement)
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        conn.close().await.expect("close");
    }

    /// Drops this PostgreSQL database's schema.
    async fn drop_schema(&self) {
        let mut conn = sqlx::PgConnection::connect(&self.url).await.expect("open");
        let schema = self.schema.as_deref().expect("a PostgreSQL database");
        sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .execute(&mut conn)
            .await
            .expect("drop schema");
    }

    /// One value of a PostgreSQL query.
    async fn pg_scalar(&self, sql: &str) -> String {
        let mut conn = self.pg().await;
        let value: String = sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .expect(sql);
        conn.close().await.expect("close");
        value
    }

    /// One value of a SQLite query.
    async fn scalar(&self, sql: &str) -> String {
        let mut conn = sqlx::SqliteConnection::connect(&self.url)
            .await
            .expect("open");
        let value: String = sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .expect(sql);
        conn.close().await.expect("close");
        value
    }
}

/// A small helpdesk's log: two agents (and `admin`, who acts), two tickets
/// with a few changes each: 12 events in 6 streams.
fn helpdesk(db: &Db) -> (String, String) {
    db.ok(&["user", "bob", "--role", "AGENT", "--team", "support"]);
    db.ok(&["user", "ann", "--role", "AGENT", "--team", "support"]);
    let create = |request: &str| {
        let out = db.ok(&[
            "ticket",
            "create",
            "--request",
            request,
            "--priority",
            "HIGH",
        ]);
        out.split_whitespace()
            .nth(1)
            .expect("ticket id")
            .to_string()
    };
    let first = create("Printer on fire");
    db.ok(&["ticket", "assign", "TCK-000001", "bob"]);
    db.ok(&["ticket", "comment", "TCK-000001", "Extinguisher on its way"]);
    db.ok(&["ticket", "status", "TCK-000001", "IN_PROGRESS"]);
    let second = create("VPN drops");
    db.ok(&["ticket", "tag", "TCK-000002", "network"]);
    db.ok(&["ticket", "assign", "TCK-000002", "ann"]);
    (first, second)
}

fn stream(ticket: &str) -> String {
    format!("ticket-{ticket}")
}

/// An untouched log verifies; a copy with one event altered, one removed, or
/// two swapped fails `verify` with exit status 1, naming the broken event.
#[tokio::test]
async fn verify_names_an_altered_a_removed_and_a_reordered_event() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::sqlite(dir.path(), "tickets.db");
    let (ticket, _) = helpdesk(&db);
    let s = stream(&ticket);
    let verified = db.ok(&["log", "verify"]);
    assert!(
        verified.starts_with("verified 12 events in 6 streams"),
        "{verified}"
    );
    let id_at = |version: u32| {
        format!("SELECT id FROM events WHERE stream_id = '{s}' AND version = {version}")
    };

    let altered = db.copy("altered.db");
    let victim = altered.scalar(&id_at(2)).await;
    altered
        .tamper(&[&format!(
            "UPDATE events SET data = json_set(data, '$.body', 'Nothing to see') \
             WHERE id = '{victim}'"
        )])
        .await;
    let error = one_error_line(&altered.run(&["log", "verify"]));
    assert!(error.contains(&victim), "{error}");
    assert!(error.contains("hash"), "{error}");

    let removed = db.copy("removed.db");
    let next = removed.scalar(&id_at(2)).await;
    removed
        .tamper(&[&format!(
            "DELETE FROM events WHERE stream_id = '{s}' AND version = 1"
        )])
        .await;
    let error = one_error_line(&removed.run(&["log", "verify"]));
    assert!(error.contains(&next), "{error}");
    assert!(error.contains("missing or out of order"), "{error}");

    let reordered = db.copy("reordered.db");
    let (one, two) = (
        reordered.scalar(&id_at(1)).await,
        reordered.scalar(&id_at(2)).await,
    );
    reordered
        .tamper(&[
            &format!("UPDATE events SET version = 100 WHERE id = '{one}'"),
            &format!("UPDATE events SET version = 1 WHERE id = '{two}'"),
            &format!("UPDATE events SET version = 2 WHERE id = '{one}'"),
        ])
        .await;
    let error = one_error_line(&reordered.run(&["log", "verify"]));
    assert!(error.contains(&one), "{error}");

    // The original was never touched.
    assert!(db.ok(&["log", "verify"]).starts_with("verified 12 events"));
}

/// The same on PostgreSQL: three copies of a log (each an import of one
/// export into a schema of its own), one altered, one with an event removed,
/// one with two events swapped; `verify` names the broken event in each.
#[tokio::test]
async fn verify_names_an_altered_a_removed_and_a_reordered_event_on_postgres() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = Db::sqlite(dir.path(), "tickets.db");
    let (ticket, _) = helpdesk(&source);
    let s = stream(&ticket);
    let file = dir.path().join("log.jsonl");
    source.ok(&["log", "export", "--output", file.to_str().unwrap()]);
    let copy = |name: &str| {
        let db = Db::postgres(name);
        db.ok(&["log", "import", file.to_str().unwrap()]);
        assert!(db.ok(&["log", "verify"]).starts_with("verified 12 events"));
        db
    };
    let id_at = |version: u32| {
        format!("SELECT id::text FROM events WHERE stream_id = '{s}' AND version = {version}")
    };

    let altered = copy("log_altered");
    let victim = altered.pg_scalar(&id_at(2)).await;
    altered
        .pg_tamper(&[&format!(
            "UPDATE events SET data = jsonb_set(data, '{{body}}', '\"Nothing to see\"') \
             WHERE id = '{victim}'"
        )])
        .await;
    let error = one_error_line(&altered.run(&["log", "verify"]));
    assert!(error.contains(&victim) && error.contains("hash"), "{error}");

    let removed = copy("log_removed");
    let next = removed.pg_scalar(&id_at(2)).await;
    removed
        .pg_tamper(&[&format!(
            "DELETE FROM events WHERE stream_id = '{s}' AND version = 1"
        )])
        .await;
    let error = one_error_line(&removed.run(&["log", "verify"]));
    assert!(error.contains(&next), "{error}");

    let reordered = copy("log_reordered");
    let (one, two) = (
        reordered.pg_scalar(&id_at(1)).await,
        reordered.pg_scalar(&id_at(2)).await,
    );
    reordered
        .pg_tamper(&[
            &format!("UPDATE events SET version = 100 WHERE id = '{one}'"),
            &format!("UPDATE events SET version = 1 WHERE id = '{two}'"),
            &format!("UPDATE events SET version = 2 WHERE id = '{one}'"),
        ])
        .await;
    let error = one_error_line(&reordered.run(&["log", "verify"]));
    assert!(error.contains(&one), "{error}");
    for db in [altered, removed, reordered] {
        db.drop_schema().await;
    }
}

/// An import cut off part way (here: a file holding only the first lines of
/// the export, as a copy interrupted would) and then run on the whole file
/// adds only the rest, and ends with the source's digest.
#[tokio::test]
async fn an_import_cut_off_then_run_again_adds_only_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = Db::sqlite(dir.path(), "tickets.db");
    helpdesk(&source);
    let export = source.ok(&["log", "export"]);
    let (whole, part) = (
        dir.path().join("whole.jsonl"),
        dir.path().join("part.jsonl"),
    );
    std::fs::write(&whole, &export).unwrap();
    let first_lines: Vec<&str> = export.lines().take(8).collect();
    std::fs::write(&part, first_lines.join("\n") + "\n").unwrap();

    let target = Db::sqlite(dir.path(), "target.db");
    let cut = target.ok(&["log", "import", part.to_str().unwrap()]);
    assert_eq!(
        cut.trim(),
        "imported 7 events (0 of the file's 7 were already stored)"
    );
    let rest = target.ok(&["log", "import", whole.to_str().unwrap()]);
    assert_eq!(
        rest.trim(),
        "imported 5 events (7 of the file's 12 were already stored)"
    );
    assert_eq!(target.ok(&["log", "digest"]), source.ok(&["log", "digest"]));
    assert_eq!(target.ok(&["log", "export"]).lines().count(), 13);
}

/// Removing a stream whole leaves every remaining chain intact, so `verify`
/// passes; the digest over the streams' heads changes, and is the same on
/// every run of an untouched log.
#[tokio::test]
async fn the_digest_changes_when_a_stream_is_removed_whole() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::sqlite(dir.path(), "tickets.db");
    let (_, second) = helpdesk(&db);
    let digest = db.ok(&["log", "digest"]);
    assert_eq!(digest.trim().len(), 64, "{digest}");
    assert_eq!(db.ok(&["log", "digest"]), digest);

    let copy = db.copy("without.db");
    copy.tamper(&[&format!(
        "DELETE FROM events WHERE stream_id = '{}'",
        stream(&second)
    )])
    .await;
    assert!(copy.ok(&["log", "verify"]).starts_with("verified 9 events"));
    assert_ne!(copy.ok(&["log", "digest"]), digest);
}

/// A log written before hashes existed (every hash empty) gets its hashes
/// when the store opens it, the same ones the writer gave, and verifies.
#[tokio::test]
async fn a_log_without_hashes_gets_them_at_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::sqlite(dir.path(), "tickets.db");
    helpdesk(&db);
    let digest = db.ok(&["log", "digest"]);
    let old = db.copy("old.db");
    old.tamper(&["UPDATE events SET hash = ''"]).await;
    assert!(old.ok(&["log", "verify"]).starts_with("verified 12 events"));
    assert_eq!(old.ok(&["log", "digest"]), digest);
    assert_eq!(
        old.scalar("SELECT CAST(count(*) AS TEXT) FROM events WHERE hash = ''")
            .await,
        "0"
    );
}

/// The export is a header line, then one line per event in log order with
/// every documented field; `--stream` and `--until` narrow it.
#[tokio::test]
async fn export_writes_a_header_then_one_line_per_event_in_log_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::sqlite(dir.path(), "tickets.db");
    let (ticket, _) = helpdesk(&db);
    let all = db.ok(&["log", "export"]);
    let lines: Vec<Value> = all
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(
        lines[0],
        serde_json::json!({"format": "tickets-log", "version": 1})
    );
    assert_eq!(lines.len(), 13);
    let positions: Vec<u64> = lines[1..]
        .iter()
        .map(|l| l["position"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    let mut keys: Vec<&String> = lines[1].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "data",
            "hash",
            "id",
            "metadata",
            "position",
            "recordedAt",
            "schemaVersion",
            "stream",
            "type",
            "version"
        ]
    );

    let s = stream(&ticket);
    let one = db.ok(&["log", "export", "--stream", &s]);
    assert_eq!(one.lines().count(), 5, "{one}");
    assert!(one.lines().skip(1).all(|l| l.contains(&s)));
    let until = db.ok(&["log", "export", "--until", "3"]);
    assert_eq!(until.lines().count(), 4, "{until}");
    let file = dir.path().join("log.jsonl");
    db.ok(&["log", "export", "--output", file.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), all);
}

/// An export with one event altered is refused whole: nothing is imported.
#[tokio::test]
async fn import_refuses_a_file_that_does_not_verify() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::sqlite(dir.path(), "tickets.db");
    helpdesk(&db);
    let export = db.ok(&["log", "export"]);
    let tampered = export.replacen("Printer on fire", "Printer is fine", 1);
    assert_ne!(tampered, export);
    let file = dir.path().join("tampered.jsonl");
    std::fs::write(&file, tampered).unwrap();

    let target = Db::sqlite(dir.path(), "target.db");
    let error = one_error_line(&target.run(&["log", "import", file.to_str().unwrap()]));
    assert!(
        error.contains("does not verify, nothing was imported"),
        "{error}"
    );
    assert!(target
        .ok(&["log", "verify"])
        .starts_with("verified 0 events"));
}

/// Moving a deployment from SQLite to PostgreSQL: export, import (twice: the
/// second adds nothing), rebuild the read models; the log verifies with the
/// same digest, and the tickets, comments and users read models equal the
/// old ones.
#[tokio::test]
async fn a_sqlite_log_imported_into_postgres_rebuilds_equal_read_models() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = Db::sqlite(dir.path(), "tickets.db");
    helpdesk(&source);
    let file = dir.path().join("log.jsonl");
    let path = file.to_str().unwrap();
    source.ok(&["log", "export", "--output", path]);

    let target = Db::postgres("log_import");
    let first = target.ok(&["log", "import", path]);
    assert_eq!(
        first.trim(),
        "imported 12 events (0 of the file's 12 were already stored)"
    );
    let again = target.ok(&["log", "import", path]);
    assert_eq!(
        again.trim(),
        "imported 0 events (12 of the file's 12 were already stored)"
    );
    assert!(target
        .ok(&["log", "verify"])
        .starts_with("verified 12 events"));
    assert_eq!(target.ok(&["log", "digest"]), source.ok(&["log", "digest"]));
    source.ok(&["projections", "rebuild"]);
    target.ok(&["projections", "rebuild"]);
    assert_eq!(
        postgres_read_models(&target).await,
        sqlite_read_models(&source).await
    );
    target.drop_schema().await;
}

/// The rows of the tickets, comments and users read models that do not
/// depend on the store (positions do), as JSON, in a stable order.
type ReadModels = (Vec<Value>, Vec<Value>, Vec<Value>);

async fn sqlite_read_models(db: &Db) -> ReadModels {
    let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    let tickets = sqlx::query(
        "SELECT id, reference, request, status, priority, queue, created_by, assigned_to, \
                version, state FROM tickets ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        serde_json::json!([
            r.get::<String, _>(0),
            r.get::<String, _>(1),
            r.get::<String, _>(2),
            r.get::<String, _>(3),
            r.get::<String, _>(4),
            r.get::<String, _>(5),
            r.get::<String, _>(6),
            r.get::<Option<String>, _>(7),
            r.get::<i64, _>(8),
            serde_json::from_str::<Value>(&r.get::<String, _>(9)).unwrap(),
        ])
    })
    .collect();
    let comments = sqlx::query(
        "SELECT ticket_id, id, body, internal, author FROM ticket_comments ORDER BY ticket_id, id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        serde_json::json!([
            r.get::<String, _>(0),
            r.get::<String, _>(1),
            r.get::<String, _>(2),
            r.get::<bool, _>(3),
            r.get::<String, _>(4),
        ])
    })
    .collect();
    let users = sqlx::query("SELECT id, roles, teams FROM users ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            serde_json::json!([
                r.get::<String, _>(0),
                serde_json::from_str::<Value>(&r.get::<String, _>(1)).unwrap(),
                serde_json::from_str::<Value>(&r.get::<String, _>(2)).unwrap(),
            ])
        })
        .collect();
    (tickets, comments, users)
}

async fn postgres_read_models(db: &Db) -> ReadModels {
    let mut conn = db.pg().await;
    let tickets = sqlx::query(
        "SELECT id::text, reference, request, status, priority, queue, created_by, \
                assigned_to, version, state FROM tickets ORDER BY id::text",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        serde_json::json!([
            r.get::<String, _>(0),
            r.get::<String, _>(1),
            r.get::<String, _>(2),
            r.get::<String, _>(3),
            r.get::<String, _>(4),
            r.get::<String, _>(5),
            r.get::<String, _>(6),
            r.get::<Option<String>, _>(7),
            r.get::<i64, _>(8),
            r.get::<Value, _>(9),
        ])
    })
    .collect();
    let comments = sqlx::query(
        "SELECT ticket_id::text, id::text, body, internal, author FROM ticket_comments \
         ORDER BY ticket_id::text, id::text",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        serde_json::json!([
            r.get::<String, _>(0),
            r.get::<String, _>(1),
            r.get::<String, _>(2),
            r.get::<bool, _>(3),
            r.get::<String, _>(4),
        ])
    })
    .collect();
    let users = sqlx::query("SELECT id, roles, teams FROM users ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            serde_json::json!([
                r.get::<String, _>(0),
                r.get::<Value, _>(1),
                r.get::<Value, _>(2),
            ])
        })
        .collect();
    (tickets, comments, users)
}
