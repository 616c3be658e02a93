//! The `Query` root. A single ticket, its history and its past states come
//! from the event stream (always fresh, so a client reads its own writes); the
//! list comes from the `tickets` read model, after waiting (bounded) for it to
//! reach the head of the log as the query began (read-your-writes across nodes).

use std::str::FromStr;

use async_graphql::{Context, Object};
use chrono::{DateTime, Utc};
use domain::Role;
use store::Position;
use uuid::Uuid;

use super::inputs::SupportTicketFilter;
use super::pending::{Notification, NotificationConnection, NotificationEdge, QueueMetrics};
use super::types::{
    EventLogPage, PageInfo, StoredEvent, SupportTicket, SupportTicketConnection, SupportTicketEdge,
    SupportTicketEvent, User,
};
use super::{api, viewer};
use crate::context::ApiContext;
use crate::error::ApiError;

pub struct Query;

/// Most tickets one page may hold.
pub const MAX_PAGE: i32 = 500;
/// Most events one page of `supportTicketHistory` holds.
const MAX_HISTORY_PAGE: i32 = 500;

/// Most raw events one `eventLog` page may hold.
pub const MAX_LOG_PAGE: i32 = 1000;

/// A ticket id from a UUID or a `TCK-` reference; `None` when neither names one.
pub(crate) async fn ticket_id(api: &ApiContext, id_or_ref: &str) -> Result<Option<Uuid>, ApiError> {
    if id_or_ref.len() > super::bounds::MAX_TICKET_ID_BYTES {
        return Ok(None);
    }
    if let Ok(id) = Uuid::parse_str(id_or_ref.trim()) {
        return Ok(Some(id));
    }
    Ok(api.commands.references().resolve(id_or_ref).await?)
}

#[Object]
impl Query {
    /// The caller, as their token describes them.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        Ok(viewer(ctx)?.claims.profile().into())
    }

    /// A ticket by id (or reference), null when it does not exist or the caller
    /// may not see it.
    async fn support_ticket(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Option<SupportTicket>> {
        let viewer = viewer(ctx)?;
        let api = api(ctx);
        let Some(id) = ticket_id(api, &id).await? else {
            return Ok(None);
        };
        let loaded = api.commands.load(id).await.map_err(ApiError::from)?;
        Ok(loaded
            .state
            .filter(|t| domain::can_see(&viewer.actor, t))
            .map(|t| SupportTicket(domain::redact(&viewer.actor, &t))))
    }

    async fn support_ticket_by_reference(
        &self,
        ctx: &Context<'_>,
        reference: String,
    ) -> async_graphql::Result<Option<SupportTicket>> {
        viewer(ctx)?;
        let Some(id) = api(ctx)
            .commands
            .references()
            .resolve(&reference)
            .await
            .map_err(ApiError::from)?
        else {
            return Ok(None);
        };
        self.support_ticket(ctx, id.to_string()).await
    }

    /// Tickets the caller may see, oldest first, `first` per page (at most 500).
    #[graphql(complexity = "super::cost::page(first, child_complexity)")]
    async fn support_tickets(
        &self,
        ctx: &Context<'_>,
        filter: Option<SupportTicketFilter>,
        #[graphql(default_with = "Some(50)")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<SupportTicketConnection> {
        let viewer = viewer(ctx)?;
        let api = api(ctx);
        let first = first.unwrap_or(50);
        if !(0..=MAX_PAGE).contains(&first) {
            return Err(
                ApiError::Invalid(format!("first must be between 0 and {MAX_PAGE}")).into(),
            );
        }
        let filter = filter.unwrap_or_default();
        filter.check_bounds()?;
        wait_for_own_writes(api, viewer.id(), projections::tickets::NAME).await;
        let filter = filter.into();
        let page = projections::tickets::list_tickets(
            &api.read_db,
            &viewer.actor,
            &filter,
            first as usize,
            after.as_deref(),
        )
        .await
        .map_err(ApiError::from)?;
        let end_cursor = page.tickets.last().map(|(c, _)| c.clone());
        Ok(SupportTicketConnection {
            edges: page
                .tickets
                .into_iter()
                .map(|(cursor, t)| SupportTicketEdge {
                    cursor,
                    node: SupportTicket(domain::redact(&viewer.actor, &t)),
                })
                .collect(),
            page_info: PageInfo {
                has_next_page: page.has_next_page,
                end_cursor,
            },
            total_count: super::types::int(page.total_count),
        })
    }

    /// Every event of a ticket the caller may receive, oldest first, with
    /// changes; with `first`, at most that many (1 to 500) after the event
    /// at log position `after` (a previous page's last `position`).
    #[graphql(complexity = "super::cost::page(first.or(Some(100)), child_complexity)")]
    async fn support_ticket_history(
        &self,
        ctx: &Context<'_>,
        id: String,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Vec<SupportTicketEvent>> {
        let viewer = viewer(ctx)?;
        let api = api(ctx);
        let limit = match first {
            None => usize::MAX,
            Some(n) if (1..=MAX_HISTORY_PAGE).contains(&n) => n as usize,
            Some(_) => {
                return Err(ApiError::Invalid(format!(
                    "first must be between 1 and {MAX_HISTORY_PAGE}"
                ))
                .into())
            }
        };
        let after = match after {
            Some(a) => Some(Position::from_str(&a).map_err(|_| {
                ApiError::Invalid(format!(
                    "{} is not a valid log position",
                    super::bounds::quoted(&a)
                ))
            })?),
            None => None,
        };
        let Some(id) = ticket_id(api, &id).await? else {
            return Ok(vec![]);
        };
        let loaded = api.commands.load(id).await.map_err(ApiError::from)?;
        // One fold of the stream; only the page's steps are copied out.
        let mut taken = 0;
        let kept = domain::steps_kept(&loaded.decoded, |i, before, after_event| {
            if taken == limit {
                return domain::Keep::Stop;
            }
            let passed = after.is_some_and(|a| loaded.events[i].position <= a);
            if passed
                || !domain::may_receive(&viewer.actor, before, after_event, &loaded.decoded[i])
            {
                return domain::Keep::No;
            }
            taken += 1;
            domain::Keep::Yes
        });
        Ok(kept
            .into_iter()
            .map(|(i, step)| {
                let (recorded, event) = (loaded.events[i].clone(), loaded.decoded[i].clone());
                SupportTicketEvent::for_viewer(&viewer.actor, recorded, event, step)
            })
            .collect())
    }

    /// The ticket rebuilt from the log at `version`, or as it stood at `at`
    /// (current state without either).
    async fn support_ticket_as_of(
        &self,
        ctx: &Context<'_>,
        id: String,
        version: Option<i32>,
        at: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Option<SupportTicket>> {
        let viewer = viewer(ctx)?;
        // Checked before the ticket is looked up, so the answer is the same
        // for a ticket that exists and one that does not.
        if version.is_some_and(|v| v < 0) {
            return Err(ApiError::Invalid("version must be at least 0".into()).into());
        }
        let api = api(ctx);
        let Some(id) = ticket_id(api, &id).await? else {
            return Ok(None);
        };
        let loaded = api.commands.load(id).await.map_err(ApiError::from)?;
        let Some(current) = &loaded.state else {
            return Ok(None);
        };
        let past = match (version, at) {
            (Some(v), _) => domain::as_of_version(&loaded.decoded, v.unsigned_abs().into()),
            (None, Some(at)) => domain::as_of_time(&loaded.decoded, at),
            (None, None) => Some(current.clone()),
        };
        Ok(past
            .filter(|t| {
                domain::can_see(&viewer.actor, current) || domain::can_see(&viewer.actor, t)
            })
            .map(|t| SupportTicket(domain::redact(&viewer.actor, &t))))
    }

    /// Per-queue figures (all queues, or `queue` only), sorted by queue name.
    /// For staff only: a REQUESTER gets `FORBIDDEN`. An AGENT sees the queues
    /// of their teams only (another queue is simply absent, as if it had no
    /// ticket); an ADMIN sees every queue. A queue that never had a ticket
    /// has no figures.
    async fn queue_metrics(
        &self,
        ctx: &Context<'_>,
        queue: Option<String>,
    ) -> async_graphql::Result<Vec<QueueMetrics>> {
        let viewer = viewer(ctx)?;
        if !viewer.actor.is_staff() {
            return Err(
                ApiError::Forbidden("queue metrics are for agents and admins".into()).into(),
            );
        }
        wait_for_own_writes(api(ctx), viewer.id(), projections::metrics::NAME).await;
        let rows = projections::metrics::queue_metrics(&api(ctx).read_db, queue.as_deref())
            .await
            .map_err(ApiError::from)?;
        Ok(rows
            .into_iter()
            .filter(|row| domain::can_see_queue(&viewer.actor, &row.queue))
            .map(QueueMetrics::from)
            .collect())
    }

    /// The caller's notification preferences (everything on until they mute
    /// something), as the notifications projection applies them.
    async fn notification_preferences(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<super::inbox::NotificationPreferences> {
        let viewer = viewer(ctx)?;
        wait_for_own_writes(api(ctx), viewer.id(), projections::notifications::NAME).await;
        let preferences = projections::notifications::preferences(&api(ctx).read_db, viewer.id())
            .await
            .map_err(ApiError::from)?;
        Ok(preferences.into())
    }

    /// The announcements addressed to the caller, newest first (`first`
    /// between 0 and 100).
    #[graphql(complexity = "super::cost::page(first, child_complexity)")]
    async fn announcements(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(20)")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<super::inbox::Announcement>> {
        let viewer = viewer(ctx)?;
        let first = first.unwrap_or(20);
        if !(0..=MAX_ANNOUNCEMENTS).contains(&first) {
            return Err(ApiError::Invalid(format!(
                "first must be between 0 and {MAX_ANNOUNCEMENTS}"
            ))
            .into());
        }
        wait_for_own_writes(api(ctx), viewer.id(), projections::notifications::NAME).await;
        let found = projections::notifications::announcements(
            &api(ctx).read_db,
            &viewer.actor,
            first as usize,
        )
        .await
        .map_err(ApiError::from)?;
        Ok(found.into_iter().map(Into::into).collect())
    }

    /// The caller's notifications, newest first, `first` per page (at most
    /// 500); `after` is a page's `pageInfo.endCursor`. `unreadCount` counts
    /// the whole inbox, not the page.
    #[graphql(complexity = "super::cost::page(first, child_complexity)")]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        unread_only: Option<bool>,
        #[graphql(default_with = "Some(50)")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<NotificationConnection> {
        let viewer = viewer(ctx)?;
        let first = first.unwrap_or(50);
        if !(0..=MAX_PAGE).contains(&first) {
            return Err(
                ApiError::Invalid(format!("first must be between 0 and {MAX_PAGE}")).into(),
            );
        }
        wait_for_own_writes(api(ctx), viewer.id(), projections::notifications::NAME).await;
        let page = projections::notifications::notifications(
            &api(ctx).read_db,
            viewer.id(),
            unread_only.unwrap_or(false),
            first as usize,
            after.as_deref(),
        )
        .await
        .map_err(ApiError::from)?;
        let edges = page
            .items
            .into_iter()
            .map(|n| {
                Ok(NotificationEdge {
                    cursor: n.cursor(),
                    node: Notification::try_from(n).map_err(ApiError::internal)?,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok(NotificationConnection {
            edges,
            page_info: PageInfo {
                has_next_page: page.has_next_page,
                end_cursor: page.end_cursor,
            },
            unread_count: super::types::int(page.unread_count),
        })
    }

    /// AGENT and ADMIN: who is viewing or typing on a ticket they may see,
    /// longest present first (see `graphql::presence`).
    async fn ticket_presence(
        &self,
        ctx: &Context<'_>,
        ticket_id: String,
    ) -> async_graphql::Result<Vec<super::presence::TicketPresence>> {
        super::presence::get(ctx, ticket_id).await
    }

    /// The raw log, for ADMINs: up to `first` stored events after `after`.
    async fn event_log(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        #[graphql(default_with = "Some(500)")] first: Option<i32>,
    ) -> async_graphql::Result<EventLogPage> {
        let viewer = viewer(ctx)?;
        if !viewer.actor.has_role(Role::Admin) {
            return Err(ApiError::Forbidden("the event log is for admins only".into()).into());
        }
        let first = first.unwrap_or(500);
        if !(1..=MAX_LOG_PAGE).contains(&first) {
            return Err(
                ApiError::Invalid(format!("first must be between 1 and {MAX_LOG_PAGE}")).into(),
            );
        }
        let after = match after {
            Some(a) => Position::from_str(&a).map_err(|_| {
                ApiError::Invalid(format!(
                    "{} is not a valid log position",
                    super::bounds::quoted(&a)
                ))
            })?,
            None => Position::START,
        };
        let events = api(ctx)
            .store
            .read_all(after, first as usize)
            .await
            .map_err(ApiError::from)?;
        let next_after = events.last().map(|e| e.position.to_cursor());
        Ok(EventLogPage {
            events: events.into_iter().map(StoredEvent::from).collect(),
            next_after,
        })
    }
}

/// Waits, at most the configured time, for the `projection` read model to
/// reach the head of the log as of now (so a write made through another node
/// is seen too; see [`projections::freshness::wait_for_log_head`]). A timeout is not an
/// error: the query is answered as the model stands.
/// Most announcements one `announcements` query returns.
const MAX_ANNOUNCEMENTS: i32 = 100;

pub(super) async fn wait_for_own_writes(api: &ApiContext, user: &str, projection: &str) {
    projections::freshness::wait_for_log_head(
        &*api.store,
        &api.read_db,
        projection,
        api.last_write(user),
        api.read_your_writes_timeout(),
    )
    .await;
}
