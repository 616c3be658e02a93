//! # Layout
//! The application around the domain and the store; the `tickets` binary
//! (`main.rs`) is a thin shell over it.
//!
//! - `command_service`: load a ticket's stream, decide, append with the loaded
//!   version; retries, expected versions and idempotency keys.
//! - `references`: human references (`TCK-000042`) allocated through the log.
//! - `users`: profiles recorded from token claims, looked up for assignment.
//! - `config`: opening the configured event store from a URL.
//! - `cli`: the `tickets` command line (subcommands and their output).

pub mod cli;
pub mod command_service;
pub mod config;
pub mod references;
pub mod users;

pub use command_service::{CommandError, CommandOutcome, CommandRequest, CommandService};
