//! The queue-metrics read model tells the same story as the tickets folded
//! from the log, at any time the clock says.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use domain::{SlaPolicy, SlaTarget, TicketPriority, TicketStatus};
use projections::metrics::{queue_metrics, QueueMetricsRow};
use projections::MetricsProjection;

use crate::commands::Script;
use crate::harness::{dump_tables, run_until_caught_up, Backend, Kind};

pub const METRICS_TABLES: [&str; 3] =
    ["queue_ticket_facts", "queue_metrics", "queue_metrics_daily"];

crate::on_every_backend! {
    /// After random commands (moves, deletes, reopenings included), the
    /// figures of every queue equal a recomputation from the folded tickets,
    /// both right after the last event and two days later, when the timer has
    /// turned unanswered tickets into breaches without any new event.
    queue_metrics_equal_a_recomputation_from_the_folded_tickets
}

async fn queue_metrics_equal_a_recomputation_from_the_folded_tickets(kind: Kind) {
    let backend = Backend::new(kind).await;
    let mut script = Script::new(11, 20);
    script.run(&*backend.store, 500).await;
    let metrics = MetricsProjection::new(SlaPolicy::default());
    let runner = backend.runner(&backend.db).with_batch_size(50);
    run_until_caught_up(&runner, &*backend.store, Arc::new(metrics.clone()))
        .await
        .expect("the projection runs");

    let last = last_event_time(&backend, &script).await;
    for now in [last + Duration::minutes(30), last + Duration::days(2)] {
        metrics.refresh_due(&backend.db, now).await.unwrap();
        let expected = recompute(&backend, &script, now).await;
        let actual = comparable(queue_metrics(&backend.db, None).await.unwrap());
        assert_eq!(actual, expected, "figures at {now}");
    }
    let later = comparable(queue_metrics(&backend.db, None).await.unwrap());
    assert!(
        later.values().any(|f| f.sla_breaches > 0),
        "two days on, some unanswered ticket is a breach"
    );
    backend.cleanup().await;
}

crate::on_every_backend! {
    /// A rebuild into a fresh database, refreshed at the same time, holds the
    /// same facts, figures and daily history as the live run.
    a_rebuild_of_queue_metrics_gives_identical_tables
}

async fn a_rebuild_of_queue_metrics_gives_identical_tables(kind: Kind) {
    let mut backend = Backend::new(kind).await;
    let mut script = Script::new(12, 15);
    script.run(&*backend.store, 300).await;
    let metrics = MetricsProjection::new(SlaPolicy::default());
    let runner = backend.runner(&backend.db).with_batch_size(40);
    run_until_caught_up(&runner, &*backend.store, Arc::new(metrics.clone()))
        .await
        .unwrap();
    let fresh = backend.fresh_db().await;
    backend
        .runner(&fresh)
        .catch_up(Arc::new(metrics.clone()))
        .await
        .unwrap();
    let now = last_event_time(&backend, &script).await + Duration::hours(20);
    metrics.refresh_due(&backend.db, now).await.unwrap();
    metrics.refresh_due(&fresh, now).await.unwrap();
    assert_eq!(
        dump_tables(&backend.db, &METRICS_TABLES).await,
        dump_tables(&fresh, &METRICS_TABLES).await
    );

    // The same through the online rebuild (shadow tables swapped in).
    projections::rebuild::rebuild(
        backend.store.clone(),
        &backend.db,
        Arc::new(metrics.clone()),
        |_| {},
    )
    .await
    .unwrap();
    metrics.refresh_due(&backend.db, now).await.unwrap();
    assert_eq!(
        dump_tables(&backend.db, &METRICS_TABLES).await,
        dump_tables(&fresh, &METRICS_TABLES).await
    );
    backend.cleanup().await;
}

/// The figures a test compares (everything but positions and times of writing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    open: i64,
    in_progress: i64,
    on_hold: i64,
    resolved: i64,
    closed: i64,
    unassigned: i64,
    by_priority: BTreeMap<&'static str, i64>,
    avg_first_response_seconds: Option<f64>,
    oldest_open: Option<DateTime<Utc>>,
    sla_breaches: i64,
    created_today: i64,
    resolved_today: i64,
}

fn comparable(rows: Vec<QueueMetricsRow>) -> BTreeMap<String, Figures> {
    rows.into_iter()
        .map(|r| {
            let figures = Figures {
                open: r.open,
                in_progress: r.in_progress,
                on_hold: r.on_hold,
                resolved: r.resolved,
                closed: r.closed,
                unassigned: r.unassigned,
                by_priority: r
                    .by_priority
                    .iter()
                    .map(|(p, n)| (p.as_str(), *n))
                    .collect(),
                avg_first_response_seconds: r.avg_first_response_seconds.map(round),
                oldest_open: r.oldest_open_created_at,
                sla_breaches: r.sla_breaches,
                created_today: r.created_today,
                resolved_today: r.resolved_today,
            };
            (r.queue, figures)
        })
        .collect()
}

fn round(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

async fn last_event_time(backend: &Backend, script: &Script) -> DateTime<Utc> {
    let mut last = DateTime::<Utc>::MIN_UTC;
    for id in script.ticket_ids() {
        for event in folded_events(backend, id).await {
            last = last.max(event.at);
        }
    }
    last
}

async fn folded_events(backend: &Backend, id: uuid::Uuid) -> Vec<domain::TicketEvent> {
    store::read_whole_stream(&*backend.store, &domain::stream_name(id))
        .await
        .unwrap()
        .iter()
        .map(|e| domain::decode(&e.event_type, e.schema_version, &e.data).unwrap())
        .collect()
}

/// The figures computed from scratch: fold every ticket, run the domain's
/// SLA clock at `now`.
async fn recompute(
    backend: &Backend,
    script: &Script,
    now: DateTime<Utc>,
) -> BTreeMap<String, Figures> {
    let policy = SlaPolicy::default();
    let mut queues: BTreeMap<String, Figures> = BTreeMap::new();
    let mut sums: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let today = now.date_naive();
    for queue in ["billing", "hardware", "network"] {
        let f = queues.entry(queue.to_string()).or_default();
        for p in TicketPriority::ALL {
            f.by_priority.insert(p.as_str(), 0);
        }
    }
    for id in script.ticket_ids() {
        let events = folded_events(backend, id).await;
        let Some(t) = domain::fold(&events) else {
            continue;
        };
        let f = queues.entry(t.queue.clone()).or_default();
        if t.deleted {
            continue;
        }
        let done = matches!(t.status, TicketStatus::Resolved | TicketStatus::Closed);
        match t.status {
            TicketStatus::Open => f.open += 1,
            TicketStatus::InProgress => f.in_progress += 1,
            TicketStatus::OnHold => f.on_hold += 1,
            TicketStatus::Resolved => f.resolved += 1,
            TicketStatus::Closed => f.closed += 1,
        }
        if t.assigned_to.is_none() && !done {
            f.unassigned += 1;
        }
        if t.status != TicketStatus::Closed {
            *f.by_priority.entry(t.priority.as_str()).or_insert(0) += 1;
        }
        if let Some(at) = t.first_response_at {
            let s = sums.entry(t.queue.clone()).or_default();
            s.0 += 1;
            s.1 += (at - t.created_at).num_milliseconds();
        }
        if !done {
            f.oldest_open = Some(f.oldest_open.map_or(t.created_at, |o| o.min(t.created_at)));
        }
        let clock = domain::sla_clock(&events, &policy, now).unwrap();
        let response = clock.clock(SlaTarget::FirstResponse);
        if !done && t.first_response_at.is_none() && response.elapsed >= response.allowed {
            f.sla_breaches += 1;
        }
        if t.created_at.date_naive() == today {
            f.created_today += 1;
        }
        if t.resolved_at.is_some_and(|at| at.date_naive() == today) {
            f.resolved_today += 1;
        }
    }
    for (queue, (count, ms)) in sums {
        if let Some(f) = queues.get_mut(&queue) {
            f.avg_first_response_seconds =
                (count > 0).then(|| round(ms as f64 / count as f64 / 1000.0));
        }
    }
    queues
}
