//! The catch-up subscription: the server's own subscription to `$all` (replay,
//! then live) with the store's filter, resubscribed after every drop.
//!
//! The subscription remembers the position of the last event it *received*
//! (delivered or filtered out on the client) and resubscribes from there; it
//! never resumes from the server's checkpoint messages, which can lie beyond the
//! last event delivered (a known server bug: resuming there would skip events).
//! Every event at or before the remembered position is dropped, so a resumed
//! subscription yields no duplicate whatever the server's start is.
//!
//! Transient failures (connection lost, leader change) are retried for as long
//! as the subscription lives, with backoff from 200 ms to 30 s, each one logged
//! at `warn`; the stream ends only after yielding an error that retrying cannot
//! fix (refused credentials, an undecodable event).

use std::sync::Arc;

use eventstore::{SubscribeToAllOptions, Subscription, SubscriptionEvent};
use futures::stream::{self, BoxStream};

use super::connection::{Backoff, Connection};
use super::translate::{
    is_application_event, is_transient, log_filter, recorded_event, start_after, store_error,
};
use crate::{ExpectedVersion, Position, RecordedEvent, StoreError};

/// Every application event strictly after `after`, in log order, then live.
pub(crate) fn catch_up(
    connection: Arc<Connection>,
    namespace: String,
    after: Position,
) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
    let state = CatchUp {
        connection,
        namespace,
        last: after,
        current: None,
        backoff: Backoff::for_subscriptions(),
        finished: false,
    };
    Box::pin(stream::unfold(state, |mut state| async move {
        if state.finished {
            return None;
        }
        let item = state.next().await;
        state.finished = item.is_err();
        Some((item, state))
    }))
}

struct CatchUp {
    connection: Arc<Connection>,
    namespace: String,
    /// The last event received; where a new subscription resumes.
    last: Position,
    /// The live subscription and the client generation it runs on.
    current: Option<(u64, Subscription)>,
    backoff: Backoff,
    finished: bool,
}

impl CatchUp {
    async fn next(&mut self) -> Result<RecordedEvent, StoreError> {
        loop {
            let (generation, subscription) = match self.current.as_mut() {
                Some((generation, subscription)) => (*generation, subscription),
                None => {
                    let (generation, client) = self.connection.client();
                    let options = SubscribeToAllOptions::default()
                        .position(start_after(self.last))
                        .filter(log_filter(&self.namespace));
                    let subscription = client.subscribe_to_all(&options).await;
                    let current = self.current.insert((generation, subscription));
                    (current.0, &mut current.1)
                }
            };
            match subscription.next_subscription_event().await {
                Ok(SubscriptionEvent::EventAppeared(resolved)) => {
                    self.backoff.reset();
                    // Links are not resolved, so the event is always there;
                    // anything else is skipped rather than unwrapped.
                    let Some(event) = resolved.event.as_ref() else {
                        continue;
                    };
                    let position = super::translate::position_from_server(event.position);
                    if position <= self.last {
                        continue;
                    }
                    self.last = position;
                    if !is_application_event(&event.stream_id, &event.event_type)
                        || !event.stream_id.starts_with(self.namespace.as_str())
                    {
                        continue;
                    }
                    return recorded_event(event, &self.namespace);
                }
                // Deliberately ignored: see the module docs.
                Ok(SubscriptionEvent::Checkpoint(_)) => {}
                Ok(SubscriptionEvent::Confirmed(_) | SubscriptionEvent::CaughtUp) => {
                    self.backoff.reset();
                }
                Ok(_) => {}
                Err(error) => {
                    self.current = None;
                    self.connection.recover(generation, &error);
                    if !is_transient(&error) {
                        return Err(store_error(error, "$all", ExpectedVersion::Any));
                    }
                    let delay = self.backoff.next_delay();
                    tracing::warn!(
                        error = %error,
                        resume_after = %self.last,
                        retry_in_ms = delay.as_millis() as u64,
                        "EventStoreDB subscription dropped; resubscribing"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}
