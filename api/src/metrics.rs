//! Prometheus text for `GET /metrics`, formatted by hand: a handful of counters
//! and gauges read from atomics plus projection positions read at scrape time
//! do not justify a metrics registry and its exporter's dependency tree (which
//! must also stay free of a rustls provider, see the store's EventStoreDB notes).

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use projections::ProjectionStatus;
use store::Position;

#[derive(Debug, Default)]
pub struct Metrics {
    pub http_requests: AtomicU64,
    pub graphql_requests: AtomicU64,
    pub graphql_errors: AtomicU64,
    pub open_sockets: AtomicI64,
    /// Subscriptions running in the resolvers (ticket streams), counted where
    /// they start and end.
    pub active_subscriptions: AtomicI64,
    /// Operations live on WebSockets (subscriptions, queries and mutations),
    /// counted by the transport: what the per-socket limit counts.
    pub ws_operations: AtomicI64,
    pub events_delivered: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one up on `gauge` until the returned guard is dropped.
    pub fn hold(metrics: &Arc<Metrics>, gauge: fn(&Metrics) -> &AtomicI64) -> Held {
        gauge(metrics).fetch_add(1, Ordering::Relaxed);
        Held {
            metrics: metrics.clone(),
            gauge,
        }
    }

    /// The exposition text, with each projection's position and lag behind
    /// `head`, and the fan-out's replays when it runs.
    pub fn render(
        &self,
        head: Option<Position>,
        projections: &[ProjectionStatus],
        replays: Option<fanout::ReplayStats>,
    ) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
        metric(
            "tickets_http_requests_total",
            "counter",
            "HTTP requests received.",
            get(&self.http_requests),
        );
        metric(
            "tickets_graphql_requests_total",
            "counter",
            "GraphQL operations executed over HTTP.",
            get(&self.graphql_requests),
        );
        metric(
            "tickets_graphql_errors_total",
            "counter",
            "GraphQL responses over HTTP that carried errors.",
            get(&self.graphql_errors),
        );
        metric(
            "tickets_open_sockets",
            "gauge",
            "Open WebSocket connections.",
            self.open_sockets.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "tickets_active_subscriptions",
            "gauge",
            "Running subscriptions.",
            self.active_subscriptions
                .load(Ordering::Relaxed)
                .to_string(),
        );
        metric(
            "tickets_ws_operations",
            "gauge",
            "Operations live on WebSockets (subscriptions, queries, mutations).",
            self.ws_operations.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "tickets_events_delivered_total",
            "counter",
            "Events delivered to subscribers.",
            get(&self.events_delivered),
        );
        if let Some(replays) = replays {
            metric(
                "tickets_replays_running",
                "gauge",
                "Subscription replays reading the store now.",
                replays.running.to_string(),
            );
            metric(
                "tickets_replay_events_read_total",
                "counter",
                "Events subscription replays read from the store.",
                replays.events_read.to_string(),
            );
            metric(
                "tickets_replays_refused_total",
                "counter",
                "Subscription replays refused (RATE_LIMITED, REPLAY_TOO_OLD).",
                replays.refused.to_string(),
            );
        }
        if let Some(head) = head {
            metric(
                "tickets_log_head_position",
                "gauge",
                "Position of the last event in the log.",
                head.commit.to_string(),
            );
        }
        let _ = writeln!(out, "# HELP tickets_projection_position Last log position a projection applied.\n# TYPE tickets_projection_position gauge");
        for p in projections {
            let _ = writeln!(
                out,
                "tickets_projection_position{{projection=\"{}\"}} {}",
                p.name, p.position.commit
            );
        }
        let _ = writeln!(out, "# HELP tickets_projection_lag Events between the log head and a projection's position.\n# TYPE tickets_projection_lag gauge");
        for p in projections {
            let lag = head.map_or(0, |h| h.commit.saturating_sub(p.position.commit));
            let _ = writeln!(
                out,
                "tickets_projection_lag{{projection=\"{}\"}} {lag}",
                p.name
            );
        }
        let _ = writeln!(out, "# HELP tickets_projection_failed 1 when a projection stopped on an event it cannot apply.\n# TYPE tickets_projection_failed gauge");
        for p in projections {
            let failed = u8::from(p.state == projections::ProjectionState::Failed);
            let _ = writeln!(
                out,
                "tickets_projection_failed{{projection=\"{}\"}} {failed}",
                p.name
            );
        }
        out
    }
}

/// One unit of a gauge, given back on drop: whatever way its owner ends (done,
/// cancelled, dropped with its socket, unwound by a panic), the gauge comes
/// back down, so no exit path has to remember to decrement.
#[must_use = "the gauge counts down as soon as this is dropped"]
pub struct Held {
    metrics: Arc<Metrics>,
    gauge: fn(&Metrics) -> &AtomicI64,
}

impl Drop for Held {
    fn drop(&mut self) {
        (self.gauge)(&self.metrics).fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A held gauge counts up while held and back down when dropped.
    #[test]
    fn a_held_gauge_comes_back_down_on_drop() {
        let metrics = Arc::new(Metrics::default());
        let first = Metrics::hold(&metrics, |m| &m.ws_operations);
        let second = Metrics::hold(&metrics, |m| &m.ws_operations);
        assert_eq!(metrics.ws_operations.load(Ordering::Relaxed), 2);
        drop(first);
        drop(second);
        assert_eq!(metrics.ws_operations.load(Ordering::Relaxed), 0);
        assert!(metrics
            .render(None, &[], None)
            .contains("tickets_ws_operations 0"));
    }
}
