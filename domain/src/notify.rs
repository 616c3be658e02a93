//! Who hears of a ticket event in their notification centre, and why
//! (auth.md, "Next round"): the [`Reason`] a user is notified for, the
//! `@user-id` [`mentions`] of a comment, and the [`NotificationPreferences`]
//! that mute some of it. Pure: the caller knows the users and their
//! preferences as they stood at the event.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::access::may_receive;
use crate::actor::{Actor, Role};
use crate::error::DomainError;
use crate::event::{TicketChange, TicketEvent, TicketEventType};
use crate::ticket::Ticket;
use crate::validate;

/// Why a notification reached its recipient: the contract's
/// `NotificationReason`. When several apply, the first in this order wins
/// (see [`reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// The ticket is (or was, until this event) assigned to them.
    AssignedToYou,
    /// `@their-id` in the comment this event adds.
    Mentioned,
    /// They created the ticket.
    YourTicket,
    /// They watch the ticket.
    Watching,
    /// An agent of the ticket's queue: a ticket created there, moved there,
    /// or an unassigned ticket's SLA warning or breach.
    Queue,
    /// One bulk operation changed several of their tickets.
    Digest,
}

impl Reason {
    pub const ALL: [Reason; 6] = [
        Reason::AssignedToYou,
        Reason::Mentioned,
        Reason::YourTicket,
        Reason::Watching,
        Reason::Queue,
        Reason::Digest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::AssignedToYou => "ASSIGNED_TO_YOU",
            Reason::Mentioned => "MENTIONED",
            Reason::YourTicket => "YOUR_TICKET",
            Reason::Watching => "WATCHING",
            Reason::Queue => "QUEUE",
            Reason::Digest => "DIGEST",
        }
    }

    pub fn parse(name: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// What a user muted. Everything is on by default (all lists empty). Each
/// list is sorted and unique, so equal preferences compare equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationPreferences {
    #[serde(default)]
    pub muted_event_types: Vec<TicketEventType>,
    #[serde(default)]
    pub muted_reasons: Vec<Reason>,
    /// No [`Reason::Queue`] notification from these queues.
    #[serde(default)]
    pub muted_queues: Vec<String>,
}

/// A change of preferences: a list left out (`None`) keeps its value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreferencesChange {
    pub muted_event_types: Option<Vec<TicketEventType>>,
    pub muted_reasons: Option<Vec<Reason>>,
    pub muted_queues: Option<Vec<String>>,
}

/// At most this many muted queues: a list a person keeps, not a dump.
pub const MAX_MUTED_QUEUES: usize = 200;

impl NotificationPreferences {
    /// These preferences with `change` applied, validated (queue names as
    /// anywhere else, at most [`MAX_MUTED_QUEUES`]).
    pub fn changed(&self, change: PreferencesChange) -> Result<Self, DomainError> {
        let mut next = self.clone();
        if let Some(types) = change.muted_event_types {
            next.muted_event_types = sorted(types);
        }
        if let Some(reasons) = change.muted_reasons {
            next.muted_reasons = sorted(reasons);
        }
        if let Some(queues) = change.muted_queues {
            if queues.len() > MAX_MUTED_QUEUES {
                return Err(DomainError::Invalid(format!(
                    "at most {MAX_MUTED_QUEUES} muted queues"
                )));
            }
            let queues = queues
                .iter()
                .map(|q| validate::queue(q))
                .collect::<Result<Vec<_>, _>>()?;
            next.muted_queues = sorted(queues);
        }
        Ok(next)
    }

    /// Whether a notification of `event_type`, for `reason`, about a ticket
    /// in `queue`, is muted.
    pub fn mutes(&self, event_type: TicketEventType, reason: Reason, queue: &str) -> bool {
        self.muted_event_types.contains(&event_type)
            || self.muted_reasons.contains(&reason)
            || (reason == Reason::Queue && self.muted_queues.iter().any(|q| q == queue))
    }
}

fn sorted<T: Ord>(items: Vec<T>) -> Vec<T> {
    items
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The user ids a comment mentions: every `@` at the start of the text or
/// after a character that is not a letter, digit or one of `._-` (so an
/// e-mail address is not a mention), followed by the longest run of ASCII
/// letters, digits and `._-:`, without a trailing `.`, `:` or `-`
/// (punctuation ending a sentence). Case is kept: ids are compared exactly.
/// Sorted, unique. Whether such a user exists is the caller's business.
pub fn mentions(text: &str) -> Vec<String> {
    let id_char = |c: char| c.is_ascii_alphanumeric() || "._-:".contains(c);
    let mut found = BTreeSet::new();
    let mut previous: Option<char> = None;
    for (at, c) in text.char_indices() {
        let starts =
            c == '@' && !previous.is_some_and(|p| p.is_alphanumeric() || "._-@".contains(p));
        previous = Some(c);
        if !starts {
            continue;
        }
        let rest = &text[at + 1..];
        let end = rest.find(|c: char| !id_char(c)).unwrap_or(rest.len());
        let id = rest[..end].trim_end_matches(['.', ':', '-']);
        if !id.is_empty() {
            found.insert(id.to_string());
        }
    }
    found.into_iter().collect()
}

/// What [`reason`] needs to know of one possible recipient.
pub struct Recipient<'a> {
    pub actor: &'a Actor,
    pub preferences: &'a NotificationPreferences,
    /// Whether the event's comment mentions them (see [`mentions`]) and
    /// their profile is known.
    pub mentioned: bool,
}

/// Whether `event` is a queue alert of the queue the ticket is in after it
/// (auth.md: a ticket created there, moved there, or an SLA warning or
/// breach of a ticket there that nobody is assigned to).
pub fn is_queue_alert(after: &Ticket, event: &TicketEvent) -> bool {
    match &event.change {
        TicketChange::Created { .. } | TicketChange::QueueChanged { .. } => true,
        TicketChange::SlaWarning { .. } | TicketChange::SlaBreached { .. } => {
            after.assigned_to.is_none()
        }
        _ => false,
    }
}

/// Whether `actor` is one of the agents a queue alert of `queue` goes to.
pub fn is_queue_agent(actor: &Actor, queue: &str) -> bool {
    actor.has_role(Role::Agent) && actor.teams.iter().any(|t| t == queue)
}

/// Why `who` is notified of `event`, or `None` if they are not: never the
/// event's actor, never someone [`may_receive`] keeps out (a ticket they
/// cannot see, an internal comment or an SLA event for a requester), and
/// not for a reason, event type or queue they muted. Of the reasons that
/// apply and are not muted, the first in [`Reason`]'s order.
pub fn reason(
    who: &Recipient<'_>,
    before: Option<&Ticket>,
    after: &Ticket,
    event: &TicketEvent,
) -> Option<Reason> {
    let user = who.actor.user_id.as_str();
    if user == event.actor || !may_receive(who.actor, before, after, event) {
        return None;
    }
    let either = |test: &dyn Fn(&Ticket) -> bool| before.is_some_and(test) || test(after);
    let mut applies = vec![];
    if either(&|t| t.is_assigned_to(user)) {
        applies.push(Reason::AssignedToYou);
    }
    if who.mentioned && matches!(event.change, TicketChange::Commented { .. }) {
        applies.push(Reason::Mentioned);
    }
    if either(&|t| t.created_by == user) {
        applies.push(Reason::YourTicket);
    }
    if either(&|t| t.is_watched_by(user)) {
        applies.push(Reason::Watching);
    }
    if is_queue_alert(after, event) && is_queue_agent(who.actor, &after.queue) {
        applies.push(Reason::Queue);
    }
    let event_type = event.event_type();
    applies
        .into_iter()
        .find(|r| !who.preferences.mutes(event_type, *r, &after.queue))
}

#[cfg(test)]
mod tests;
