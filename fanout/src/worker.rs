//! The fan-out worker: tails the log from the hub's position and dispatches
//! each ticket event. A store failure ends the subscription; the worker
//! resubscribes after the last event it dispatched, so subscribers see
//! neither gap nor duplicate.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::states::{BuildError, TicketStates};
use crate::Hub;

const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(10);

pub(crate) async fn tail(hub: Hub, shutdown: CancellationToken) {
    let mut states = TicketStates::new(hub.config.cached_tickets, hub.config.cached_bytes);
    let mut delay = RETRY_FIRST;
    while !hub.is_started() {
        match hub.store.head().await {
            Ok(head) => hub.begin_at(head),
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "the fan-out waits for the log's head");
                if !back_off(&hub, &shutdown, &mut delay).await {
                    return;
                }
            }
        }
    }
    delay = RETRY_FIRST;
    loop {
        let mut events = hub.store.subscribe_all(hub.position());
        let failure = loop {
            let item = tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    hub.close();
                    return;
                }
                item = events.next() => item,
            };
            let recorded = match item {
                Some(Ok(recorded)) => recorded,
                Some(Err(e)) => break e.to_string(),
                None => break "the subscription ended".to_string(),
            };
            let position = recorded.position;
            match states.delivery(&*hub.store, recorded).await {
                Ok(Some(delivery)) => hub.dispatch(Arc::new(delivery)),
                Ok(None) => hub.skip(position),
                Err(e @ BuildError::Unreadable { .. }) => {
                    tracing::error!(%position, error = %e, "fan-out skips an event");
                    hub.skip(position);
                }
                Err(BuildError::Store(e)) => break e.to_string(),
            }
            delay = RETRY_FIRST;
        };
        tracing::warn!(error = %failure, retry_in = ?delay, "fan-out interrupted, resubscribing");
        if !back_off(&hub, &shutdown, &mut delay).await {
            return;
        }
    }
}

/// Waits `delay`, then doubles it (up to [`RETRY_MAX`]). False when shut down
/// meanwhile: the hub is closed and the worker should stop.
async fn back_off(hub: &Hub, shutdown: &CancellationToken, delay: &mut Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => {
            hub.close();
            return false;
        }
        _ = tokio::time::sleep(*delay) => {}
    }
    *delay = (*delay * 2).min(RETRY_MAX);
    true
}
