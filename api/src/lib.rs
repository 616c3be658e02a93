//! # Layout
//! The application around the domain and the store; the `tickets` binary
//! (`main.rs`) is a thin shell over it.
//!
//! - `command_service`: load a ticket's stream, decide, append with the loaded
//!   version; retries, expected versions and idempotency keys.
//! - `references`: human references (`TCK-000042`) allocated through the log.
//! - `users`: profiles recorded from token claims, looked up for assignment,
//!   and each user's notification preferences (events of the same stream).
//! - `announcements`: publishing an announcement (ADMIN), keyed retries.
//! - `stores`: [`stores::Stores::open`], the SQL database and the event log
//!   opened from the configured URLs, for the server and every subcommand.
//! - `cli`: the `tickets` command line (subcommands and their output).
//! - `settings`: the server's flags and environment (`tickets serve`), and the
//!   JWT secret rule (development mode vs production).
//! - `auth`: JSON Web Tokens (claims, verifying, minting) and the [`auth::Viewer`].
//! - `context`: [`context::ApiContext`], shared by every request.
//! - `error`: [`error::ApiError`], the GraphQL layer's errors and their codes.
//! - `graphql`: the schema: types, queries, mutations, subscriptions.
//! - `nesting`: how deep a query document nests, checked on its text before
//!   it is parsed, on every path a query enters by.
//! - `presence`: [`presence::Presence`], who is viewing or typing on which
//!   ticket: in memory, ended by its socket, its expiry or `LEFT`, shared
//!   between processes on one PostgreSQL database over `NOTIFY`.
//! - `rate_limits`: [`rate_limits::RateLimits`], budgets per user and per
//!   client address (RATE_LIMITED with `retryAfterSeconds`).
//! - `origins`: `--cors-origin`: CORS, and the `Origin` check of WebSocket
//!   upgrades.
//! - `requests`: what every GraphQL entry point over HTTP checks first (the
//!   body, the client's address, the anonymous budget).
//! - `readiness`: what `/readyz` checks: the database, and every projection
//!   running within `--ready-max-lag` of the log's head.
//! - `graphiql`: the GraphiQL page and its assets, embedded in the binary.
//! - `web`: the reference web client at `/` (embedded ES modules and the
//!   vendored graphql-ws client), and in development mode its one-click
//!   sign-in (`/dev/users`, `/dev/token`).
//! - `http`: routes (GraphQL over HTTP and WebSocket, health, readiness, metrics).
//! - `state`: [`state::AppState`], what every route and socket session is handed.
//! - `sockets`: [`sockets::Sockets`], the open WebSockets: per-user counts and
//!   the wait for every one to close at shutdown.
//! - `sse`: subscriptions over Server-Sent Events (`POST /graphql/stream`,
//!   graphql-sse's distinct connections mode).
//! - `ws`: GraphQL over WebSocket (graphql-transport-ws and the legacy
//!   graphql-ws): close codes, limits, token expiry, close on shutdown.
//! - `metrics`: counters and the Prometheus text of `/metrics`.
//! - `app`: [`app::Application`], the server built from its configuration.
//! - `telemetry`: logging setup.

pub mod announcements;
pub mod app;
pub mod auth;
pub mod cli;
pub mod command_service;
pub mod context;
pub mod error;
pub mod graphiql;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod nesting;
pub mod origins;
pub mod presence;
pub mod rate_limits;
pub mod readiness;
pub mod references;
pub mod requests;
pub mod settings;
pub mod sockets;
pub mod sse;
pub mod state;
pub mod stores;
pub mod telemetry;
pub mod users;
pub mod web;
pub mod ws;

pub use command_service::{CommandError, CommandOutcome, CommandRequest, CommandService};
