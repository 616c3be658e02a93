//! The tickets domain: deciding what a command means for a support ticket, and
//! rebuilding a ticket from the events that record those decisions.
//!
//! The crate is pure: no I/O, no async, no clock, no randomness. The caller
//! passes in the time (`now`) and every new id, and looks up anything external
//! (for example the roles of a would-be assignee, or the other ticket of a
//! relation) before building a command.
//!
//! # Layout
//!
//! - [`actor`]: who is acting ([`Actor`], [`Role`]).
//! - [`access`]: who sees a ticket ([`can_see`]), who may run which command
//!   ([`authorize`]), who receives an event ([`may_receive`]) and what a
//!   relation finds of the other ticket ([`related_ticket`]). The rules of
//!   `contract/auth.md`.
//! - [`ticket`]: the [`Ticket`] state with its comments and attachments, the
//!   values of its fields ([`TicketStatus`], [`TicketPriority`],
//!   [`SlaTarget`]) and the status workflow.
//! - [`command`]: the imperative [`Command`]s a caller may ask for, with the
//!   facts the caller looked up (such as the [`RelatedTicket`]).
//! - [`event`]: the past-tense [`TicketEvent`]s that record what happened.
//! - [`validate`]: trimming, length limits and tag normalisation of user input.
//! - [`mod@decide`]: `decide(state, command, actor, now)`, which turns a command into
//!   events or a [`DomainError`].
//! - [`mod@evolve`]: `evolve(state, event)` and `fold(events)`, the only way state
//!   changes.
//! - [`history`]: field-by-field diffs, per-event steps and time travel, shared
//!   by live notifications, history queries and `supportTicketAsOf`.
//! - [`sla`]: SLA targets per priority, the [`sla_clock`] (paused while
//!   on hold) and [`decide_sla`], which says which `SlaWarning` and
//!   `SlaBreached` events are due.
//! - [`codec`]: stable stored names and schema versions of events, with the
//!   upcaster for old payloads; [`codec::user`] for user events.
//! - [`stream`]: a ticket's stored stream decoded and folded
//!   ([`TicketStream`]), the one way every reader turns stored events into a
//!   ticket.
//! - [`announcement`]: what an ADMIN publishes to an audience of roles and
//!   teams ([`announcement::Announcement`]).
//! - [`notify`]: who is notified of an event and why ([`notify::Reason`]),
//!   `@user-id` mentions and [`notify::NotificationPreferences`].
//! - [`user`]: [`UserProfile`], recorded from token claims in `user-<id>`
//!   streams.
//! - [`error`]: [`DomainError`], with the stable code clients see.
//!
//! The given/when/then specification of every business rule lives in the
//! test-only `spec` module.

pub mod access;
pub mod actor;
pub mod announcement;
pub mod codec;
pub mod command;
pub mod decide;
pub mod error;
pub mod event;
pub mod evolve;
pub mod history;
pub mod limits;
pub mod notify;
pub mod sla;
pub mod stream;
pub mod ticket;
pub mod user;
pub mod validate;

#[cfg(test)]
mod spec;

pub use access::{
    authorize, can_see, can_see_queue, may_receive, redact, related_ticket, visibility, Visibility,
};
pub use actor::{Actor, Role};
pub use codec::{decode, encode, DecodeError, EncodedEvent};
pub use command::{Command, RelatedTicket};
pub use decide::{decide, decide_within};
pub use error::DomainError;
pub use event::{TicketChange, TicketEvent, TicketEventType};
pub use evolve::{evolve, fold};
pub use history::{
    as_of_time, as_of_version, diff, step_at, steps, steps_kept, FieldChange, Keep, Step,
};
pub use limits::TicketLimits;
pub use sla::{decide_sla, sla_clock, ClockState, SlaPolicy, SlaStatus, SlaTargets, TargetClock};
pub use stream::{StoredEvent, TicketStream, UndecodableEvent};
pub use ticket::{Attachment, Comment, SlaTarget, Ticket, TicketPriority, TicketStatus};
pub use user::{user_stream_name, UserProfile, USER_STREAM_PREFIX};

use uuid::Uuid;

/// Every ticket's event stream is named `ticket-<uuid>`, so the store and the
/// projections agree on it without sharing anything but this crate.
pub const STREAM_PREFIX: &str = "ticket-";

/// The name of the event stream holding one ticket's history.
pub fn stream_name(id: Uuid) -> String {
    format!("{STREAM_PREFIX}{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_name_is_the_prefix_followed_by_the_ticket_id() {
        let id = Uuid::nil();
        assert_eq!(
            stream_name(id),
            "ticket-00000000-0000-0000-0000-000000000000"
        );
    }
}
