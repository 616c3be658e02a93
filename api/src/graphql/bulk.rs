//! `bulkUpdateSupportTickets`: one action on up to 500 tickets. Each ticket
//! gets the commands the single mutations would send (assign or unassign,
//! status, priority, queue, tags, comment, in that order), decided by the
//! same domain code under the same rules; a ticket the caller may not see
//! is `NOT_FOUND` in its result, and the others go on. One result per id,
//! in the order given: the ticket's last command's, or the first refusal
//! (later commands on that ticket are not sent).
//!
//! A retry: with an `idempotencyKey`, every command of the call gets a key
//! of its own derived from it, the ticket's index and the command's index
//! (`bulk/<v5 of the key>/<i>/<j>`). The command service finds a keyed
//! command's events already in the stream and answers with them instead of
//! deciding again, so a call retried after being cut off halfway appends
//! only what the first call did not, and answers every ticket as the first
//! one would have.
//!
//! Every event of one call carries the call's id in its metadata
//! (`bulkId`), so what reads the log can tell them apart as one operation.

use async_graphql::{Context, InputObject, SimpleObject};
use domain::Command;
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use uuid::Uuid;

use super::outcome::result;
use super::query::ticket_id;
use super::types::{SupportTicketMutationResult, TicketPriority, TicketStatus};
use super::{api, bounds, viewer};
use crate::command_service::CommandRequest;
use crate::error::ApiError;

/// How many tickets of one call go through the command service at once.
const TICKETS_AT_ONCE: usize = 64;

/// Namespace of the ids of keyed bulk calls.
const BULK_NAMESPACE: Uuid = Uuid::from_u128(0x9d4b_7f2e_51c8_4a06_b3e1_6f0a_2c58_d917);

/// Every field left out changes nothing.
#[derive(InputObject, Clone, Debug, Default)]
pub struct BulkTicketAction {
    pub assignee_id: Option<String>,
    pub unassign: Option<bool>,
    pub status: Option<TicketStatus>,
    pub priority: Option<TicketPriority>,
    pub queue: Option<String>,
    pub add_tags: Option<Vec<String>>,
    pub remove_tags: Option<Vec<String>>,
    pub comment: Option<String>,
    pub internal: Option<bool>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct BulkUpdateResult {
    pub succeeded: i32,
    pub failed: i32,
    /// One per id, in the order given.
    pub results: Vec<SupportTicketMutationResult>,
}

/// The commands `action` means for one ticket, in the order they are sent.
fn commands(action: &BulkTicketAction, assignee_roles: Option<Vec<domain::Role>>) -> Vec<Command> {
    let mut commands = Vec::new();
    if let Some(assignee) = &action.assignee_id {
        commands.push(Command::Assign {
            assignee_id: assignee.trim().to_string(),
            assignee_roles,
        });
    } else if action.unassign == Some(true) {
        commands.push(Command::Unassign);
    }
    if let Some(status) = action.status {
        commands.push(Command::ChangeStatus {
            status: status.into(),
            comment: None,
        });
    }
    if let Some(priority) = action.priority {
        commands.push(Command::ChangePriority {
            priority: priority.into(),
        });
    }
    if let Some(queue) = &action.queue {
        commands.push(Command::Move {
            queue: queue.clone(),
        });
    }
    for tag in action.add_tags.iter().flatten() {
        commands.push(Command::AddTag { tag: tag.clone() });
    }
    for tag in action.remove_tags.iter().flatten() {
        commands.push(Command::RemoveTag { tag: tag.clone() });
    }
    if let Some(body) = &action.comment {
        commands.push(Command::Comment {
            comment_id: Uuid::new_v4(),
            body: body.clone(),
            internal: action.internal.unwrap_or(false),
        });
    }
    commands
}

pub(super) async fn run(
    ctx: &Context<'_>,
    ids: Vec<String>,
    action: BulkTicketAction,
    idempotency_key: Option<String>,
) -> async_graphql::Result<BulkUpdateResult> {
    let viewer = viewer(ctx)?;
    let api = api(ctx);
    bounds::items("ids", Some(&ids), bounds::MAX_IDS)?;
    for tags in [&action.add_tags, &action.remove_tags] {
        bounds::items("tags", tags.as_ref(), bounds::MAX_FILTER_ITEMS)?;
    }
    if let Err(limited) = api.rates.mutation(viewer.id()) {
        return Err(ApiError::RateLimited(limited).into());
    }
    let key = idempotency_key.filter(|k| !k.trim().is_empty());
    crate::command_service::check_key_length(key.as_deref()).map_err(super::inbox::refused)?;
    let assignee_roles = match &action.assignee_id {
        Some(assignee) => api
            .users
            .lookup(assignee.trim())
            .await
            .map_err(ApiError::from)?
            .map(|p| p.roles),
        None => None,
    };
    let planned = commands(&action, assignee_roles);
    if planned.is_empty() {
        return Err(ApiError::Invalid("the action changes nothing".into()).into());
    }
    let bulk_id = match &key {
        Some(key) => Uuid::new_v5(
            &BULK_NAMESPACE,
            format!("{}\u{0}{key}", viewer.id()).as_bytes(),
        ),
        None => Uuid::new_v4(),
    };
    // Tickets are independent: up to TICKETS_AT_ONCE go through the command
    // service together (so their appends share commits), each ticket's
    // commands in order, and the results come back in the order given.
    let one_ticket = |i: usize, id: String| {
        let (key, planned) = (&key, &planned);
        async move {
            let Some(ticket) = ticket_id(api, &id).await? else {
                return Ok::<_, async_graphql::Error>(Some(SupportTicketMutationResult::rejected(
                    "NOT_FOUND",
                    "ticket not found",
                )));
            };
            let mut last = None;
            for (j, command) in planned.iter().enumerate() {
                let mut request =
                    CommandRequest::new(ticket, command.clone(), viewer.actor.clone());
                request.idempotency_key = key.as_ref().map(|_| format!("bulk/{bulk_id}/{i}/{j}"));
                request.metadata = json!({ "bulkId": bulk_id.to_string() });
                let done = api.commands.execute(request).await;
                let answer = result(api, viewer, done).await?;
                let refused = !answer.success;
                last = Some(answer);
                if refused {
                    break;
                }
            }
            Ok(last)
        }
    };
    let results: Vec<SupportTicketMutationResult> =
        futures::stream::iter(ids.into_iter().enumerate())
            .map(|(i, id)| one_ticket(i, id))
            .buffered(TICKETS_AT_ONCE)
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .flatten()
            .collect();
    let succeeded = results.iter().filter(|r| r.success).count();
    Ok(BulkUpdateResult {
        succeeded: i32::try_from(succeeded).unwrap_or(i32::MAX),
        failed: i32::try_from(results.len() - succeeded).unwrap_or(i32::MAX),
        results,
    })
}
