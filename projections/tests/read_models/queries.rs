//! The ticket list answers what filtering the folded tickets in Rust gives:
//! the SQL visibility is `domain::can_see`, the SQL filter is the filter.

use std::sync::Arc;

use domain::{Actor, Role, Ticket};
use projections::tickets::{list_tickets, TicketFilter};
use projections::{QueryError, ReadDb, TicketsProjection};

use crate::commands::Script;
use crate::harness::{run_until_caught_up, Backend, Kind};

crate::on_every_backend! {
    /// For admins, agents with and without teams and requesters, and for each
    /// kind of filter, paging through `list_tickets` three at a time gives
    /// exactly the visible, matching tickets in `(created_at, id)` order, and
    /// the total count says how many there are.
    the_ticket_list_is_the_visible_matching_tickets_in_order
}

fn matches(f: &TicketFilter, t: &Ticket) -> bool {
    let any =
        |values: &[String], value: &str| values.is_empty() || values.iter().any(|v| v == value);
    let term = f.search.as_deref().map(str::to_lowercase);
    any(&f.statuses, t.status.as_str())
        && any(&f.priorities, t.priority.as_str())
        && any(&f.queues, &t.queue)
        && f.assigned_to.as_ref().is_none_or(|u| t.is_assigned_to(u))
        && f.created_by.as_ref().is_none_or(|u| &t.created_by == u)
        && (f.tags.is_empty() || t.tags.iter().any(|tag| f.tags.contains(tag)))
        && term.is_none_or(|term| {
            [Some(&t.reference), Some(&t.request), t.description.as_ref()]
                .into_iter()
                .flatten()
                .any(|text| text.to_lowercase().contains(&term))
        })
        && (f.include_deleted || !t.deleted)
}

async fn all_pages(db: &ReadDb, viewer: &Actor, f: &TicketFilter) -> (Vec<Ticket>, i64) {
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = list_tickets(db, viewer, f, 3, after.as_deref())
            .await
            .expect("the list query runs");
        after = page.tickets.last().map(|(cursor, _)| cursor.clone());
        seen.extend(page.tickets.into_iter().map(|(_, t)| t));
        if !page.has_next_page {
            return (seen, page.total_count);
        }
    }
}

async fn the_ticket_list_is_the_visible_matching_tickets_in_order(kind: Kind) {
    let backend = Backend::new(kind).await;
    let mut script = Script::new(11, 30);
    script.run(&*backend.store, 500).await;
    run_until_caught_up(
        &backend.runner(&backend.db),
        &*backend.store,
        Arc::new(TicketsProjection),
    )
    .await
    .expect("the projection runs");
    let mut tickets = script.tickets();
    tickets.sort_by_key(|t| (t.created_at, t.id));

    let viewers = [
        Actor::new("admin-1", vec![Role::Admin], vec![]),
        Actor::new("agent-1", vec![Role::Agent], vec!["billing".into()]),
        Actor::new("agent-2", vec![Role::Agent], vec![]),
        Actor::new("admin-2", vec![Role::Requester], vec!["network".into()]),
        Actor::new("agent-1", vec![Role::Requester], vec![]),
    ];
    let text = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let filters = [
        TicketFilter::default(),
        TicketFilter {
            include_deleted: true,
            ..TicketFilter::default()
        },
        TicketFilter {
            statuses: text(&["OPEN", "IN_PROGRESS"]),
            priorities: text(&["HIGH", "URGENT", "LOW"]),
            ..TicketFilter::default()
        },
        TicketFilter {
            queues: text(&["billing", "network"]),
            tags: text(&["vip", "vpn"]),
            ..TicketFilter::default()
        },
        TicketFilter {
            assigned_to: Some("agent-1".into()),
            created_by: Some("admin-2".into()),
            ..TicketFilter::default()
        },
        TicketFilter {
            search: Some("REQUEST 1".into()),
            include_deleted: true,
            ..TicketFilter::default()
        },
    ];
    let mut nonempty = 0;
    for viewer in &viewers {
        for f in &filters {
            let expected: Vec<&Ticket> = tickets
                .iter()
                .filter(|t| domain::can_see(viewer, t) && matches(f, t))
                .collect();
            let (listed, total) = all_pages(&backend.db, viewer, f).await;
            let listed: Vec<&Ticket> = listed.iter().collect();
            assert_eq!(listed, expected, "{viewer:?} with {f:?}");
            assert_eq!(total as usize, expected.len(), "{viewer:?} with {f:?}");
            nonempty += usize::from(!expected.is_empty());
        }
    }
    assert!(
        nonempty >= viewers.len() * 2,
        "the script must give most viewers and filters something to list ({nonempty})"
    );

    let admin = &viewers[0];
    let refused = list_tickets(&backend.db, admin, &TicketFilter::default(), 3, Some("x|y"))
        .await
        .expect_err("a cursor this list never handed out");
    assert!(
        matches!(refused, QueryError::InvalidCursor(_)),
        "{refused:?}"
    );
    backend.cleanup().await;
}
