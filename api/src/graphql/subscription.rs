//! The `Subscription` root. Each ticket subscription tails the store with
//! `subscribe_all` from `after` (or from the head: live only), so a resumed
//! stream replays exactly what came after the cursor, then goes on live,
//! without gap or duplicate. Every event is rebuilt from its ticket's stream
//! and passed through [`matches`], the same way replayed or live.

use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_graphql::{Context, Subscription as GqlSubscription};
use futures::stream::{BoxStream, StreamExt};
use store::Position;
use tracing::Instrument;
use uuid::Uuid;

use super::delivery::{matches, Selection};
use super::inputs::SubscriptionFilter;
use super::pending::{Notification, QueueMetrics};
use super::types::SupportTicketEvent;
use super::{api, ticket_event, viewer};
use crate::error::ApiError;
use crate::metrics::Metrics;

pub struct Subscription;

type EventStream = BoxStream<'static, async_graphql::Result<SupportTicketEvent>>;

/// Counts a running subscription for `/metrics` while it lives.
struct Active(Arc<Metrics>);

impl Active {
    fn start(metrics: Arc<Metrics>) -> Active {
        metrics.active_subscriptions.fetch_add(1, Ordering::Relaxed);
        Active(metrics)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active_subscriptions.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn ticket_stream(
    ctx: &Context<'_>,
    operation: &'static str,
    selection: Selection,
    after: Option<String>,
) -> Result<EventStream, ApiError> {
    let viewer = viewer(ctx)?.clone();
    let api = api(ctx).clone();
    let start = match after {
        Some(cursor) => {
            Position::from_str(&cursor).map_err(|e| ApiError::Invalid(e.to_string()))?
        }
        None => api.store.head().await?,
    };
    let span = tracing::info_span!("subscription", user = %viewer.id(), operation);
    span.in_scope(|| tracing::info!(after = %start, "subscription started"));
    let active = Arc::new(Active::start(api.metrics.clone()));
    let source = api.store.subscribe_all(start);
    let shutdown = api.shutdown.clone().cancelled_owned();
    let stream = source.take_until(shutdown).filter_map(move |item| {
        let api = api.clone();
        let viewer = viewer.clone();
        let selection = selection.clone();
        let _active = active.clone();
        let span = span.clone();
        async move {
            let recorded = match item {
                Ok(recorded) if recorded.stream_id.starts_with(domain::STREAM_PREFIX) => recorded,
                Ok(_) => return None,
                Err(e) => return Some(Err(ApiError::from(e).into())),
            };
            match ticket_event(&api, recorded).await {
                Err(e) => Some(Err(e.into())),
                Ok(None) => None,
                Ok(Some((event, step, recorded))) => {
                    if !matches(
                        &selection,
                        &viewer.actor,
                        step.before.as_ref(),
                        &step.after,
                        &event,
                    ) {
                        return None;
                    }
                    Metrics::inc(&api.metrics.events_delivered);
                    Some(Ok(SupportTicketEvent::for_viewer(
                        &viewer.actor,
                        recorded,
                        event,
                        step,
                    )))
                }
            }
        }
        .instrument(span)
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
        let selection = Selection::Filter(filter.unwrap_or_default());
        Ok(ticket_stream(ctx, "supportTicketEvents", selection, after).await?)
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
        Ok(ticket_stream(ctx, "ticketUpdated", Selection::Ticket(id), after).await?)
    }

    /// Tickets the caller created, is assigned to or watches.
    async fn my_ticket_updates(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
    ) -> async_graphql::Result<EventStream> {
        Ok(ticket_stream(ctx, "myTicketUpdates", Selection::Mine, after).await?)
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
        Ok(ticket_stream(ctx, "teamTicketUpdates", Selection::Team, after).await?)
    }

    /// Not served yet: the queue-metrics read model is still being built.
    async fn queue_metrics_updated(
        &self,
        ctx: &Context<'_>,
        queue: Option<String>,
    ) -> async_graphql::Result<BoxStream<'static, QueueMetrics>> {
        viewer(ctx)?;
        let _ = queue;
        Err(ApiError::NotImplemented("queueMetricsUpdated").into())
    }

    /// Not served yet: the notifications read model is still being built.
    async fn notification_added(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<BoxStream<'static, Notification>> {
        viewer(ctx)?;
        Err(ApiError::NotImplemented("notificationAdded").into())
    }
}
