//! Black-box tests of the read models. Every test body runs against SQLite (a
//! temporary file) and PostgreSQL (a fresh schema, dropped afterwards; the
//! server is `TICKETS_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`).

mod batching;
mod commands;
mod crash;
mod harness;
mod inboxes;
mod lease;
mod notifications;
mod poison;
mod queries;
mod queue_metrics;
mod rebuild;
mod replay;
mod sla;
mod tickets;
mod two_part_positions;

/// Runs the async test body `$name(Kind)` once per backend, as
/// `$name::on_sqlite` and `$name::on_postgres`.
#[macro_export]
macro_rules! on_every_backend {
    ($(#[doc = $doc:literal])* $name:ident) => {
        $(#[doc = $doc])*
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                super::$name($crate::harness::Kind::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                super::$name($crate::harness::Kind::Postgres).await
            }
        }
    };
}
