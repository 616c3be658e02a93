//! The command path: load the ticket's stream, decide, append with the loaded
//! version. Everything a mutation does goes through [`CommandService::execute`].
//!
//! - Optimistic concurrency: when the caller names an `expected_version` a stale one
//!   is a [`CommandError::Conflict`]; when it does not, a conflict on append means
//!   somebody else wrote in between, so the service reloads, decides again and
//!   retries, at most [`MAX_ATTEMPTS`] times.
//! - Idempotency: with an idempotency key the event ids are derived from
//!   (actor, key, stream, index), so a retried call finds its own events already in
//!   the stream and returns them instead of deciding again; the store would refuse
//!   to write them twice anyway.
//! - Cached states (see `cache`): a command without an idempotency key is first
//!   decided on the state this service last saw of the ticket, and only reloads
//!   when that turns out stale.
//!
//! Here: the request, outcome and error types, and the service's entry
//! points (create, execute, relations on both tickets). `retry`: deciding
//! and appending one command, on the cached state and then on fresh loads.
//! `idempotency`: derived event ids, the key's limit, finding a keyed call's
//! earlier events, and the metadata stored with each event. `cache`: the
//! folded states. `locks`: commands on one ticket take turns. A stream is
//! loaded by `ticket_stream`.

mod cache;
mod idempotency;
mod locks;
mod retry;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::{Actor, Command, DomainError, RelatedTicket, Step, Ticket, TicketEvent, TicketLimits};
use serde_json::json;
use store::{EventStore, RecordedEvent, StoreError};
use uuid::Uuid;

use crate::references::ReferenceAllocator;
use cache::TicketCache;
use idempotency::check_key;
use locks::TicketLocks;

pub use idempotency::{check_key_length, derived_id, MAX_IDEMPOTENCY_KEY_BYTES};
pub use retry::MAX_ATTEMPTS;
pub use ticket_stream::LoadedTicket;

/// One command as a caller hands it over.
#[derive(Debug, Clone)]
pub struct CommandRequest {
    pub ticket_id: Uuid,
    pub command: Command,
    pub actor: Actor,
    /// Optimistic concurrency: the ticket version the caller last saw.
    pub expected_version: Option<u64>,
    /// A retried call with the same key (and actor) appends nothing and returns
    /// the first call's events.
    pub idempotency_key: Option<String>,
    /// Free-form metadata stored with every event (correlation id, reason...).
    pub metadata: serde_json::Value,
}

impl CommandRequest {
    pub fn new(ticket_id: Uuid, command: Command, actor: Actor) -> Self {
        CommandRequest {
            ticket_id,
            command,
            actor,
            expected_version: None,
            idempotency_key: None,
            metadata: json!({}),
        }
    }
}

/// What a command did: the state it was decided on, the events it recorded
/// and the state they lead to, so a caller can answer without reading the
/// stream again.
#[derive(Debug, Clone)]
pub struct CommandOutcome {
    /// The ticket the events apply to (`None` for a creation).
    pub before: Option<Ticket>,
    /// The ticket after the command (unchanged when nothing was appended).
    pub ticket: Ticket,
    /// The events this command appended, in order, with their positions;
    /// empty when it changed nothing.
    pub events: Vec<RecordedEvent>,
    /// The same events, one for one, as the domain decided them.
    pub decided: Vec<TicketEvent>,
}

impl CommandOutcome {
    /// The command's last event with the step it made (the ticket right
    /// before and after it, and the changes): the same step
    /// `domain::step_at` finds in the stream at that event's version.
    pub fn last_step(&self) -> Option<(RecordedEvent, TicketEvent, Step)> {
        let (last, earlier) = self.decided.split_last()?;
        let recorded = self.events.last()?;
        let before = earlier.iter().fold(self.before.clone(), domain::evolve);
        let after = domain::evolve(before.clone(), last)?;
        let step = Step {
            version: after.version,
            changes: domain::diff(before.as_ref(), &after),
            before,
            after,
        };
        Some((recorded.clone(), last.clone(), step))
    }
}

/// Why a command was not carried out. Nothing was appended in every case.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The domain refused the command (not found, forbidden, invalid, deleted...).
    /// A client's mistake: report `code()` and the message.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The ticket moved on since the version the caller gave, or the stream stayed
    /// contended through every retry. The client should reload and try again.
    #[error("the ticket changed concurrently (it is at version {actual:?}, expected {expected:?}); reload and retry")]
    Conflict {
        expected: Option<u64>,
        actual: Option<u64>,
    },
    /// The idempotency key was used before for a different command.
    #[error("idempotency key already used for a different command ({0})")]
    KeyReused(String),
    /// The store failed or holds data this version cannot read. Not the client's
    /// fault: log the detail, answer with a generic error.
    #[error("event store: {0}")]
    Store(#[from] StoreError),
}

impl CommandError {
    /// The contract's `errorCode`.
    pub fn code(&self) -> &'static str {
        match self {
            CommandError::Domain(e) => e.code(),
            CommandError::Conflict { .. } => "CONFLICT",
            CommandError::KeyReused(_) => "INVALID",
            CommandError::Store(_) => "INTERNAL",
        }
    }
}

#[derive(Clone)]
pub struct CommandService {
    store: Arc<dyn EventStore>,
    references: Arc<ReferenceAllocator>,
    cache: Arc<TicketCache>,
    locks: Arc<TicketLocks>,
    /// What one ticket may hold; commands are decided within these caps.
    limits: TicketLimits,
}

impl CommandService {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        let references = Arc::new(ReferenceAllocator::new(store.clone()));
        CommandService {
            store,
            references,
            cache: Arc::new(TicketCache::new()),
            locks: Arc::new(TicketLocks::default()),
            limits: TicketLimits::default(),
        }
    }

    /// Decides commands within `limits` instead of the defaults.
    pub fn with_limits(mut self, limits: TicketLimits) -> Self {
        self.limits = limits;
        self
    }

    /// What one ticket may hold here.
    pub fn limits(&self) -> &TicketLimits {
        &self.limits
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    pub fn references(&self) -> &ReferenceAllocator {
        &self.references
    }

    /// Reads and folds a ticket's whole stream.
    #[tracing::instrument(name = "load ticket", skip_all, fields(ticket_id = %ticket_id), err)]
    pub async fn load(&self, ticket_id: Uuid) -> Result<LoadedTicket, StoreError> {
        Ok(ticket_stream::load(&*self.store, ticket_id).await?)
    }

    /// Creates a ticket: allocates its human reference, then appends `Created`.
    /// With an idempotency key the ticket id itself is derived from the key, so a
    /// retried create finds the first one.
    #[allow(clippy::too_many_arguments)]
    // each is one field of the contract's input
    // Failures at debug: a refusal or a conflict is the client's answer, and a
    // store failure is logged at ERROR where it becomes an INTERNAL answer.
    #[tracing::instrument(name = "create ticket", skip_all, fields(actor = %actor.user_id), err(level = "debug"))]
    pub async fn create(
        &self,
        actor: Actor,
        request: String,
        description: Option<String>,
        priority: domain::TicketPriority,
        queue: String,
        tags: Vec<String>,
        idempotency_key: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError> {
        check_key(idempotency_key.as_deref())?;
        let ticket_id = match &idempotency_key {
            Some(key) => derived_id(&actor.user_id, key, "create", 0),
            None => Uuid::new_v4(),
        };
        // Validate before burning a reference number on a command that will fail.
        let probe = Command::Create {
            ticket_id,
            reference: "TCK-000000".into(),
            request: request.clone(),
            description: description.clone(),
            priority,
            queue: queue.clone(),
            tags: tags.clone(),
        };
        let loaded = self.load(ticket_id).await?;
        if loaded.state.is_none() {
            domain::decide_within(&self.limits, None, &probe, &actor, now)?;
        }
        let reference = match &loaded.state {
            Some(t) => t.reference.clone(),
            None => {
                let reservation_id = idempotency_key
                    .as_ref()
                    .map(|key| derived_id(&actor.user_id, key, "reference", 0));
                self.references.reserve(ticket_id, reservation_id).await?
            }
        };
        let command = Command::Create {
            ticket_id,
            reference,
            request,
            description,
            priority,
            queue,
            tags,
        };
        let mut req = CommandRequest::new(ticket_id, command, actor);
        req.idempotency_key = idempotency_key;
        self.execute_at(req, now).await
    }

    /// What `actor` finds when they look up `ticket_id` as the other ticket of
    /// a relation: the `related` fact that [`Command::Relate`] and
    /// [`Command::Unrelate`] carry.
    pub async fn related_ticket(
        &self,
        actor: &Actor,
        ticket_id: Uuid,
    ) -> Result<RelatedTicket, StoreError> {
        let loaded = self.load(ticket_id).await?;
        Ok(domain::related_ticket(actor, loaded.state.as_ref()))
    }

    /// Executes a command on an existing ticket (or `Create` with a known id).
    /// Relating and unrelating are recorded on both tickets.
    pub async fn execute(&self, req: CommandRequest) -> Result<CommandOutcome, CommandError> {
        let now = Utc::now();
        let relation = match &req.command {
            Command::Relate {
                related_id,
                related,
            }
            | Command::Unrelate {
                related_id,
                related,
            } => Some((*related_id, related)),
            _ => None,
        };
        match relation {
            Some((related_id, related)) => {
                // A deleted ticket takes no command, so unrelating from one
                // leaves its side as is.
                let mirrored = !matches!(related, RelatedTicket::Deleted { .. });
                self.execute_relation(req, related_id, mirrored, now).await
            }
            None => self.execute_at(req, now).await,
        }
    }

    /// A relation is recorded on both tickets: first on the one the caller named,
    /// then (when `mirrored`) the mirror on `related_id`. The two appends are
    /// separate (streams are the unit of atomicity); when the mirror fails,
    /// repeating the call repairs it, since the first half is then a no-op.
    async fn execute_relation(
        &self,
        req: CommandRequest,
        related_id: Uuid,
        mirrored: bool,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError> {
        let ticket_id = req.ticket_id;
        let mut mirror = CommandRequest::new(related_id, req.command.clone(), req.actor.clone());
        mirror.idempotency_key = req.idempotency_key.clone();
        mirror.metadata = req.metadata.clone();
        if mirrored && matches!(req.command, Command::Relate { .. }) {
            self.check_mirror(&req, related_id, now).await?;
        }
        let outcome = self.execute_at(req, now).await?;
        if mirrored {
            // The mirror relates the ticket just decided on, as the actor finds it now.
            let related = domain::related_ticket(&mirror.actor, Some(&outcome.ticket));
            mirror.command = match mirror.command {
                Command::Relate { .. } => Command::Relate {
                    related_id: ticket_id,
                    related,
                },
                _ => Command::Unrelate {
                    related_id: ticket_id,
                    related,
                },
            };
            self.execute_at(mirror, now).await?;
        }
        Ok(outcome)
    }

    /// Before a relation is recorded on the first ticket: whether its mirror
    /// would be refused on the other (one at its cap of related tickets), so
    /// that a refusal leaves neither side changed. Only asked when the first
    /// side itself would be accepted, so its own refusal comes first.
    async fn check_mirror(
        &self,
        req: &CommandRequest,
        related_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), CommandError> {
        let this = self.load(req.ticket_id).await?;
        let limits = &self.limits;
        let first =
            domain::decide_within(limits, this.state.as_ref(), &req.command, &req.actor, now);
        if first.is_err() {
            return Ok(());
        }
        let other = self.load(related_id).await?;
        let mirror = Command::Relate {
            related_id: req.ticket_id,
            related: domain::related_ticket(&req.actor, this.state.as_ref()),
        };
        domain::decide_within(limits, other.state.as_ref(), &mirror, &req.actor, now)?;
        Ok(())
    }
}
