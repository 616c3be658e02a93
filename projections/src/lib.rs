//! # Layout
//! Read models: tables derived from the event log, kept up to date by
//! projections and rebuildable from the log at any time.
//!
//! - [`runner`]: the [`Runner`] that feeds a projection the global log in
//!   batches, each batch's writes committed in one transaction with the
//!   projection's checkpoint (`runner/batch.rs`), and stops a projection on a
//!   poison event; the traits a projection implements
//!   (`runner/projection.rs`): [`Projection`], and [`BulkLoad`], the hooks of
//!   a rebuild's load, for the projections that write faster into an empty
//!   shadow (tickets, notifications, queue metrics).
//! - [`checkpoint`]: the `projection_checkpoints` table and [`status`].
//! - [`db`]: [`ReadDb`], the database the read models live in (SQLite or
//!   PostgreSQL), and [`ReadTx`], the transaction a batch is written in.
//! - [`tickets`]: the tickets projection (`tickets`, its child tables and
//!   `ticket_activity`), with the SQL of each database in its own module, and
//!   its queries ([`tickets::list_tickets`]: filter, visibility, paging).
//! - [`users`]: the `users` projection, latest profile per user.
//! - [`freshness`]: [`freshness::wait_for_log_head`], read-your-writes across
//!   nodes: a query waits (briefly) for its read model to reach the log's head.
//! - [`metrics`]: the `queue_metrics` projection (per-queue figures of the
//!   contract's `QueueMetrics`, from one facts row per ticket, and a daily
//!   history), with [`metrics::queue_metrics`] for the API and
//!   `refresh_due(now)` for what the clock changes.
//! - [`notifications`]: the `notifications` projection (a per-user inbox)
//!   with paging, unread counts and mark-read for the API; a batch folded in
//!   memory (`batch.rs`) and written with multi-row statements
//!   (`writes.rs`).
//! - [`sla`]: the SLA process, a timer that appends `SlaWarning` and
//!   `SlaBreached` events as the system actor.
//! - [`gate`]: [`gate::CommitGate`], how a projection tells the live side
//!   what changed once its batch is committed.
//! - `bind`: one SQL text bound in each database's native types.
//! - [`lease`]: [`lease::Lease`], which of several processes writes a
//!   projection (a PostgreSQL advisory lock; trivially granted on SQLite).
//! - [`rebuild`]: [`rebuild::rebuild`], a projection rebuilt from the whole log
//!   into shadow tables and swapped in while the server serves, with progress
//!   (the library side of `tickets projections rebuild`). `rebuild/mod.rs`
//!   orders the steps; a shadow is created, readied, swapped in and dropped
//!   behind one trait (`rebuild/shadow.rs`), one file per database:
//!   `rebuild/postgres.rs` (a shadow schema, its tables moved in) and
//!   `rebuild/sqlite.rs` (a shadow file, its rows copied in).
//! - [`report`]: [`report::status_report`], checkpoint, lag and state per
//!   projection (the library side of `tickets projections status`).
//! - [`error`]: [`ProjectionError`] (what the runner reports) and
//!   [`ApplyError`] (what a handler reports for one event).
//!
//! Outside `src/`: `tests/read_models` runs every behaviour against SQLite and
//! PostgreSQL; the `bench` crate's `rebuild` scenario
//! (`bench/src/scenarios/rebuild.rs`) times a full rebuild of every projection.
//!
//! The tables themselves are created by `migrations/*/0002` to `0004`, which
//! the event store runs on connect; `migrations/README.md` documents them.
//! Read models follow a SQL log or an EventStoreDB one: every row's log
//! position is two columns, `position` and `prepare_offset`
//! ([`db`]'s `RowPosition`), compared as a pair.

mod bind;
pub mod checkpoint;
mod copy;
pub mod db;
pub mod error;
pub mod freshness;
pub mod gate;
pub mod lease;
pub mod metrics;
pub mod notifications;
pub mod rebuild;
pub mod report;
pub mod runner;
pub mod sla;
mod ticket_event;
pub mod tickets;
pub mod users;

pub use checkpoint::{status, ProjectionState, ProjectionStatus};
pub use db::{Dialect, ReadDb, ReadTx};
pub use error::{ApplyError, ProjectionError, QueryError};
pub use metrics::MetricsProjection;
pub use notifications::NotificationsProjection;
pub use runner::{BulkLoad, Projection, Runner};
pub use ticket_event::Reads;
pub use tickets::TicketsProjection;
pub use users::UsersProjection;
