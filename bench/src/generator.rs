//! A realistic event log, generated fast: tickets' whole lives decided by the
//! domain (so every event is one the real command path could have written)
//! and appended straight to the store, one append per ticket, several tickets
//! in flight at once. Moved here from `projections/benches/rebuild.rs`, with a
//! wider mix of event kinds, queues and people.

use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use domain::{Actor, Command, Role, Ticket, TicketPriority, TicketStatus};
use futures::{stream, StreamExt, TryStreamExt};
use store::{EventStore, ExpectedVersion, NewEvent};
use uuid::Uuid;

/// Events in one ticket's life.
pub const EVENTS_PER_TICKET: usize = 20;
/// The queues tickets are spread over (and the agents' teams).
pub const QUEUES: [&str; 5] = ["support", "network", "hardware", "billing", "access"];
/// Agents per queue.
const AGENTS_PER_QUEUE: usize = 4;
/// Distinct requesters.
const REQUESTERS: usize = 500;
/// Tickets appended concurrently.
const IN_FLIGHT: usize = 16;

/// The agent `i` of `queue`.
pub fn agent(queue: &str, i: usize) -> Actor {
    Actor::new(
        format!("agent-{queue}-{i}"),
        vec![Role::Agent],
        vec![queue.to_string()],
    )
}

/// Appends the lives of `tickets` tickets (ticket `n` in queue
/// `QUEUES[n % 5]`), plus the agents' user profiles; returns how many events
/// were appended.
pub async fn generate(store: Arc<dyn EventStore>, tickets: usize) -> anyhow::Result<u64> {
    let users = api::users::UserDirectory::new(store.clone());
    let mut appended = 0u64;
    for queue in QUEUES {
        for i in 0..AGENTS_PER_QUEUE {
            let a = agent(queue, i);
            let profile = api::users::UserProfile {
                id: a.user_id.clone(),
                first_name: Some(format!("Agent{i}")),
                last_name: Some(queue.to_string()),
                email: Some(format!("{}@example.com", a.user_id)),
                roles: a.roles.clone(),
                teams: a.teams.clone(),
            };
            appended += u64::from(users.record(&profile).await?);
        }
    }
    let counts: Vec<usize> = stream::iter(0..tickets)
        .map(|n| {
            let store = store.clone();
            async move { append_ticket(&*store, n).await }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect()
        .await?;
    Ok(appended + counts.iter().sum::<usize>() as u64)
}

/// The command of step `step` in the life of ticket `n`.
fn command(n: usize, step: usize, id: Uuid, queue: &str) -> Command {
    let mover = QUEUES[(n + 1) % QUEUES.len()];
    match step {
        0 => Command::Create {
            ticket_id: id,
            reference: format!("TCK-{:07}", n + 1),
            request: format!("Request {n}: the VPN drops every hour"),
            description: Some("Since Monday, on the office Wi-Fi and at home.".into()),
            priority: [
                TicketPriority::Low,
                TicketPriority::Medium,
                TicketPriority::High,
            ][n % 3],
            queue: queue.to_string(),
            tags: vec!["vpn".into()],
        },
        1 => Command::Assign {
            assignee_id: agent(queue, n % AGENTS_PER_QUEUE).user_id,
            assignee_roles: Some(vec![Role::Agent]),
        },
        2 => Command::ChangeStatus {
            status: TicketStatus::InProgress,
            comment: None,
        },
        3 | 9 | 14 => Command::Comment {
            comment_id: Uuid::new_v4(),
            body: format!("Step {step}: checked the logs, collecting more detail."),
            internal: step == 9,
        },
        4 => Command::AddTag {
            tag: format!("site-{}", n % 7),
        },
        5 => Command::Watch {
            user_id: format!("requester-{}", (n + 7) % REQUESTERS),
        },
        6 => Command::ChangePriority {
            priority: TicketPriority::Critical,
        },
        7 => Command::AddAttachment {
            attachment_id: Uuid::new_v4(),
            name: "trace.log".into(),
            url: format!("https://files.example.com/{n}/trace.log"),
            mime_type: Some("text/plain".into()),
            size: Some(4096),
        },
        8 => Command::ChangeStatus {
            status: TicketStatus::OnHold,
            comment: None,
        },
        10 => Command::Update {
            request: None,
            description: Some(format!("Updated description of ticket {n}.")),
        },
        11 => Command::ChangeStatus {
            status: TicketStatus::InProgress,
            comment: None,
        },
        12 => Command::RemoveTag { tag: "vpn".into() },
        13 if n.is_multiple_of(10) => Command::Move {
            queue: mover.to_string(),
        },
        13 => Command::ChangePriority {
            priority: TicketPriority::High,
        },
        15 => Command::Unwatch {
            user_id: format!("requester-{}", (n + 7) % REQUESTERS),
        },
        16 => Command::AddTag {
            tag: "escalated".into(),
        },
        17 => Command::ChangePriority {
            priority: TicketPriority::Medium,
        },
        18 => Command::ChangeStatus {
            status: TicketStatus::Resolved,
            comment: None,
        },
        _ => Command::ChangeStatus {
            // Most resolved tickets get closed; some are reopened.
            status: if n.is_multiple_of(5) {
                TicketStatus::Open
            } else {
                TicketStatus::Closed
            },
            comment: None,
        },
    }
}

/// One ticket's life in one append: created by a requester, then worked on by
/// an agent (an admin where the agent may no longer see it after a move).
async fn append_ticket(store: &dyn EventStore, n: usize) -> anyhow::Result<usize> {
    let id = Uuid::new_v4();
    let queue = QUEUES[n % QUEUES.len()];
    let requester = Actor::new(
        format!("requester-{}", n % REQUESTERS),
        vec![Role::Requester],
        vec![],
    );
    let admin = Actor::new("admin-1", vec![Role::Admin], vec![]);
    let worker = agent(queue, n % AGENTS_PER_QUEUE);
    let mut at: DateTime<Utc> =
        DateTime::from_timestamp(1_700_000_000 + n as i64 * 60, 0).unwrap_or_default();
    let mut state: Option<Ticket> = None;
    let mut events = Vec::with_capacity(EVENTS_PER_TICKET);
    for step in 0..EVENTS_PER_TICKET {
        let command = command(n, step, id, queue);
        let actor = match step {
            0 => &requester,
            s if s > 13 && n.is_multiple_of(10) => &admin,
            _ => &worker,
        };
        at += Duration::seconds(30);
        let decided = domain::decide(state.as_ref(), &command, actor, at)
            .with_context(|| format!("ticket {n}, step {step} ({})", command.name()))?;
        state = decided.iter().fold(state, domain::evolve);
        events.extend(decided.iter().map(|e| {
            let encoded = domain::encode(e);
            NewEvent {
                id: Uuid::new_v4(),
                event_type: encoded.event_type.into(),
                schema_version: encoded.schema_version,
                data: encoded.data,
                metadata: serde_json::json!({ "command": command.name(), "actor": actor.user_id }),
            }
        }));
    }
    let count = events.len();
    store
        .append(&domain::stream_name(id), ExpectedVersion::NoStream, events)
        .await?;
    Ok(count)
}
