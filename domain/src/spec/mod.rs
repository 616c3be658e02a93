//! The specification of every business rule, written as
//! `given(history).as_actor(who).when(command).then_expect(changes)`.
//!
//! Each submodule covers one area; each test is one rule, named as a
//! sentence.

mod create;
mod deletion;
mod first_response;
mod limits;
mod no_op;
mod permissions;
mod relations;
mod sla;
mod status;
mod tags;
mod update;

use crate::{decide_within, fold, Actor, Command, DomainError, RelatedTicket, Role, TicketLimits};
use crate::{Ticket, TicketChange, TicketEvent};
use crate::{TicketPriority, TicketStatus};
use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

pub const TICKET: Uuid = Uuid::from_u128(0x1);
pub const OTHER_TICKET: Uuid = Uuid::from_u128(0x2);
pub const COMMENT: Uuid = Uuid::from_u128(0xc);
pub const ATTACHMENT: Uuid = Uuid::from_u128(0xa);

/// When the ticket was created; later events are minutes after it.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap()
}

pub fn minutes(n: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(n)
}

/// Alice opened the ticket in the "support" queue.
pub fn requester() -> Actor {
    Actor::new("alice", vec![Role::Requester], vec![])
}

/// A requester with no part in the ticket.
pub fn stranger() -> Actor {
    Actor::new("mallory", vec![Role::Requester], vec![])
}

/// An agent of the ticket's queue.
pub fn agent() -> Actor {
    Actor::new("bob", vec![Role::Agent], vec!["support".into()])
}

/// An agent of another queue.
pub fn other_agent() -> Actor {
    Actor::new("carol", vec![Role::Agent], vec!["billing".into()])
}

pub fn admin() -> Actor {
    Actor::new("dave", vec![Role::Admin], vec![])
}

pub fn event(by: &Actor, at: DateTime<Utc>, change: TicketChange) -> TicketEvent {
    TicketEvent {
        actor: by.user_id.clone(),
        at,
        change,
    }
}

/// Alice's ticket as it is created.
pub fn created() -> TicketEvent {
    event(
        &requester(),
        t0(),
        TicketChange::Created {
            ticket_id: TICKET,
            reference: "TCK-000001".into(),
            request: "Printer on fire".into(),
            description: None,
            priority: TicketPriority::Medium,
            queue: "support".into(),
            tags: vec![],
        },
    )
}

/// A later event in the ticket's life, by `by`.
pub fn then(by: &Actor, change: TicketChange) -> TicketEvent {
    event(by, minutes(1), change)
}

pub fn status(status: TicketStatus) -> TicketEvent {
    then(&agent(), TicketChange::StatusChanged { status })
}

pub fn given(history: Vec<TicketEvent>) -> Given {
    Given {
        history,
        actor: admin(),
        limits: TicketLimits::default(),
    }
}

pub struct Given {
    history: Vec<TicketEvent>,
    actor: Actor,
    limits: TicketLimits,
}

impl Given {
    // Named to read as a sentence in the spec, not as a conversion.
    #[allow(clippy::wrong_self_convention)]
    pub fn as_actor(mut self, actor: Actor) -> Given {
        self.actor = actor;
        self
    }

    /// The ticket may hold at most what `limits` allow.
    pub fn within(mut self, limits: TicketLimits) -> Given {
        self.limits = limits;
        self
    }

    pub fn when(self, command: Command) -> Then {
        let state = fold(&self.history);
        let now = minutes(60);
        let result = decide_within(&self.limits, state.as_ref(), &command, &self.actor, now);
        if let Ok(events) = &result {
            for event in events {
                assert_eq!(event.actor, self.actor.user_id, "events name their actor");
                assert_eq!(event.at, now, "events carry the decision's time");
            }
        }
        Then {
            history: self.history,
            result,
        }
    }
}

pub struct Then {
    history: Vec<TicketEvent>,
    result: Result<Vec<TicketEvent>, DomainError>,
}

impl Then {
    pub fn then_expect(self, expected: Vec<TicketChange>) -> Then {
        let changes: Vec<_> = self.events().iter().map(|e| e.change.clone()).collect();
        assert_eq!(changes, expected);
        self
    }

    pub fn then_expect_nothing(self) -> Then {
        self.then_expect(vec![])
    }

    pub fn then_expect_error(self, expected: DomainError) {
        match self.result {
            Ok(events) => panic!("expected {expected:?}, got events {events:#?}"),
            Err(error) => assert_eq!(error, expected),
        }
    }

    /// Asserts the error's kind, whatever its message says.
    /// The refusal's message.
    pub fn then_expect_invalid(self) -> String {
        match self.result {
            Err(DomainError::Invalid(message)) => message,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    pub fn then_expect_forbidden(self) {
        match self.result {
            Err(DomainError::Forbidden(_)) => {}
            other => panic!("expected Forbidden, got {other:?}"),
        }
    }

    /// The ticket after the history and the new events.
    pub fn ticket(self) -> Ticket {
        let mut all = self.history.clone();
        all.extend(self.events().iter().cloned());
        fold(&all).expect("the history creates the ticket")
    }

    fn events(&self) -> &[TicketEvent] {
        match &self.result {
            Ok(events) => events,
            Err(error) => panic!("expected events, got {error:?}"),
        }
    }
}

/// One event of every kind, in an order that makes a valid history.
pub fn one_of_each() -> Vec<TicketEvent> {
    use TicketChange as C;
    let c = |change| then(&agent(), change);
    vec![
        created(),
        c(C::Updated {
            request: Some("Printer smoking".into()),
            description: Some(None),
        }),
        c(C::Updated {
            request: None,
            description: Some(Some("Third floor".into())),
        }),
        c(C::Assigned {
            assignee_id: "bob".into(),
            first_response: true,
        }),
        c(C::Unassigned),
        c(C::StatusChanged {
            status: TicketStatus::Resolved,
        }),
        c(C::PriorityChanged {
            priority: TicketPriority::Critical,
        }),
        c(C::Commented {
            comment_id: COMMENT,
            body: "On my way".into(),
            internal: true,
            first_response: false,
        }),
        c(C::AttachmentAdded {
            attachment_id: ATTACHMENT,
            name: "photo.jpg".into(),
            url: "https://files.example/photo.jpg".into(),
            mime_type: Some("image/jpeg".into()),
            size: Some(12_345),
        }),
        c(C::RelatedAdded {
            related_id: OTHER_TICKET,
        }),
        c(C::RelatedRemoved {
            related_id: OTHER_TICKET,
        }),
        c(C::TagAdded { tag: "fire".into() }),
        c(C::TagRemoved { tag: "fire".into() }),
        c(C::WatcherAdded {
            user_id: "erin".into(),
        }),
        c(C::WatcherRemoved {
            user_id: "erin".into(),
        }),
        c(C::QueueChanged {
            queue: "facilities".into(),
        }),
        c(C::SlaWarning {
            target: crate::SlaTarget::Resolution,
            due_at: minutes(240),
        }),
        c(C::SlaBreached {
            target: crate::SlaTarget::FirstResponse,
            due_at: minutes(60),
        }),
        c(C::Deleted {
            reason: Some("duplicate".into()),
        }),
    ]
}
