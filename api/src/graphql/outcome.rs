//! How a mutation runs a command and reports what it did: the contract's
//! `SupportTicketMutationResult` from the command service's outcome.

use async_graphql::Context;
use domain::Command;

use super::query::ticket_id;
use super::types::SupportTicketEvent;
use super::types::{SupportTicket, SupportTicketMutationResult};
use super::{api, viewer};
use crate::auth::Viewer;
use crate::command_service::{CommandError, CommandOutcome, CommandRequest};
use crate::context::ApiContext;
use crate::error::ApiError;

pub(super) type MutationResult = async_graphql::Result<SupportTicketMutationResult>;

/// Turns what the command service did into the contract's result.
pub(super) async fn result(
    api: &ApiContext,
    viewer: &Viewer,
    done: Result<CommandOutcome, CommandError>,
) -> MutationResult {
    let outcome = match done {
        Ok(outcome) => outcome,
        Err(CommandError::Store(e)) => return Err(ApiError::from(e).into()),
        Err(e) => {
            return Ok(SupportTicketMutationResult::rejected(
                e.code(),
                e.to_string(),
            ))
        }
    };
    if let Some(last) = outcome.events.last() {
        api.note_write(viewer.id(), last.position);
    }
    let event = event_for(viewer, &outcome);
    // A command can take the ticket out of the caller's sight (moved to a queue
    // they do not work): then it is not shown.
    let ticket = domain::can_see(&viewer.actor, &outcome.ticket)
        .then(|| SupportTicket(domain::redact(&viewer.actor, &outcome.ticket)));
    Ok(SupportTicketMutationResult {
        success: true,
        ticket,
        event,
        error: None,
        error_code: None,
        retry_after_seconds: None,
        current_version: None,
        changes_since: None,
    })
}

/// The command's last event as `viewer` may see it, built from the states
/// the command service decided on; `None` when it appended nothing or the
/// viewer may not receive the event (auth.md "Who receives an event").
fn event_for(viewer: &Viewer, outcome: &CommandOutcome) -> Option<SupportTicketEvent> {
    let (recorded, event, step) = outcome.last_step()?;
    if !domain::may_receive(&viewer.actor, step.before.as_ref(), &step.after, &event) {
        return None;
    }
    Some(SupportTicketEvent::for_viewer(
        &viewer.actor,
        recorded,
        event,
        step,
    ))
}

/// Runs `command` on the ticket `id` names, with the optional concurrency and
/// idempotency controls of the contract.
pub(super) async fn run(
    ctx: &Context<'_>,
    id: &str,
    command: Command,
    expected_version: Option<i32>,
    idempotency_key: Option<String>,
    metadata: serde_json::Value,
) -> MutationResult {
    let viewer = viewer(ctx)?;
    let api = api(ctx);
    if let Err(limited) = api.rates.mutation(viewer.id()) {
        return Ok(SupportTicketMutationResult::rate_limited(limited));
    }
    let Some(ticket_id) = ticket_id(api, id).await? else {
        return Ok(SupportTicketMutationResult::rejected(
            "NOT_FOUND",
            "ticket not found",
        ));
    };
    let expected_version = match expected_version {
        Some(v) if v < 0 => {
            return Ok(SupportTicketMutationResult::rejected(
                "INVALID",
                "expectedVersion must be at least 0",
            ))
        }
        other => other.map(|v| v as u64),
    };
    let mut request = CommandRequest::new(ticket_id, command, viewer.actor.clone());
    request.expected_version = expected_version;
    request.idempotency_key = idempotency_key.filter(|k| !k.trim().is_empty());
    request.metadata = metadata;
    let done = api.commands.execute(request).await;
    if let Err(CommandError::Conflict {
        expected: Some(seen),
        ..
    }) = &done
    {
        let message = done
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default();
        return conflict(api, viewer, ticket_id, *seen, message).await;
    }
    result(api, viewer, done).await
}

/// A command refused for a stale `expectedVersion`: CONFLICT with the
/// ticket as it is now and the events since `seen` that the caller may
/// receive, each redacted for them, so a client can show what changed and
/// let its user decide.
async fn conflict(
    api: &ApiContext,
    viewer: &Viewer,
    ticket_id: uuid::Uuid,
    seen: u64,
    message: String,
) -> MutationResult {
    let loaded = api.commands.load(ticket_id).await.map_err(ApiError::from)?;
    let Some(now) = loaded
        .state
        .as_ref()
        .filter(|t| domain::can_see(&viewer.actor, t))
    else {
        return Ok(SupportTicketMutationResult::rejected(
            "NOT_FOUND",
            "ticket not found",
        ));
    };
    let kept = domain::steps_kept(&loaded.decoded, |i, before, after| {
        let since = after.version > seen;
        if since && domain::may_receive(&viewer.actor, before, after, &loaded.decoded[i]) {
            domain::Keep::Yes
        } else {
            domain::Keep::No
        }
    });
    let changes = kept
        .into_iter()
        .map(|(i, step)| {
            let (recorded, event) = (loaded.events[i].clone(), loaded.decoded[i].clone());
            SupportTicketEvent::for_viewer(&viewer.actor, recorded, event, step)
        })
        .collect();
    Ok(SupportTicketMutationResult {
        ticket: Some(SupportTicket(domain::redact(&viewer.actor, now))),
        current_version: Some(i32::try_from(now.version).unwrap_or(i32::MAX)),
        changes_since: Some(changes),
        ..SupportTicketMutationResult::rejected("CONFLICT", message)
    })
}
