//! `setTicketPresence`, `ticketPresence` and `ticketPresenceChanged`
//! (schema-next.graphql) over the process's [`Presence`](crate::presence).
//!
//! auth.md, "Presence": AGENT and ADMIN only (a REQUESTER gets `FORBIDDEN`,
//! whatever the ticket), on tickets they may see; a ticket the caller may not
//! see answers `NOT_FOUND` with the same message as one that does not exist.
//! `setTicketPresence` spends the caller's mutation budget (`RATE_LIMITED`)
//! and, for a new entry past a cap, is refused with `TOO_MANY_PRESENT`.

use async_graphql::{Context, Enum, SimpleObject};
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::query::ticket_id;
use super::types::User;
use super::{api, viewer};
use crate::context::ApiContext;
use crate::error::ApiError;
use crate::presence::{Activity, Entry, Full, SocketId};

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum PresenceState {
    Viewing,
    Typing,
    /// Removes the caller's entry at once.
    Left,
}

impl PresenceState {
    fn activity(self) -> Option<Activity> {
        match self {
            PresenceState::Viewing => Some(Activity::Viewing),
            PresenceState::Typing => Some(Activity::Typing),
            PresenceState::Left => None,
        }
    }
}

/// One user present on a ticket.
#[derive(SimpleObject, Clone, Debug)]
pub struct TicketPresence {
    /// As their token described them when they last set their presence.
    pub user: User,
    pub state: PresenceState,
    /// When the user entered this state on this ticket (a refresh keeps it).
    pub since: DateTime<Utc>,
}

impl From<Entry> for TicketPresence {
    fn from(entry: Entry) -> Self {
        TicketPresence {
            user: entry.user.into(),
            state: match entry.activity {
                Activity::Viewing => PresenceState::Viewing,
                Activity::Typing => PresenceState::Typing,
            },
            since: entry.since,
        }
    }
}

type PresenceStream = BoxStream<'static, async_graphql::Result<Vec<TicketPresence>>>;

/// The ticket `raw` names, if the caller may use presence on it.
async fn visible_ticket(ctx: &Context<'_>, raw: &str) -> Result<Uuid, ApiError> {
    let viewer = viewer(ctx)?;
    if !viewer.actor.is_staff() {
        return Err(ApiError::Forbidden(
            "presence is for agents and admins".into(),
        ));
    }
    let api = api(ctx);
    let not_found =
        || ApiError::NotFound(format!("no ticket {}", super::bounds::quoted(raw.trim())));
    let id = ticket_id(api, raw).await?.ok_or_else(not_found)?;
    if may_see(api, &viewer.actor, id).await? {
        Ok(id)
    } else {
        Err(not_found())
    }
}

/// Whether `actor` may see ticket `id` now (false when it does not exist).
async fn may_see(api: &ApiContext, actor: &domain::Actor, id: Uuid) -> Result<bool, ApiError> {
    let loaded = api.commands.load(id).await?;
    Ok(loaded
        .state
        .is_some_and(|ticket| domain::can_see(actor, &ticket)))
}

fn list(api: &ApiContext, id: Uuid) -> Vec<TicketPresence> {
    api.presence
        .list(id)
        .into_iter()
        .map(TicketPresence::from)
        .collect()
}

/// `setTicketPresence`: over a WebSocket, the entry also ends with that
/// socket (see `crate::presence`).
pub(super) async fn set(
    ctx: &Context<'_>,
    ticket: String,
    state: PresenceState,
) -> async_graphql::Result<bool> {
    let viewer = viewer(ctx)?;
    let api = api(ctx);
    api.rates
        .mutation(viewer.id())
        .map_err(ApiError::RateLimited)?;
    let id = visible_ticket(ctx, &ticket).await?;
    let socket = ctx.data_opt::<SocketId>().copied();
    api.presence
        .set(id, viewer.claims.profile(), state.activity(), socket)
        .map_err(|full| {
            ApiError::TooManyPresent(match full {
                Full::Ticket(max) => {
                    format!("at most {max} users may be present on one ticket")
                }
                Full::User(max) => {
                    format!("a user may be present on at most {max} tickets; leave one first")
                }
            })
        })?;
    Ok(true)
}

/// `ticketPresence`.
pub(super) async fn get(
    ctx: &Context<'_>,
    ticket: String,
) -> async_graphql::Result<Vec<TicketPresence>> {
    let id = visible_ticket(ctx, &ticket).await?;
    Ok(list(api(ctx), id))
}

/// `ticketPresenceChanged`: the list as it stands first, then the whole list
/// after each change. Whether the caller may still see the ticket is asked
/// again at each change; once they may not, the stream ends with
/// `NOT_FOUND`.
pub(super) async fn changes(
    ctx: &Context<'_>,
    ticket: String,
) -> async_graphql::Result<PresenceStream> {
    let id = visible_ticket(ctx, &ticket).await?;
    let viewer = viewer(ctx)?.clone();
    let api = api(ctx).clone();
    let span = tracing::info_span!("subscription", user = %viewer.id(), operation = "ticketPresenceChanged", ticket = %id);
    span.in_scope(|| tracing::info!("subscription started"));
    // Subscribed before the first list is read, so no change falls between.
    let changes = api.presence.changes();
    let first = list(&api, id);
    let active = super::subscription::Active::start(api.metrics.clone());
    let shutdown = api.shutdown.clone().cancelled_owned();
    let later = futures::stream::unfold(
        (changes, api, viewer, false),
        move |(mut changes, api, viewer, ended)| async move {
            if ended {
                return None;
            }
            loop {
                match changes.recv().await {
                    Ok(changed) if changed != id => continue,
                    // Each push is the whole list: one that fell behind
                    // re-reads it and has missed nothing.
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return None,
                }
                let item = match may_see(&api, &viewer.actor, id).await {
                    Ok(true) => Ok(list(&api, id)),
                    Ok(false) => {
                        let gone = ApiError::NotFound(format!("no ticket {:?}", id.to_string()));
                        return Some((Err(gone.into()), (changes, api, viewer, true)));
                    }
                    Err(e) => Err(e.into()),
                };
                return Some((item, (changes, api, viewer, false)));
            }
        },
    );
    Ok(futures::stream::once(async move { Ok(first) })
        .chain(later)
        .take_until(shutdown)
        .map(move |item| {
            let _active = &active;
            item
        })
        .boxed())
}
