//! The GraphQL schema of `contract/schema.graphql`.
//!
//! - `types`: output types and enums over the domain's values.
//! - `event`: `SupportTicketEvent` and `FieldChange`.
//! - `inputs`: input objects.
//! - `pending`: contract types of the queue-metrics and notifications read models.
//! - `inbox`: the notification centre's other types (inbox changes,
//!   preferences, announcements).
//! - `query`, `mutation`, `subscription`: the three roots; `outcome` turns a
//!   command's outcome into a mutation result.
//! - `bounds`: limits on list and string arguments.
//! - `depth`: the `--max-query-depth` limit, which introspection is not held to.
//! - `presence`: `setTicketPresence`, `ticketPresence`, `ticketPresenceChanged`.
//! - `delivery`: which ticket events a subscriber receives ([`delivery::matches`]).
//!
//! Every root field starts with [`viewer`], so no operation of the contract runs
//! without a valid token; introspection does, so GraphiQL can show the docs.

pub mod bounds;
mod bulk;
mod cost;
pub mod delivery;
pub mod depth;
pub mod event;
pub mod inbox;
pub mod inputs;
pub mod mutation;
mod outcome;
pub mod pending;
pub mod presence;
pub mod query;
pub mod subscription;
pub mod types;

use async_graphql::Context;

use crate::auth::{AuthError, Viewer};
use crate::context::ApiContext;
use crate::error::ApiError;
use types::User;

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
    Ok(projections::users::find_user(&api(ctx).read_db, id)
        .await?
        .map(User::from)
        .unwrap_or_else(|| User::unknown(id)))
}
