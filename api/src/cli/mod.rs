//! The `tickets` command line. Every subcommand goes through the same command
//! path as the API will: the store is the only thing it talks to.

use std::io::Write;

use anyhow::{bail, Context};
use chrono::Utc;
use clap::{Args, Parser, Subcommand};
use domain::{Actor, Command, Role, TicketPriority, TicketStatus};
use serde::de::DeserializeOwned;
use uuid::Uuid;

mod demo;
mod projections;
mod server;

/// Every projection the server runs, in the order `tickets projections
/// rebuild` takes them (public so the benchmark rebuilds exactly these).
pub use projections::catalogue;

use crate::app::SqlDatabase;
use crate::auth::parse_ttl;
use crate::command_service::{CommandRequest, CommandService};
use crate::config::{open_store, StoreUrls, DEFAULT_DATABASE_URL};
use crate::settings::{parse_flag, Secret, SecretUse, ServeSettings};
use crate::telemetry::LogFormat;
use crate::users::{UserDirectory, UserProfile};

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
    #[command(flatten)]
    pub serve: ServeSettings,
    /// What to do; default `serve`.
    #[command(subcommand)]
    pub command: Option<TopCommand>,
}

impl Cli {
    /// Whether this run starts the server (`serve`, or no subcommand).
    pub fn serves(&self) -> bool {
        matches!(self.command, None | Some(TopCommand::Serve))
    }

    pub(crate) fn secret(&self, usage: SecretUse) -> anyhow::Result<Secret> {
        Secret::choose(self.jwt_secret.as_deref(), self.production, usage)
            .map_err(anyhow::Error::msg)
    }
}

#[derive(Debug, Subcommand)]
pub enum TopCommand {
    /// Run the GraphQL server (the default).
    Serve,
    /// Print a token signed with the configured secret (auth.md).
    Token(TokenArgs),
    /// Print the served GraphQL schema (SDL).
    Schema,
    /// Create, change and inspect tickets.
    Ticket(TicketCli),
    /// Record a user profile (needed before a user can be assigned tickets).
    User(UserCli),
    /// Operate the read models: status, rebuild.
    #[command(subcommand)]
    Projections(projections::ProjectionsCommand),
    /// Fill the database with a realistic, seeded demo data set (queues,
    /// agents, requesters, weeks of ticket history).
    Demo(demo::DemoArgs),
}

/// Who the command acts as. The command line is an operator's tool: ADMIN unless
/// told otherwise.
#[derive(Debug, Args)]
pub struct ActorArgs {
    /// User id to act as.
    #[arg(
        long = "as",
        env = "TICKETS_ACTOR",
        default_value = "admin",
        global = true
    )]
    pub user: String,
    /// Role(s) of that user: REQUESTER, AGENT, ADMIN (default ADMIN).
    #[arg(long = "role", value_parser = parse_enum::<Role>, global = true)]
    pub roles: Vec<Role>,
    /// Team(s) (queues) of that user.
    #[arg(long = "team", global = true)]
    pub teams: Vec<String>,
}

impl ActorArgs {
    fn actor(&self) -> Actor {
        Actor {
            user_id: self.user.clone(),
            roles: if self.roles.is_empty() {
                vec![Role::Admin]
            } else {
                self.roles.clone()
            },
            teams: self.teams.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct TicketCli {
    #[command(flatten)]
    pub actor: ActorArgs,
    #[command(subcommand)]
    pub command: TicketCommand,
}

#[derive(Debug, Subcommand)]
pub enum TicketCommand {
    /// Create a ticket and print its reference and id.
    Create {
        /// One-line summary.
        #[arg(long)]
        request: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long, default_value = "MEDIUM", value_parser = parse_enum::<TicketPriority>)]
        priority: TicketPriority,
        #[arg(long, default_value = "support")]
        queue: String,
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    /// Comment on a ticket.
    Comment {
        /// Ticket id or reference (TCK-000042).
        ticket: String,
        text: String,
        #[arg(long)]
        internal: bool,
    },
    /// Change a ticket's status (OPEN, IN_PROGRESS, ON_HOLD, RESOLVED, CLOSED).
    Status {
        ticket: String,
        #[arg(value_parser = parse_enum::<TicketStatus>)]
        status: TicketStatus,
    },
    /// Assign a ticket to a known AGENT or ADMIN.
    Assign { ticket: String, assignee: String },
    /// Tag a ticket.
    Tag { ticket: String, tag: String },
    /// Print a ticket's current state as JSON.
    Show { ticket: String },
    /// Print every event of a ticket with the fields it changed.
    History {
        ticket: String,
        /// One JSON object per event instead of text.
        #[arg(long)]
        json: bool,
    },
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

#[derive(Debug, Args)]
pub struct UserCli {
    /// User id.
    pub id: String,
    #[arg(long = "role", value_parser = parse_enum::<Role>)]
    pub roles: Vec<Role>,
    #[arg(long = "team")]
    pub teams: Vec<String>,
    #[arg(long)]
    pub first_name: Option<String>,
    #[arg(long)]
    pub last_name: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
}

/// Parses a contract enum name case-insensitively (`in-progress` = `IN_PROGRESS`).
fn parse_enum<T: DeserializeOwned>(s: &str) -> Result<T, String> {
    let name = s.trim().to_uppercase().replace('-', "_");
    serde_json::from_value(serde_json::Value::String(name))
        .map_err(|_| format!("unknown value '{s}'"))
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let urls = StoreUrls {
        database_url: cli.database_url.clone(),
        event_store_url: cli.event_store_url.clone(),
    };
    let command = match cli.command {
        None | Some(TopCommand::Serve) => return server::serve(&cli, &urls).await,
        Some(TopCommand::Token(ref t)) => return server::print_token(&cli, t),
        Some(TopCommand::Schema) => {
            println!("{}", crate::graphql::build_schema(None).sdl());
            return Ok(());
        }
        Some(TopCommand::Projections(command)) => {
            let db = SqlDatabase::open(&urls.database_url, cli.database_schema.as_deref()).await?;
            let log = match &urls.event_store_url {
                Some(url) => open_store(url)
                    .await
                    .with_context(|| format!("opening {}", crate::config::redact(url)))?,
                None => db.store(),
            };
            let policy = cli
                .serve
                .sla_policy()
                .context("invalid SLA configuration")?;
            let mut out = std::io::stdout().lock();
            return projections::run(command, log, db.write_db(), policy, &mut out).await;
        }
        Some(command) => command,
    };
    let store = match (&urls.event_store_url, &cli.database_schema) {
        (None, Some(schema)) => {
            let db = SqlDatabase::open(&urls.database_url, Some(schema)).await?;
            match db {
                SqlDatabase::Postgres(s) => {
                    std::sync::Arc::new(s) as std::sync::Arc<dyn store::EventStore>
                }
                SqlDatabase::Sqlite(s) => std::sync::Arc::new(s),
            }
        }
        _ => open_store(urls.event_log())
            .await
            .with_context(|| format!("opening {}", crate::config::redact(urls.event_log())))?,
    };
    let service = CommandService::new(store.clone());
    let users = UserDirectory::new(store);
    let mut out = std::io::stdout().lock();
    match command {
        TopCommand::Serve
        | TopCommand::Token(_)
        | TopCommand::Schema
        | TopCommand::Projections(_) => {
            unreachable!("handled above")
        }
        TopCommand::Demo(args) => {
            let schema = cli.database_schema.as_deref();
            demo::run(&service, &users, args, &urls.database_url, schema, &mut out).await?;
        }
        TopCommand::User(u) => {
            let profile = UserProfile {
                id: u.id,
                first_name: u.first_name,
                last_name: u.last_name,
                email: u.email,
                roles: if u.roles.is_empty() {
                    vec![Role::Requester]
                } else {
                    u.roles
                },
                teams: u.teams,
            };
            let changed = users.record(&profile).await?;
            writeln!(
                out,
                "{} {}",
                if changed { "recorded" } else { "unchanged" },
                profile.id
            )?;
        }
        TopCommand::Ticket(t) => {
            let actor = t.actor.actor();
            users
                .record(&UserProfile {
                    id: actor.user_id.clone(),
                    first_name: None,
                    last_name: None,
                    email: None,
                    roles: actor.roles.clone(),
                    teams: actor.teams.clone(),
                })
                .await?;
            run_ticket(&service, &users, actor, t.command, &mut out).await?;
        }
    }
    Ok(())
}

async fn run_ticket(
    service: &CommandService,
    users: &UserDirectory,
    actor: Actor,
    command: TicketCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let command = match command {
        TicketCommand::Create {
            request,
            description,
            priority,
            queue,
            tags,
        } => {
            let outcome = service
                .create(
                    actor,
                    request,
                    description,
                    priority,
                    queue,
                    tags,
                    None,
                    Utc::now(),
                )
                .await?;
            writeln!(out, "{} {}", outcome.ticket.reference, outcome.ticket.id)?;
            return Ok(());
        }
        TicketCommand::Show { ticket } => {
            let id = resolve(service, &ticket).await?;
            let loaded = service.load(id).await?;
            let Some(state) = loaded.state.filter(|t| domain::can_see(&actor, t)) else {
                bail!("no ticket {ticket}");
            };
            writeln!(out, "{}", serde_json::to_string_pretty(&state)?)?;
            return Ok(());
        }
        TicketCommand::History { ticket, json } => {
            let id = resolve(service, &ticket).await?;
            return print_history(service, &actor, id, &ticket, json, out).await;
        }
        TicketCommand::Comment {
            ticket,
            text,
            internal,
        } => (
            ticket,
            Command::Comment {
                comment_id: Uuid::new_v4(),
                body: text,
                internal,
            },
        ),
        TicketCommand::Status { ticket, status } => (
            ticket,
            Command::ChangeStatus {
                status,
                comment: None,
            },
        ),
        TicketCommand::Assign { ticket, assignee } => {
            let roles = users.lookup(&assignee).await?.map(|p| p.roles);
            (
                ticket,
                Command::Assign {
                    assignee_id: assignee,
                    assignee_roles: roles,
                },
            )
        }
        TicketCommand::Tag { ticket, tag } => (ticket, Command::AddTag { tag }),
    };
    let (ticket, command) = command;
    let id = resolve(service, &ticket).await?;
    let outcome = service
        .execute(CommandRequest::new(id, command, actor))
        .await?;
    if outcome.events.is_empty() {
        writeln!(
            out,
            "{} unchanged (version {})",
            outcome.ticket.reference, outcome.ticket.version
        )?;
    } else {
        writeln!(
            out,
            "{} now at version {}",
            outcome.ticket.reference, outcome.ticket.version
        )?;
    }
    Ok(())
}

/// A ticket id from a UUID or a `TCK-` reference.
async fn resolve(service: &CommandService, ticket: &str) -> anyhow::Result<Uuid> {
    if let Ok(id) = ticket.trim().parse::<Uuid>() {
        return Ok(id);
    }
    match service.references().resolve(ticket).await? {
        Some(id) => Ok(id),
        None => bail!("no ticket {ticket} (give a UUID or a reference such as TCK-000042)"),
    }
}

async fn print_history(
    service: &CommandService,
    actor: &Actor,
    id: Uuid,
    name: &str,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let loaded = service.load(id).await?;
    let steps = domain::history::steps(&loaded.decoded);
    if steps.is_empty() || !steps.iter().any(|s| domain::can_see(actor, &s.after)) {
        bail!("no ticket {name}");
    }
    for (step, (recorded, event)) in steps.iter().zip(loaded.events.iter().zip(&loaded.decoded)) {
        if !domain::may_receive(actor, step.before.as_ref(), &step.after, event) {
            continue;
        }
        let event_type = event.change.event_type();
        if json {
            let line = serde_json::json!({
                "position": recorded.position.to_cursor(),
                "version": step.version,
                "eventType": event_type,
                "triggeredBy": event.actor,
                "timestamp": event.at,
                "changes": step.changes,
            });
            writeln!(out, "{line}")?;
            continue;
        }
        let kind = serde_json::to_value(event_type)?;
        writeln!(
            out,
            "v{} {} {} by {}",
            step.version,
            event.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            kind.as_str().unwrap_or("?"),
            event.actor
        )?;
        for change in &step.changes {
            writeln!(
                out,
                "    {}: {} -> {}",
                change.field, change.old_value, change.new_value
            )?;
        }
    }
    Ok(())
}
