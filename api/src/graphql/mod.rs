//! The GraphQL schema of `contract/schema.graphql`.
//!
//! - `types`: output types and enums over the domain's values.
//! - `event`: `SupportTicketEvent` and `FieldChange`.
//! - `inputs`: input objects.
//! - `pending`: contract types of the queue-metrics and notifications read models.
//! - `query`, `mutation`, `subscription`: the three roots; `outcome` turns a
//!   command's outcome into a mutation result.
//! - `bounds`: limits on list and string arguments.
//! - `depth`: the `--max-query-depth` limit, which introspection is not held to.
//! - `delivery`: which ticket events a subscriber receives ([`delivery::matches`]).
//!
//! Every root field starts with [`viewer`], so no operation of the contract runs
//! without a valid token; introspection does, so GraphiQL can show the docs.

pub mod bounds;
pub mod delivery;
pub mod depth;
pub mod event;
pub mod inputs;
pub mod mutation;
mod outcome;
pub mod pending;
pub mod query;
pub mod subscription;
pub mod types;

use async_graphql::Context;
use store::RecordedEvent;

use crate::auth::{AuthError, Viewer};
use crate::context::ApiContext;
use crate::error::ApiError;
use types::{SupportTicketEvent, User};

pub type TicketsSchema =
    async_graphql::Schema<query::Query, mutation::Mutation, subscription::Subscription>;

/// What authentication gave for a request or a socket; put in its data.
#[derive(Debug, Clone)]
pub struct Authentication(pub Result<Viewer, AuthError>);

/// The schema with the limits of `ctx`'s settings; `None` only for printing
/// the SDL.
pub fn build_schema(ctx: Option<ApiContext>) -> TicketsSchema {
    let mut builder =
        async_graphql::Schema::build(query::Query, mutation::Mutation, subscription::Subscription);
    if let Some(ctx) = ctx {
        builder = builder
            // Introspection nests deeper than any query of the contract
            // should: `depth` holds the contract's fields to the setting.
            .limit_depth(ctx.settings.max_query_depth.max(depth::INTROSPECTION_DEPTH))
            .extension(depth::SelectionDepth {
                max: ctx.settings.max_query_depth,
            })
            .limit_complexity(ctx.settings.max_query_complexity)
            .data(ctx);
    }
    builder.finish()
}

pub(crate) fn api<'a>(ctx: &Context<'a>) -> &'a ApiContext {
    ctx.data_unchecked::<ApiContext>()
}

/// The authenticated caller, or `UNAUTHENTICATED`.
pub(crate) fn viewer<'a>(ctx: &Context<'a>) -> Result<&'a Viewer, ApiError> {
    match ctx.data_opt::<Authentication>() {
        Some(Authentication(Ok(viewer))) => Ok(viewer),
        Some(Authentication(Err(e))) => Err(ApiError::Unauthenticated(e.clone())),
        None => Err(ApiError::Unauthenticated(AuthError::Missing)),
    }
}

/// A user by id: the caller from their own claims (always fresh), anyone else
/// from the users read model, `{id, roles: []}` when unknown.
pub(crate) async fn user_by_id(ctx: &Context<'_>, id: &str) -> Result<User, ApiError> {
    if let Ok(me) = viewer(ctx) {
        if me.id() == id {
            return Ok(me.claims.profile().into());
        }
    }
    Ok(crate::read_models::find_user(&api(ctx).read_db, id)
        .await?
        .map(User::from)
        .unwrap_or_else(|| User::unknown(id)))
}

/// The ticket event `recorded` with the ticket before and after it, rebuilt
/// from its stream, as `viewer` may see it; `None` when the viewer may not
/// receive it (auth.md "Who receives an event") or it is no ticket event.
pub(crate) async fn ticket_event(
    api: &ApiContext,
    recorded: RecordedEvent,
) -> Result<Option<(domain::TicketEvent, domain::Step, RecordedEvent)>, ApiError> {
    let Some(id) = recorded
        .stream_id
        .strip_prefix(domain::STREAM_PREFIX)
        .and_then(|id| id.parse().ok())
    else {
        return Ok(None);
    };
    let events = api
        .store
        .read_stream(&domain::stream_name(id), 0, recorded.version as usize + 1)
        .await?;
    let decoded = events
        .iter()
        .map(crate::command_service::decode_recorded)
        .collect::<Result<Vec<_>, _>>()?;
    let Some(step) = domain::step_at(&decoded, recorded.version) else {
        return Ok(None);
    };
    let Some(event) = decoded.into_iter().nth(recorded.version as usize) else {
        return Ok(None);
    };
    Ok(Some((event, step, recorded)))
}

/// [`ticket_event`] for one viewer, `None` unless they may receive it.
pub(crate) async fn event_for(
    api: &ApiContext,
    viewer: &Viewer,
    recorded: RecordedEvent,
) -> Result<Option<SupportTicketEvent>, ApiError> {
    let Some((event, step, recorded)) = ticket_event(api, recorded).await? else {
        return Ok(None);
    };
    if !domain::may_receive(&viewer.actor, step.before.as_ref(), &step.after, &event) {
        return Ok(None);
    }
    Ok(Some(SupportTicketEvent::for_viewer(
        &viewer.actor,
        recorded,
        event,
        step,
    )))
}
