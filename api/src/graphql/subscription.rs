//! The `Subscription` root. The four ticket subscriptions are served by the
//! process's fan-out [`Hub`](fanout::Hub): one worker tails the
//! log and offers each event (with the ticket before and after it) to the
//! subscribers whose interest it touches, each with its own bounded buffer. A
//! subscription registers the narrowest [`interest`] its arguments allow and
//! the [`predicate`] of [`delivery`](super::delivery), which the hub applies
//! to replayed and live events alike: with `after`, exactly the matching
//! events after the cursor, then live, without gap or duplicate. A subscriber
//! that falls a buffer behind gets a `LAGGED` error carrying the `position`
//! to resume from, and its stream ends. Each event is rendered once per kind
//! of subscriber where the selection allows ([`shared`]).

mod inbox;
mod shared;
mod views;

use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_graphql::{Context, ErrorExtensions, Subscription as GqlSubscription};
use domain::Role;
use fanout::Item;
use futures::stream::{BoxStream, StreamExt};
use projections::metrics::coalesce::{coalesce, Changed};
use store::Position;
use tracing::Instrument;
use uuid::Uuid;

use super::delivery::{interest, predicate, Rights, Selection};
use super::inbox::{Announcement, NotificationChange};
use super::inputs::SubscriptionFilter;
use super::pending::{Notification, QueueMetrics};
use super::types::StoredEvent;
use super::{api, viewer};
use crate::error::ApiError;
use crate::metrics::Metrics;
use projections::notifications::changes::ChangeKind;
use shared::SharedEvent;

pub struct Subscription;

type EventStream = BoxStream<'static, async_graphql::Result<SharedEvent>>;

/// Counts a running subscription for `/metrics` while it lives.
pub(super) struct Active(Arc<Metrics>);

impl Active {
    pub(super) fn start(metrics: Arc<Metrics>) -> Active {
        metrics.active_subscriptions.fetch_add(1, Ordering::Relaxed);
        Active(metrics)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active_subscriptions.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The subscriber fell too far behind (or the server is stopping): it has
/// received every matching event up to `position` and resumes with
/// `after: position`. `extensions.code` is `LAGGED`.
fn lagged(position: Position) -> async_graphql::Error {
    lagged_at(&position.to_cursor())
}

/// [`lagged`] at a cursor of any feed.
fn lagged_at(cursor: &str) -> async_graphql::Error {
    async_graphql::Error::new(format!(
        "the subscriber fell behind; resubscribe with after: \"{cursor}\""
    ))
    .extend_with(|_, e| {
        e.set("code", "LAGGED");
        e.set("position", cursor);
    })
}

/// A replay the hub refused: `RATE_LIMITED` with `retryAfterSeconds` when
/// the caller (or the server) runs as many replays as allowed, or
/// `REPLAY_TOO_OLD` when `after` lies further back than a replay of the whole
/// log may read. The socket stays up; nothing was registered.
fn refused(refusal: fanout::Refusal) -> async_graphql::Error {
    match refusal {
        fanout::Refusal::Busy { retry_after } => {
            let seconds = retry_after.as_secs().max(1);
            async_graphql::Error::new(format!(
                "too many replays are running; try again in {seconds} s"
            ))
            .extend_with(|_, e| {
                e.set("code", "RATE_LIMITED");
                e.set("retryAfterSeconds", seconds);
            })
        }
        fanout::Refusal::TooOld {
            head, max_events, ..
        } => async_graphql::Error::new(format!(
            "after lies more than {max_events} events behind the head of the log: reload \
             the state with queries, then subscribe without after or from a recent position"
        ))
        .extend_with(|_, e| {
            e.set("code", "REPLAY_TOO_OLD");
            e.set("position", head.to_cursor());
        }),
    }
}

/// A ticket subscription served by the hub.
async fn ticket_stream(
    ctx: &Context<'_>,
    operation: &'static str,
    selection: Selection,
    after: Option<String>,
) -> async_graphql::Result<EventStream> {
    let viewer = viewer(ctx)?.clone();
    let api = api(ctx).clone();
    let after: Option<Position> = after
        .map(|cursor| {
            Position::from_str(&cursor).map_err(|_| {
                ApiError::Invalid(format!(
                    "{} is not a valid log position",
                    super::bounds::quoted(&cursor)
                ))
            })
        })
        .transpose()
        .map_err(async_graphql::Error::from)?;
    let Some(hub) = api.hub.clone() else {
        return Err(ApiError::NotImplemented(operation).into());
    };
    let span = tracing::info_span!("subscription", user = %viewer.id(), operation);
    let interest = interest(&selection, &viewer.actor);
    span.in_scope(
        || tracing::info!(after = ?after.map(|p| p.to_cursor()), ?interest, "subscription started"),
    );
    let rights = Rights::of(&viewer);
    let items = hub
        .subscribe_as(viewer.id(), interest, predicate(selection, rights), after)
        .map_err(|refusal| {
            span.in_scope(|| tracing::info!(%refusal, "replay refused"));
            refused(refusal)
        })?;
    let active = Active::start(api.metrics.clone());
    let shutdown = api.shutdown.clone().cancelled_owned();
    let metrics = api.metrics.clone();
    let actor = Arc::new(viewer.actor.clone());
    let shape = Arc::new(OnceLock::new());
    let stream = items.take_until(shutdown).map(move |item| {
        let _active = &active;
        match item {
            Item::Event(delivery) => {
                Metrics::inc(&metrics.events_delivered);
                Ok(SharedEvent {
                    delivery,
                    actor: actor.clone(),
                    shape: shape.clone(),
                })
            }
            Item::Lagged { position_reached } => {
                span.in_scope(|| tracing::info!(position = %position_reached, "subscriber lagged"));
                Err(lagged(position_reached))
            }
        }
    });
    Ok(stream.boxed())
}

#[GqlSubscription]
impl Subscription {
    /// Every ticket event the caller may receive that matches `filter`.
    async fn support_ticket_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<SubscriptionFilter>,
        after: Option<String>,
    ) -> async_graphql::Result<EventStream> {
        let filter = filter.unwrap_or_default();
        filter.check_bounds()?;
        let selection = Selection::Filter(filter);
        ticket_stream(ctx, "supportTicketEvents", selection, after).await
    }

    /// Events of one ticket.
    async fn ticket_updated(
        &self,
        ctx: &Context<'_>,
        ticket_id: String,
        after: Option<String>,
    ) -> async_graphql::Result<EventStream> {
        viewer(ctx)?;
        let id = Uuid::parse_str(ticket_id.trim())
            .map_err(|_| ApiError::Invalid(format!("'{ticket_id}' is not a ticket id")))?;
        ticket_stream(ctx, "ticketUpdated", Selection::Ticket(id), after).await
    }

    /// Tickets the caller created, is assigned to or watches.
    async fn my_ticket_updates(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
    ) -> async_graphql::Result<EventStream> {
        ticket_stream(ctx, "myTicketUpdates", Selection::Mine, after).await
    }

    /// Tickets in the queues of the caller's teams (AGENT, ADMIN).
    async fn team_ticket_updates(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
    ) -> async_graphql::Result<EventStream> {
        if !viewer(ctx)?.actor.is_staff() {
            return Err(
                ApiError::Forbidden("team updates are for agents and admins".into()).into(),
            );
        }
        ticket_stream(ctx, "teamTicketUpdates", Selection::Team, after).await
    }

    /// Figures of the queues as they change (of `queue` only when given): at
    /// most one push per queue per 250 ms, the last change of a burst always
    /// delivered. Visibility as for `queueMetrics`: staff only (a REQUESTER
    /// gets `FORBIDDEN`), an AGENT their teams' queues, an ADMIN every queue.
    async fn queue_metrics_updated(
        &self,
        ctx: &Context<'_>,
        queue: Option<String>,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<QueueMetrics>>> {
        let viewer = viewer(ctx)?.clone();
        if !viewer.actor.is_staff() {
            return Err(
                ApiError::Forbidden("queue metrics are for agents and admins".into()).into(),
            );
        }
        let api = api(ctx).clone();
        let Some(projection) = api.queue_metrics.clone() else {
            return Err(ApiError::NotImplemented("queueMetricsUpdated").into());
        };
        let span = tracing::info_span!("subscription", user = %viewer.id(), operation = "queueMetricsUpdated");
        span.in_scope(|| tracing::info!("subscription started"));
        let active = Arc::new(Active::start(api.metrics.clone()));
        let changes = coalesce(projection.subscribe(), QUEUE_METRICS_INTERVAL);
        let shutdown = api.shutdown.clone().cancelled_owned();
        let stream = changes
            .take_until(shutdown)
            .then(move |changed| {
                let api = api.clone();
                let viewer = viewer.clone();
                let queue = queue.clone();
                let _active = active.clone();
                async move {
                    // Which queues to re-read: those changed (and asked for).
                    let wanted: Vec<Option<String>> = match changed {
                        Changed::All => vec![queue],
                        Changed::Queues(names) => names
                            .into_iter()
                            .filter(|n| queue.as_ref().is_none_or(|q| q == n))
                            .map(Some)
                            .collect(),
                    };
                    let mut out = Vec::new();
                    for name in wanted {
                        match projections::metrics::queue_metrics(&api.read_db, name.as_deref())
                            .await
                        {
                            Ok(rows) => out.extend(
                                rows.into_iter()
                                    .filter(|r| domain::can_see_queue(&viewer.actor, &r.queue))
                                    .map(|r| Ok(QueueMetrics::from(r))),
                            ),
                            Err(e) => out.push(Err(ApiError::from(e).into())),
                        }
                    }
                    futures::stream::iter(out)
                }
                .instrument(span.clone())
            })
            .flatten();
        Ok(stream.boxed())
    }

    /// AGENT and ADMIN: who is present on a ticket they may see, the whole
    /// list first and after each change (see `graphql::presence`).
    async fn ticket_presence_changed(
        &self,
        ctx: &Context<'_>,
        ticket_id: String,
    ) -> async_graphql::Result<
        BoxStream<'static, async_graphql::Result<Vec<super::presence::TicketPresence>>>,
    > {
        super::presence::changes(ctx, ticket_id).await
    }

    /// The raw log, for ADMINs (change-data capture): every stored event
    /// after `after`, replayed from the log, then live as events are
    /// appended, in log order without gap or duplicate. Without `after`,
    /// from the head of the log as the subscription starts. A store error
    /// ends the stream with that error; resume with `after` set to the
    /// position of the last event received.
    async fn event_log_tail(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<StoredEvent>>> {
        let viewer = viewer(ctx)?.clone();
        if !viewer.actor.has_role(Role::Admin) {
            return Err(ApiError::Forbidden("the event log is for admins only".into()).into());
        }
        let api = api(ctx).clone();
        let after = match after {
            Some(cursor) => Position::from_str(&cursor).map_err(|_| {
                ApiError::Invalid(format!(
                    "{} is not a valid log position",
                    super::bounds::quoted(&cursor)
                ))
            })?,
            None => api.store.head().await.map_err(ApiError::from)?,
        };
        let span =
            tracing::info_span!("subscription", user = %viewer.id(), operation = "eventLogTail");
        span.in_scope(|| tracing::info!(after = %after, "subscription started"));
        let active = Active::start(api.metrics.clone());
        let shutdown = api.shutdown.clone().cancelled_owned();
        // The store's catch-up subscription is gap-free and ends after its
        // first error item, so the error is the stream's last item.
        let stream = api
            .store
            .subscribe_all(after)
            .take_until(shutdown)
            .map(move |item| {
                let _active = &active;
                item.map(StoredEvent::from).map_err(|e| {
                    span.in_scope(|| tracing::warn!(error = %e, "event log tail failed"));
                    ApiError::from(e).into()
                })
            });
        Ok(stream.boxed())
    }

    /// The caller's new notifications, as they are committed to their inbox
    /// (on any server node).
    async fn notification_added(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<Notification>>> {
        let viewer = viewer(ctx)?.clone();
        let api = api(ctx).clone();
        let user = viewer.id().to_string();
        let span =
            tracing::info_span!("subscription", user = %user, operation = "notificationAdded");
        span.in_scope(|| tracing::info!("subscription started"));
        let changes = inbox::changes(&api, "notificationAdded", Some(user.clone()), None).await?;
        let stream = changes.filter_map(move |change| {
            let api = api.clone();
            let user = user.clone();
            async move {
                let change = match change {
                    Ok(change) if change.kind == ChangeKind::Added => change,
                    Ok(_) => return None,
                    Err(e) => return Some(Err(e)),
                };
                match NotificationChange::of(&api.read_db, &user, &change).await {
                    Ok(Some(NotificationChange {
                        notification: Some(n),
                        ..
                    })) => Some(Ok(n)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e.into())),
                }
            }
            .instrument(span.clone())
        });
        Ok(stream.boxed())
    }

    /// Every change to the caller's inbox (ADDED, READ, UNREAD, DELETED),
    /// from any device or server node, in order, each with the unread count
    /// after it. With `after` (a change's `cursor`), every change since,
    /// then live.
    async fn notifications_changed(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<NotificationChange>>> {
        let viewer = viewer(ctx)?.clone();
        let api = api(ctx).clone();
        let user = viewer.id().to_string();
        let span =
            tracing::info_span!("subscription", user = %user, operation = "notificationsChanged");
        span.in_scope(|| tracing::info!(?after, "subscription started"));
        let changes = inbox::changes(
            &api,
            "notificationsChanged",
            Some(user.clone()),
            after.as_deref(),
        )
        .await?;
        let stream = changes.filter_map(move |change| {
            let api = api.clone();
            let user = user.clone();
            async move {
                match change {
                    Ok(change) => NotificationChange::of(&api.read_db, &user, &change)
                        .await
                        .map_err(Into::into)
                        .transpose(),
                    Err(e) => Some(Err(e)),
                }
            }
            .instrument(span.clone())
        });
        Ok(stream.boxed())
    }

    /// Announcements addressed to the caller, as they are published.
    async fn announcement_published(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<Announcement>>> {
        let viewer = viewer(ctx)?.clone();
        let api = api(ctx).clone();
        let span = tracing::info_span!("subscription", user = %viewer.id(), operation = "announcementPublished");
        span.in_scope(|| tracing::info!("subscription started"));
        let changes = inbox::changes(&api, "announcementPublished", None, None).await?;
        let actor = Arc::new(viewer.actor.clone());
        let stream = changes.filter_map(move |change| {
            let api = api.clone();
            let actor = actor.clone();
            async move {
                let id = match change {
                    Ok(change) if change.kind == ChangeKind::Announced => *change.ids.first()?,
                    Ok(_) => return None,
                    Err(e) => return Some(Err(e)),
                };
                match projections::notifications::announcement(&api.read_db, id).await {
                    Ok(Some(a)) if a.is_addressed_to(&actor) => Some(Ok(Announcement::from(a))),
                    Ok(_) => None,
                    Err(e) => Some(Err(ApiError::from(e).into())),
                }
            }
            .instrument(span.clone())
        });
        Ok(stream.boxed())
    }
}

/// At most one push per queue per this interval on `queueMetricsUpdated`.
const QUEUE_METRICS_INTERVAL: Duration = Duration::from_millis(250);
