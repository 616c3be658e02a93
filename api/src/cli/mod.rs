//! The `tickets` command line: the flags every subcommand shares (where the
//! stores are, the JWT secret, the log format), the subcommands, and
//! [`run`], which opens the stores once ([`Stores::open`]) and hands them to
//! the subcommand (`log` is the event log's audit tooling). Every subcommand goes through the same command path as
//! the API: the store is the only thing it talks to.

use std::ffi::OsString;

use anyhow::Context;
use clap::{Args, CommandFactory, Parser, Subcommand};
use domain::Role;
use serde::de::DeserializeOwned;

mod demo;
mod log;
mod projections;
mod server;
mod ticket;

/// Every projection the server runs, in the order `tickets projections
/// rebuild` takes them (public so the benchmark rebuilds exactly these).
pub use projections::catalogue;

use crate::auth::parse_ttl;
use crate::command_service::CommandService;
use crate::settings::{parse_flag, Secret, SecretUse, ServeSettings, SlaSettings};
use crate::stores::{StoreUrls, Stores, DEFAULT_DATABASE_URL};
use crate::telemetry::LogFormat;
use crate::users::UserDirectory;

#[derive(Debug, Parser)]
#[command(name = "tickets", version, about = "Event-sourced support tickets")]
pub struct Cli {
    /// Event store: sqlite://FILE (embedded default) or postgres://...
    #[arg(long, env = "TICKETS_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,
    /// Event log on EventStoreDB (esdb://...); default: the log lives in the
    /// database above.
    #[arg(long, env = "TICKETS_EVENT_STORE_URL", global = true)]
    pub event_store_url: Option<String>,
    /// PostgreSQL schema to keep everything in (created if missing); default:
    /// the connection's search path.
    #[arg(long, env = "TICKETS_DATABASE_SCHEMA", global = true)]
    pub database_schema: Option<String>,
    /// Secret that signs and verifies tokens (HS256). Without it the server
    /// runs in development mode with a public, well-known secret.
    #[arg(
        long,
        env = "TICKETS_JWT_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub jwt_secret: Option<String>,
    /// Production mode: a missing JWT secret is a start-up error.
    #[arg(long, env = "TICKETS_PRODUCTION", global = true, value_parser = parse_flag,
          num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true")]
    pub production: bool,
    /// Log lines as `text` or `json`.
    #[arg(
        long,
        env = "TICKETS_LOG_FORMAT",
        global = true,
        value_enum,
        ignore_case = true,
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// What to do; without one, `serve` (so `tickets --listen ADDR` is
    /// `tickets serve --listen ADDR`).
    #[command(subcommand)]
    pub command: TopCommand,
}

impl Cli {
    /// Parses the process's arguments, `serve` when no subcommand is named.
    pub fn parse_args() -> Cli {
        Cli::parse_from(default_to_serve(std::env::args_os().collect()))
    }

    /// Whether this run starts the server.
    pub fn serves(&self) -> bool {
        matches!(self.command, TopCommand::Serve(_))
    }

    fn urls(&self) -> StoreUrls {
        StoreUrls {
            database_url: self.database_url.clone(),
            event_store_url: self.event_store_url.clone(),
        }
    }

    pub(crate) fn secret(&self, usage: SecretUse) -> anyhow::Result<Secret> {
        Secret::choose(self.jwt_secret.as_deref(), self.production, usage)
            .map_err(anyhow::Error::msg)
    }
}

#[derive(Debug, Subcommand)]
pub enum TopCommand {
    /// Run the GraphQL server (the default).
    Serve(ServeSettings),
    /// Print a token signed with the configured secret (auth.md).
    Token(TokenArgs),
    /// Print the served GraphQL schema (SDL).
    Schema,
    /// Create, change and inspect tickets.
    Ticket(ticket::TicketCli),
    /// Record a user profile (needed before a user can be assigned tickets).
    User(ticket::UserCli),
    /// Operate the read models: status, rebuild.
    Projections(ProjectionsArgs),
    /// Fill the database with a realistic, seeded demo data set (queues,
    /// agents, requesters, weeks of ticket history).
    Demo(demo::DemoArgs),
    /// Audit and move the event log: verify, digest, export, import.
    #[command(subcommand)]
    Log(log::LogCommand),
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// User id (the `sub` claim).
    #[arg(long)]
    pub sub: String,
    /// Role(s): REQUESTER (default), AGENT, ADMIN.
    #[arg(long = "role", value_parser = parse_enum::<Role>)]
    pub roles: Vec<Role>,
    /// Team(s): queues the user works.
    #[arg(long = "team")]
    pub teams: Vec<String>,
    /// Lifetime, e.g. 90s, 30m, 1h, 7d.
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    pub ttl: std::time::Duration,
    #[arg(long)]
    pub given_name: Option<String>,
    #[arg(long)]
    pub family_name: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
}

/// Parses a contract enum name case-insensitively (`in-progress` = `IN_PROGRESS`).
fn parse_enum<T: DeserializeOwned>(s: &str) -> Result<T, String> {
    let name = s.trim().to_uppercase().replace('-', "_");
    serde_json::from_value(serde_json::Value::String(name))
        .map_err(|_| format!("unknown value '{s}'"))
}

/// `tickets projections`: the SLA targets (a rebuilt `queue_metrics` counts
/// breaches against the server's) and what to do.
#[derive(Debug, Args)]
pub struct ProjectionsArgs {
    #[command(flatten)]
    pub sla: SlaSettings,
    #[command(subcommand)]
    pub command: projections::ProjectionsCommand,
}

/// `args` with `serve` inserted after the program's name when no subcommand
/// is named: the first argument that is neither one of [`Cli`]'s own flags
/// (or its value) nor help or version is taken as the subcommand, or, when
/// it is a flag, as one of `serve`'s.
fn default_to_serve(mut args: Vec<OsString>) -> Vec<OsString> {
    let cli = Cli::command();
    let mut i = 1;
    while let Some(arg) = args.get(i).map(|a| a.to_string_lossy().into_owned()) {
        if matches!(arg.as_str(), "-h" | "--help" | "-V" | "--version" | "help") {
            return args;
        }
        let Some(flag) = arg.strip_prefix("--") else {
            // A positional argument: the subcommand (clap reports an unknown one).
            return args;
        };
        let (name, inline_value) = match flag.split_once('=') {
            Some((name, _)) => (name, true),
            None => (flag, false),
        };
        let Some(own) = cli.get_arguments().find(|a| a.get_long() == Some(name)) else {
            break;
        };
        let takes_value = own.get_action().takes_values() && !own.is_require_equals_set();
        i += if takes_value && !inline_value { 2 } else { 1 };
    }
    args.insert(1.min(args.len()), OsString::from("serve"));
    args
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let urls = cli.urls();
    let schema = cli.database_schema.as_deref();
    let mut out = std::io::stdout().lock();
    match cli.command {
        TopCommand::Serve(ref settings) => server::serve(&cli, settings, &urls).await,
        TopCommand::Token(ref t) => server::print_token(&cli, t),
        TopCommand::Schema => {
            println!("{}", crate::graphql::build_schema(None).sdl());
            Ok(())
        }
        TopCommand::Projections(p) => {
            let policy = p.sla.policy().context("invalid SLA configuration")?;
            let stores = Stores::open(&urls, schema).await?;
            let db = stores.database.write_db();
            projections::run(p.command, stores.log, db, policy, &mut out).await
        }
        TopCommand::Log(command) => {
            let stores = Stores::open(&urls, schema).await?;
            log::run(command, stores.log, &mut out).await
        }
        TopCommand::Demo(args) => {
            let stores = Stores::open(&urls, schema).await?;
            let service = CommandService::new(stores.log.clone());
            let users = UserDirectory::new(stores.log);
            demo::run(&service, &users, args, &urls.database_url, schema, &mut out).await
        }
        TopCommand::User(u) => {
            let stores = Stores::open(&urls, schema).await?;
            ticket::run_user(&UserDirectory::new(stores.log), u, &mut out).await
        }
        TopCommand::Ticket(t) => {
            let stores = Stores::open(&urls, schema).await?;
            let service =
                CommandService::new(stores.log.clone()).with_limits(t.limits.ticket_limits());
            let users = UserDirectory::new(stores.log);
            ticket::run(&service, &users, t, &mut out).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        default_to_serve(line.split_whitespace().map(OsString::from).collect())
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// No subcommand is `serve`, whatever shared flags come first; a named
    /// subcommand, help and version are left alone.
    #[test]
    fn without_a_subcommand_the_server_runs() {
        assert_eq!(args("tickets"), ["tickets", "serve"]);
        assert_eq!(
            args("tickets --listen 127.0.0.1:0"),
            ["tickets", "serve", "--listen", "127.0.0.1:0"]
        );
        assert_eq!(
            args("tickets --database-url sqlite://x.db --production --listen 1.2.3.4:5")[1],
            "serve"
        );
        assert_eq!(
            args("tickets --database-url serve.db ticket show 1")[1],
            "--database-url"
        );
        assert_eq!(args("tickets --log-format=json ticket show 1")[2], "ticket");
        assert_eq!(args("tickets --help"), ["tickets", "--help"]);
        assert_eq!(args("tickets -V"), ["tickets", "-V"]);
    }

    /// Server flags belong to `serve`: another subcommand refuses them, and
    /// `projections` takes the SLA targets.
    #[test]
    fn server_flags_are_only_for_serve() {
        let parse = |line: &str| Cli::try_parse_from(args(line));
        assert!(parse("tickets ticket show TCK-1 --listen 127.0.0.1:0").is_err());
        assert!(parse("tickets token --sub a --max-body-bytes 9").is_err());
        assert!(parse("tickets --listen 127.0.0.1:0").is_ok_and(|c| c.serves()));
        assert!(parse("tickets serve --listen 127.0.0.1:0 --database-url sqlite://x.db").is_ok());
        let rebuild = parse("tickets projections --sla-targets HIGH=1h/1d rebuild")
            .expect("projections takes the SLA targets");
        assert!(matches!(rebuild.command, TopCommand::Projections(_)));
        assert!(parse("tickets ticket show TCK-1 --database-url sqlite://x.db").is_ok());
    }
}
