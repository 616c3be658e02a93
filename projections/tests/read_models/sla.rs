//! The SLA process: racing processes append each SLA event once, and the
//! events reach the inboxes of staff.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use domain::{Command, Role, SlaPolicy, TicketChange, TicketPriority};
use projections::notifications::notifications;
use projections::sla::SlaProcess;
use projections::{MetricsProjection, NotificationsProjection, TicketsProjection};
use uuid::Uuid;

use crate::harness::{Backend, Kind};
use crate::notifications::{act, alice, create, dave, profiles, t0};

crate::on_every_backend! {
    /// Two SLA processes ticking at the same moments on the same log append
    /// every warning and breach exactly once, as the system actor; the
    /// assignee and, for the unassigned ticket, the agents of its queue are
    /// notified of them, the requester is not.
    two_sla_processes_racing_append_each_warning_and_breach_once
}

async fn two_sla_processes_racing_append_each_warning_and_breach_once(kind: Kind) {
    let backend = Backend::new(kind).await;
    let store = &*backend.store;
    profiles(store).await;
    let critical = Uuid::from_u128(1);
    let medium = Uuid::from_u128(2);
    act(
        store,
        critical,
        &alice(),
        create(critical, TicketPriority::Critical),
        t0(),
    )
    .await;
    let mut other = create(medium, TicketPriority::Medium);
    if let Command::Create { reference, .. } = &mut other {
        *reference = "TCK-000043".into();
    }
    act(store, medium, &alice(), other, t0()).await;
    let assign = Command::Assign {
        assignee_id: "bob".into(),
        assignee_roles: Some(vec![Role::Agent]),
    };
    // The assignment is the first response on the critical ticket.
    act(
        store,
        critical,
        &dave(),
        assign,
        t0() + Duration::minutes(10),
    )
    .await;

    let clock = Arc::new(AtomicI64::new(0));
    let now = {
        let clock = clock.clone();
        move || -> DateTime<Utc> { t0() + Duration::minutes(clock.load(Ordering::SeqCst)) }
    };
    let metrics = MetricsProjection::new(SlaPolicy::default());
    let a = SlaProcess::new(
        backend.store.clone(),
        backend.db.clone(),
        SlaPolicy::default(),
    )
    .with_clock(now.clone())
    .refreshing(metrics.clone());
    let b = SlaProcess::new(
        backend.store.clone(),
        backend.db.clone(),
        SlaPolicy::default(),
    )
    .with_clock(now);
    let runner = backend.runner(&backend.db);
    // Critical: resolution warned at 3h45, breached at 4h. Medium: response
    // warned at 6h, breached at 8h; resolution warned at 70h, breached at 72h.
    for minutes in [60, 230, 250, 370, 490, 500, 4210, 4330, 4400] {
        clock.store(minutes, Ordering::SeqCst);
        runner.catch_up(Arc::new(TicketsProjection)).await.unwrap();
        runner.catch_up(Arc::new(metrics.clone())).await.unwrap();
        let (ra, rb) = tokio::join!(a.tick(), b.tick());
        ra.unwrap();
        rb.unwrap();
    }

    let events_of = backend.store.clone();
    let sla_events = |id: Uuid| {
        let store = events_of.clone();
        async move {
            store::read_whole_stream(&*store, &domain::stream_name(id))
                .await
                .unwrap()
                .iter()
                .map(|e| domain::decode(&e.event_type, e.schema_version, &e.data).unwrap())
                .filter(|e| {
                    matches!(
                        e.change,
                        TicketChange::SlaWarning { .. } | TicketChange::SlaBreached { .. }
                    )
                })
                .map(|e| {
                    assert_eq!(e.actor, "system");
                    format!(
                        "{}/{:?}",
                        e.event_type().as_str(),
                        match e.change {
                            TicketChange::SlaWarning { target, .. }
                            | TicketChange::SlaBreached { target, .. } => target,
                            _ => unreachable!(),
                        }
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        sla_events(critical).await,
        ["SLA_WARNING/Resolution", "SLA_BREACHED/Resolution"]
    );
    assert_eq!(
        sla_events(medium).await,
        [
            "SLA_WARNING/FirstResponse",
            "SLA_BREACHED/FirstResponse",
            "SLA_WARNING/Resolution",
            "SLA_BREACHED/Resolution"
        ]
    );

    let projection = NotificationsProjection::new();
    runner.catch_up(Arc::new(projection)).await.unwrap();
    let bobs = notifications(&backend.db, "bob", false, 50, None)
        .await
        .unwrap();
    let titles: Vec<_> = bobs.items.iter().rev().map(|n| n.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            // bob is an agent of `support`: its new tickets are queue alerts,
            "New ticket TCK-000042 in support",
            "New ticket TCK-000043 in support",
            "Ticket assigned to you",
            // as the SLA events are, of his ticket and of the unassigned one.
            "SLA warning on TCK-000042",
            "SLA breached on TCK-000042",
            "SLA warning on TCK-000043",
            "SLA breached on TCK-000043",
            "SLA warning on TCK-000043",
            "SLA breached on TCK-000043"
        ]
    );
    let alices = notifications(&backend.db, "alice", false, 50, None)
        .await
        .unwrap();
    assert!(alices.items.iter().all(|n| !n.title.starts_with("SLA")));

    // The breached, unanswered medium ticket counts in its queue's figures.
    runner.catch_up(Arc::new(metrics.clone())).await.unwrap();
    let support = projections::metrics::queue_metrics(&backend.db, Some("support"))
        .await
        .unwrap();
    assert_eq!(support[0].sla_breaches, 1);
    backend.cleanup().await;
}

crate::on_every_backend! {
    /// A configured target replaces the default one for both the SLA process
    /// and the queue figures: with HIGH answered within 1 minute, a HIGH
    /// ticket unanswered for 2 minutes gets `SlaBreached` in its history (the
    /// default policy would allow 4 hours) and counts as a breach in its
    /// queue, both from the same policy.
    a_configured_tiny_target_is_breached_in_history_and_queue_figures
}

async fn a_configured_tiny_target_is_breached_in_history_and_queue_figures(kind: Kind) {
    let backend = Backend::new(kind).await;
    let store = &*backend.store;
    profiles(store).await;
    let policy = SlaPolicy::configured(&"HIGH=1m/10m".parse().unwrap(), 25).unwrap();
    let id = Uuid::from_u128(7);
    act(store, id, &alice(), create(id, TicketPriority::High), t0()).await;

    let metrics = MetricsProjection::new(policy);
    let at = |minutes: i64| move || t0() + Duration::minutes(minutes);
    let runner = backend.runner(&backend.db);
    runner.catch_up(Arc::new(TicketsProjection)).await.unwrap();
    runner.catch_up(Arc::new(metrics.clone())).await.unwrap();
    let defaults = SlaProcess::new(
        backend.store.clone(),
        backend.db.clone(),
        SlaPolicy::default(),
    )
    .with_clock(at(2));
    assert_eq!(defaults.tick().await.unwrap().appended, 0, "4 h by default");

    let configured = SlaProcess::new(backend.store.clone(), backend.db.clone(), policy)
        .with_clock(at(2))
        .refreshing(metrics.clone());
    let report = configured.tick().await.unwrap();
    assert_eq!(
        report.appended, 1,
        "the first-response breach, no belated warning"
    );

    let recorded = store::read_whole_stream(store, &domain::stream_name(id))
        .await
        .unwrap();
    let events: Vec<_> = recorded
        .iter()
        .map(|e| domain::decode(&e.event_type, e.schema_version, &e.data).unwrap())
        .collect();
    let history: Vec<_> = domain::steps(&events)
        .iter()
        .zip(&events)
        .map(|(step, event)| (event.event_type().as_str(), step.after.sla_breaches.clone()))
        .collect();
    assert_eq!(
        history.last(),
        Some(&("SLA_BREACHED", vec![domain::SlaTarget::FirstResponse]))
    );
    let breached = events.last().unwrap();
    assert!(matches!(
        breached.change,
        TicketChange::SlaBreached { due_at, .. } if due_at == t0() + Duration::minutes(1)
    ));

    runner.catch_up(Arc::new(metrics.clone())).await.unwrap();
    let support = projections::metrics::queue_metrics(&backend.db, Some("support"))
        .await
        .unwrap();
    assert_eq!(
        support[0].sla_breaches, 1,
        "the figures use the same target"
    );
    backend.cleanup().await;
}
