//! `tickets ticket ...` and `tickets user ...`: commands through the same
//! command service the API uses, as an operator (ADMIN unless told otherwise).

use std::io::Write;

use anyhow::bail;
use chrono::Utc;
use clap::{Args, Subcommand};
use domain::{Actor, Command, Role, TicketPriority, TicketStatus};
use uuid::Uuid;

use super::parse_enum;
use crate::command_service::{CommandRequest, CommandService};
use crate::users::{UserDirectory, UserProfile};

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
    #[command(flatten)]
    pub limits: crate::settings::LimitSettings,
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

/// `tickets user ID ...`: records the profile.
pub(super) async fn run_user(
    users: &UserDirectory,
    u: UserCli,
    out: &mut impl Write,
) -> anyhow::Result<()> {
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
    Ok(())
}

/// `tickets ticket ...`: records the acting user's profile, then runs the
/// command.
pub(super) async fn run(
    service: &CommandService,
    users: &UserDirectory,
    t: TicketCli,
    out: &mut impl Write,
) -> anyhow::Result<()> {
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
    run_ticket(service, users, actor, t.command, out).await
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
