//! The plan as a specification: deterministic, forward in time, and made of
//! real changes the domain accepts.

use super::*;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn draw(seed: u64) -> Vec<TicketPlan> {
    draw_at(seed, now())
}

fn draw_at(seed: u64, now: DateTime<Utc>) -> Vec<TicketPlan> {
    let cast = Cast::draw(&mut stream(seed, 0), 50);
    tickets(seed, &cast, 200, 42, now)
}

/// Every planned command is accepted by the domain, in order, at its
/// time, by its actor, and changes the ticket (no no-op, see `Life`).
#[test]
fn every_planned_step_is_a_real_change_the_domain_accepts() {
    for plan in draw(5) {
        let create = Command::Create {
            ticket_id: Uuid::from_u128(plan.index as u128 + 1),
            reference: format!("TCK-{:06}", plan.index + 1),
            request: plan.request.clone(),
            description: Some(plan.description.clone()),
            priority: plan.priority,
            queue: plan.queue.clone(),
            tags: plan.tags.clone(),
        };
        let mut events = domain::decide(None, &create, &plan.requester, plan.created_at).unwrap();
        for (n, step) in plan.steps.iter().enumerate() {
            let state = domain::fold(&events);
            let decided = domain::decide(state.as_ref(), &step.command, &step.actor, step.at)
                .unwrap_or_else(|e| panic!("ticket {} step {n}: {e}", plan.index));
            assert!(
                !decided.is_empty(),
                "ticket {} step {n} is a no-op",
                plan.index
            );
            events.extend(decided);
        }
        let last = domain::fold(&events).unwrap();
        assert_eq!(last.queue, plan.final_queue);
        assert_eq!(last.deleted, plan.deleted);
    }
}

/// A run an hour later plans every ticket with the same first steps (its
/// story may have gone on): what the idempotency keys of a rerun rely on.
#[test]
fn a_later_run_plans_the_same_first_steps() {
    let before = draw_at(3, now());
    let later = draw_at(3, now() + Duration::hours(1));
    for (a, b) in before.iter().zip(&later) {
        assert_eq!(a.request, b.request);
        assert!(b.steps.len() >= a.steps.len(), "ticket {}", a.index);
        for (x, y) in a.steps.iter().zip(&b.steps) {
            assert_eq!(x.command.name(), y.command.name(), "ticket {}", a.index);
            assert_eq!(x.actor.user_id, y.actor.user_id, "ticket {}", a.index);
        }
    }
}

/// The same seed gives the same tickets and histories; another seed others.
#[test]
fn the_same_seed_plans_the_same_data_set() {
    let a = draw(7);
    let b = draw(7);
    let c = draw(8);
    let summary = |p: &[TicketPlan]| -> Vec<(String, usize, String)> {
        p.iter()
            .map(|t| {
                (
                    t.request.clone(),
                    t.steps.len(),
                    t.requester.user_id.clone(),
                )
            })
            .collect()
    };
    assert_eq!(summary(&a), summary(&b));
    assert_ne!(summary(&a), summary(&c));
}

/// Every ticket's steps are in time order, after its creation and never in
/// the future; some tickets end resolved, some are still open.
#[test]
fn histories_run_forward_in_the_past() {
    let plans = draw(1);
    let now = now();
    assert!(plans.windows(2).all(|w| w[0].created_at <= w[1].created_at));
    assert!(plans.first().unwrap().created_at < now - Duration::days(21));
    let mut statuses = std::collections::HashSet::new();
    for p in &plans {
        let mut at = p.created_at;
        for s in &p.steps {
            assert!(s.at >= at, "ticket {} goes back in time", p.index);
            at = s.at;
            if let Command::ChangeStatus { status, .. } = &s.command {
                statuses.insert(*status);
            }
        }
        assert!(at <= now);
    }
    assert!(statuses.contains(&TicketStatus::Resolved));
    assert!(statuses.contains(&TicketStatus::Closed));
    assert!(plans
        .iter()
        .any(|p| p.steps.is_empty() || p.steps.len() < 3));
}
