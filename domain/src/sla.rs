//! Service-level agreements, as helpdesks run them: per-priority targets for
//! the first response and for the resolution of a ticket, a warning some time
//! before each target, and a clock that only runs while someone owes the
//! requester work.
//!
//! The clock of a target runs while the ticket is `OPEN` or `IN_PROGRESS`
//! and the target is not met. It is paused while the ticket is `ON_HOLD`
//! (waiting on the requester), and also while it is `RESOLVED` or `CLOSED`
//! (if the ticket is reopened the clock carries on from where it stopped).
//! The first-response target is met once `firstResponseDate` is set; the
//! resolution target is met while the ticket is `RESOLVED` or `CLOSED`.
//! Times are calendar time: there are no business hours.
//!
//! Targets follow the ticket's *current* priority: raising a ticket to
//! `CRITICAL` measures the time it has already run against the shorter target.
//!
//! The policy is configurable per priority ([`SlaPolicy::configured`], from
//! text such as `CRITICAL=1h/4h,HIGH=4h/1d`, in `config`).
//!
//! Like the rest of the crate this is pure: `now` is passed in. The SLA
//! process (`projections::sla`) calls [`decide_sla`] on a timer and appends
//! what it returns as the system actor.

mod config;

pub use crate::ticket::SlaTarget;
pub use config::{
    ConfiguredTargets, SlaConfigError, SlaTargetOverrides, DEFAULT_WARNING_PERCENT, LONGEST,
};

use crate::event::{TicketChange, TicketEvent};
use crate::evolve::evolve;
use crate::ticket::{Ticket, TicketPriority, TicketStatus};
use chrono::{DateTime, Duration, Utc};

/// The targets of one priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaTargets {
    /// Clock time allowed until the first response.
    pub first_response: Duration,
    /// Clock time allowed until the ticket is resolved.
    pub resolution: Duration,
    /// How long before either target falls due a warning is raised.
    pub warning_before: Duration,
}

impl SlaTargets {
    /// The clock time allowed for `target`.
    pub fn allowed(&self, target: SlaTarget) -> Duration {
        match target {
            SlaTarget::FirstResponse => self.first_response,
            SlaTarget::Resolution => self.resolution,
        }
    }
}

/// Targets per priority. The default is a common helpdesk policy: CRITICAL
/// 1 h / 4 h, HIGH 4 h / 1 d, MEDIUM 8 h / 3 d, LOW 1 d / 5 d (first response
/// / resolution), each warned about when a quarter of the first-response
/// target remains (15 min, 1 h, 2 h, 6 h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaPolicy {
    pub low: SlaTargets,
    pub medium: SlaTargets,
    pub high: SlaTargets,
    pub critical: SlaTargets,
}

impl Default for SlaPolicy {
    fn default() -> Self {
        let targets = |first_response: Duration, resolution: Duration| SlaTargets {
            first_response,
            resolution,
            warning_before: first_response / 4,
        };
        SlaPolicy {
            low: targets(Duration::days(1), Duration::days(5)),
            medium: targets(Duration::hours(8), Duration::days(3)),
            high: targets(Duration::hours(4), Duration::days(1)),
            critical: targets(Duration::hours(1), Duration::hours(4)),
        }
    }
}

impl SlaPolicy {
    pub fn targets(&self, priority: TicketPriority) -> &SlaTargets {
        match priority {
            TicketPriority::Low => &self.low,
            TicketPriority::Medium => &self.medium,
            TicketPriority::High => &self.high,
            TicketPriority::Critical => &self.critical,
        }
    }
}

/// Where one target's clock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockState {
    /// The target is met; nothing more can be owed on it.
    Met,
    /// The clock is running now.
    Running,
    /// The clock is stopped (on hold, resolved or closed for a response
    /// target, or the ticket is deleted).
    Paused,
}

/// One target's clock at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetClock {
    pub target: SlaTarget,
    pub state: ClockState,
    /// Clock time run so far.
    pub elapsed: Duration,
    /// Clock time allowed by the policy for the ticket's priority.
    pub allowed: Duration,
    /// When the clock reached `allowed`; if it has not yet, when it would if
    /// it ran from `now` without pause.
    pub due_at: DateTime<Utc>,
    /// The same for the warning (`allowed - warning_before`).
    pub warn_at: DateTime<Utc>,
    warn_after: Duration,
}

impl TargetClock {
    /// The clock reached the target without the target being met.
    pub fn is_breached(&self) -> bool {
        self.state != ClockState::Met && self.elapsed >= self.allowed
    }

    /// The clock reached the warning time without the target being met.
    pub fn is_warned(&self) -> bool {
        self.state != ClockState::Met && self.elapsed >= self.warn_after
    }
}

/// Both clocks of a ticket at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaStatus {
    pub first_response: TargetClock,
    pub resolution: TargetClock,
}

impl SlaStatus {
    pub fn clock(&self, target: SlaTarget) -> &TargetClock {
        match target {
            SlaTarget::FirstResponse => &self.first_response,
            SlaTarget::Resolution => &self.resolution,
        }
    }
}

/// Whether `target`'s clock runs while the ticket is in `state`.
pub fn clock_runs(state: &Ticket, target: SlaTarget) -> bool {
    let working = matches!(state.status, TicketStatus::Open | TicketStatus::InProgress);
    let met = match target {
        SlaTarget::FirstResponse => state.first_response_at.is_some(),
        SlaTarget::Resolution => false,
    };
    working && !met && !state.deleted
}

/// Whether `target` is met in `state`.
pub fn is_met(state: &Ticket, target: SlaTarget) -> bool {
    match target {
        SlaTarget::FirstResponse => state.first_response_at.is_some(),
        SlaTarget::Resolution => {
            matches!(state.status, TicketStatus::Resolved | TicketStatus::Closed)
        }
    }
}

/// The SLA clocks of the ticket `events` build, at `now`. `None` when the
/// events create no ticket.
pub fn sla_clock(
    events: &[TicketEvent],
    policy: &SlaPolicy,
    now: DateTime<Utc>,
) -> Option<SlaStatus> {
    // Each state holds from its event's time until the next event (or now).
    let mut intervals: Vec<(Ticket, DateTime<Utc>, DateTime<Utc>)> = vec![];
    let mut state: Option<Ticket> = None;
    for event in events {
        if let Some((_, _, end)) = intervals.last_mut() {
            *end = event.at;
        }
        state = evolve(state, event);
        if let Some(ticket) = &state {
            intervals.push((ticket.clone(), event.at, now));
        }
    }
    let ticket = state?;
    let targets = policy.targets(ticket.priority);
    let clock = |target: SlaTarget| {
        let allowed = targets.allowed(target);
        let warn_after = (allowed - targets.warning_before).max(Duration::zero());
        let mut elapsed = Duration::zero();
        let mut due_at = None;
        let mut warn_at = None;
        for (state, start, end) in &intervals {
            if !clock_runs(state, target) {
                continue;
            }
            let length = (*end - *start).max(Duration::zero());
            for (threshold, at) in [(allowed, &mut due_at), (warn_after, &mut warn_at)] {
                if at.is_none() && elapsed + length >= threshold {
                    *at = Some(*start + (threshold - elapsed).max(Duration::zero()));
                }
            }
            elapsed += length;
        }
        let state = if is_met(&ticket, target) {
            ClockState::Met
        } else if clock_runs(&ticket, target) {
            ClockState::Running
        } else {
            ClockState::Paused
        };
        let from_now = |threshold: Duration| now + (threshold - elapsed).max(Duration::zero());
        TargetClock {
            target,
            state,
            elapsed,
            allowed,
            due_at: due_at.unwrap_or_else(|| from_now(allowed)),
            warn_at: warn_at.unwrap_or_else(|| from_now(warn_after)),
            warn_after,
        }
    };
    Some(SlaStatus {
        first_response: clock(SlaTarget::FirstResponse),
        resolution: clock(SlaTarget::Resolution),
    })
}

/// The SLA events due at `now` on `ticket` (the fold of `events`) that are
/// not recorded yet: at most one warning and one breach per target over the
/// ticket's life. A breach makes a pending warning pointless, so a target
/// first seen past its due time gets only the breach. A deleted ticket gets
/// nothing.
pub fn decide_sla(
    ticket: &Ticket,
    events: &[TicketEvent],
    policy: &SlaPolicy,
    now: DateTime<Utc>,
) -> Vec<TicketChange> {
    if ticket.deleted {
        return vec![];
    }
    let Some(status) = sla_clock(events, policy, now) else {
        return vec![];
    };
    let mut changes = vec![];
    for target in SlaTarget::ALL {
        let clock = status.clock(target);
        if ticket.sla_breaches.contains(&target) {
            continue;
        }
        if clock.is_breached() {
            changes.push(TicketChange::SlaBreached {
                target,
                due_at: clock.due_at,
            });
        } else if clock.is_warned() && !ticket.sla_warnings.contains(&target) {
            changes.push(TicketChange::SlaWarning {
                target,
                due_at: clock.due_at,
            });
        }
    }
    changes
}
