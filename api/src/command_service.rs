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

mod cache;
mod locks;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::{Actor, Command, DomainError, RelatedTicket, Ticket, TicketEvent};
use serde_json::json;
use store::{EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError};
use uuid::Uuid;

use crate::references::ReferenceAllocator;
use cache::TicketCache;
use locks::TicketLocks;

/// How often a command is decided again after losing a race for its stream.
pub const MAX_ATTEMPTS: usize = 5;

/// Longest idempotency key, in bytes: every event of the command stores it
/// in its metadata.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 200;

/// A key over [`MAX_IDEMPOTENCY_KEY_BYTES`] is the client's mistake.
fn check_key(key: Option<&str>) -> Result<(), CommandError> {
    match key {
        Some(key) if key.len() > MAX_IDEMPOTENCY_KEY_BYTES => {
            Err(CommandError::Domain(DomainError::Invalid(format!(
                "idempotencyKey may be at most {MAX_IDEMPOTENCY_KEY_BYTES} bytes (got {})",
                key.len()
            ))))
        }
        _ => Ok(()),
    }
}

/// Namespace of the v5 UUIDs derived from idempotency keys.
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x6c1e_2b9a_4f0d_4e7b_9a51_0b8e_0f2d_7c31);

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

/// What a command did.
#[derive(Debug, Clone)]
pub struct CommandOutcome {
    /// The ticket after the command (unchanged when nothing was appended).
    pub ticket: Ticket,
    /// The events this command appended, in order; empty when it changed nothing.
    pub events: Vec<RecordedEvent>,
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

/// A ticket's stream, loaded and folded.
#[derive(Debug, Clone, Default)]
pub struct LoadedTicket {
    pub events: Vec<RecordedEvent>,
    pub decoded: Vec<TicketEvent>,
    pub state: Option<Ticket>,
}

impl LoadedTicket {
    /// The stream's current version, `None` when it has no event.
    pub fn version(&self) -> Option<u64> {
        self.events.last().map(|e| e.version)
    }
}

#[derive(Clone)]
pub struct CommandService {
    store: Arc<dyn EventStore>,
    references: Arc<ReferenceAllocator>,
    cache: Arc<TicketCache>,
    locks: Arc<TicketLocks>,
}

impl CommandService {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        let references = Arc::new(ReferenceAllocator::new(store.clone()));
        CommandService {
            store,
            references,
            cache: Arc::new(TicketCache::new()),
            locks: Arc::new(TicketLocks::default()),
        }
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
        let events =
            store::read_whole_stream(&*self.store, &domain::stream_name(ticket_id)).await?;
        let decoded = events
            .iter()
            .map(decode_recorded)
            .collect::<Result<Vec<_>, _>>()?;
        let state = domain::fold(&decoded);
        Ok(LoadedTicket {
            events,
            decoded,
            state,
        })
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
            domain::decide(None, &probe, &actor, now)?;
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

    #[tracing::instrument(
        name = "execute command",
        skip_all,
        fields(ticket_id = %req.ticket_id, command = req.command.name(), actor = %req.actor.user_id),
        err(level = "debug")
    )]
    pub async fn execute_at(
        &self,
        req: CommandRequest,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError> {
        check_key(req.idempotency_key.as_deref())?;
        let stream = domain::stream_name(req.ticket_id);
        let _turn = self.locks.turn(req.ticket_id).await;
        if let Some(done) = self.execute_on_cached(&req, &stream, now).await? {
            return Ok(done);
        }
        for _attempt in 0..MAX_ATTEMPTS {
            let loaded = self.load(req.ticket_id).await?;
            if let Some(state) = &loaded.state {
                self.cache
                    .put(req.ticket_id, state.version, Arc::new(state.clone()));
            }
            if let Some(done) = previous_result(&req, &stream, &loaded)? {
                return Ok(done);
            }
            let current = loaded.version();
            if let Some(expected) = req.expected_version {
                if current != Some(expected) {
                    // A ticket the caller may not see answers as one that does
                    // not exist: its version is not theirs to learn.
                    let visible = loaded
                        .state
                        .as_ref()
                        .is_some_and(|ticket| domain::can_see(&req.actor, ticket));
                    if !visible {
                        return Err(DomainError::NotFound.into());
                    }
                    return Err(CommandError::Conflict {
                        expected: Some(expected),
                        actual: current,
                    });
                }
            }
            let decided = domain::decide(loaded.state.as_ref(), &req.command, &req.actor, now)?;
            if decided.is_empty() {
                let ticket = loaded.state.ok_or(DomainError::NotFound)?;
                return Ok(CommandOutcome {
                    ticket,
                    events: vec![],
                });
            }
            let state = loaded.state.as_ref();
            match self.append(&req, &stream, current, state, decided).await {
                Ok(Some(outcome)) => return Ok(outcome),
                Ok(None) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(CommandError::Conflict {
            expected: req.expected_version,
            actual: None,
        })
    }

    /// Decides on the cached state of the ticket, if there is one (see `cache`).
    /// `Ok(None)` when there is none, or when only a fresh load can tell the
    /// answer: the cached state refused the command, found nothing to change or
    /// another version than the caller expects, or the append lost a race.
    async fn execute_on_cached(
        &self,
        req: &CommandRequest,
        stream: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<CommandOutcome>, CommandError> {
        // A keyed call must first look for its earlier events in the stream.
        if req.idempotency_key.is_some() {
            return Ok(None);
        }
        let Some(cached) = self.cache.get(req.ticket_id) else {
            return Ok(None);
        };
        if req
            .expected_version
            .is_some_and(|expected| expected != cached.version)
        {
            return Ok(None);
        }
        let decided = match domain::decide(Some(&*cached.ticket), &req.command, &req.actor, now) {
            Ok(decided) if !decided.is_empty() => decided,
            _ => return Ok(None),
        };
        let version = Some(cached.version);
        let outcome = self
            .append(req, stream, version, Some(&*cached.ticket), decided)
            .await;
        if !matches!(outcome, Ok(Some(_))) {
            self.cache.forget(req.ticket_id);
        }
        outcome
    }

    /// Appends decided events; `Ok(None)` means "lost a race, decide again".
    /// `state` is the ticket as of stream version `version` (`None`: no stream).
    async fn append(
        &self,
        req: &CommandRequest,
        stream: &str,
        version: Option<u64>,
        state: Option<&Ticket>,
        decided: Vec<TicketEvent>,
    ) -> Result<Option<CommandOutcome>, CommandError> {
        let expected = match version {
            None => ExpectedVersion::NoStream,
            Some(v) => ExpectedVersion::Exact(v),
        };
        let first_version = version.map_or(0, |v| v + 1);
        let new_events: Vec<NewEvent> = decided
            .iter()
            .enumerate()
            .map(|(i, event)| {
                let encoded = domain::encode(event);
                let id = match &req.idempotency_key {
                    Some(key) => derived_id(&req.actor.user_id, key, stream, i),
                    None => Uuid::new_v4(),
                };
                NewEvent {
                    id,
                    event_type: encoded.event_type.to_string(),
                    schema_version: encoded.schema_version,
                    data: encoded.data,
                    metadata: event_metadata(req, first_version + i as u64),
                }
            })
            .collect();
        // The store takes the events; keep them to return them as recorded.
        let sent = new_events.clone();
        let appended = match self.store.append(stream, expected, new_events).await {
            Ok(appended) => appended,
            Err(StoreError::Conflict { actual, .. }) => {
                if req.expected_version.is_some() {
                    return Err(CommandError::Conflict {
                        expected: req.expected_version,
                        actual,
                    });
                }
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        if appended.events.len() != sent.len() {
            return Err(StoreError::Corrupt(format!(
                "the store recorded {} events in {stream} for an append of {}",
                appended.events.len(),
                sent.len()
            ))
            .into());
        }
        let last_version = first_version + decided.len() as u64 - 1;
        if appended.last_version != last_version {
            // A repeat of an append made elsewhere, at other versions (a keyed
            // call racing its own retry): the state decided on is not the
            // stream's, so decide again on a fresh load, which finds it.
            return Ok(None);
        }
        // What the store answered is what reading the stream back would give.
        let recorded = sent
            .into_iter()
            .zip(appended.events)
            .zip(first_version..)
            .map(|((event, place), version)| RecordedEvent {
                id: event.id,
                position: place.position,
                stream_id: stream.to_string(),
                version,
                event_type: event.event_type,
                schema_version: event.schema_version,
                data: event.data,
                metadata: event.metadata,
                recorded_at: place.recorded_at,
            })
            .collect();
        let ticket = decided
            .iter()
            .fold(state.cloned(), domain::evolve)
            .ok_or(DomainError::NotFound)?;
        self.cache
            .put(req.ticket_id, last_version, Arc::new(ticket.clone()));
        Ok(Some(CommandOutcome {
            ticket,
            events: recorded,
        }))
    }
}

/// When the stream already holds the events of this idempotency key, the first
/// call's outcome (rebuilt from the log); an error when the key served another
/// command.
fn previous_result(
    req: &CommandRequest,
    stream: &str,
    loaded: &LoadedTicket,
) -> Result<Option<CommandOutcome>, CommandError> {
    let Some(key) = &req.idempotency_key else {
        return Ok(None);
    };
    let first_id = derived_id(&req.actor.user_id, key, stream, 0);
    let Some(start) = loaded.events.iter().position(|e| e.id == first_id) else {
        return Ok(None);
    };
    let stored_command = loaded.events[start].metadata["command"]
        .as_str()
        .unwrap_or("");
    if stored_command != req.command.name() {
        return Err(CommandError::KeyReused(stored_command.to_string()));
    }
    let mut events = Vec::new();
    for (i, event) in loaded.events[start..].iter().enumerate() {
        if event.id != derived_id(&req.actor.user_id, key, stream, i) {
            break;
        }
        events.push(event.clone());
    }
    let upto = start + events.len();
    let ticket = domain::fold(&loaded.decoded[..upto]).ok_or(DomainError::NotFound)?;
    Ok(Some(CommandOutcome { ticket, events }))
}

/// Decodes a stored event of a ticket stream.
pub fn decode_recorded(e: &RecordedEvent) -> Result<TicketEvent, StoreError> {
    domain::decode(&e.event_type, e.schema_version, &e.data).map_err(|err| {
        StoreError::Corrupt(format!(
            "event {} at position {} ({} v{}): {err}",
            e.id, e.position, e.event_type, e.schema_version
        ))
    })
}

fn event_metadata(req: &CommandRequest, version: u64) -> serde_json::Value {
    let mut meta = match &req.metadata {
        serde_json::Value::Object(m) => m.clone(),
        _ => serde_json::Map::new(),
    };
    meta.insert("command".into(), json!(req.command.name()));
    meta.insert("actor".into(), json!(req.actor.user_id));
    meta.insert("version".into(), json!(version));
    if let Some(key) = &req.idempotency_key {
        meta.insert("idempotencyKey".into(), json!(key));
    }
    serde_json::Value::Object(meta)
}

/// A deterministic id for the `index`-th event a keyed call writes to `scope`.
pub fn derived_id(actor: &str, key: &str, scope: &str, index: usize) -> Uuid {
    // Lengths prefix each part so ("a:b", "c") and ("a", "b:c") cannot collide.
    let name = format!(
        "{}:{actor}|{}:{key}|{}:{scope}|{index}",
        actor.len(),
        key.len(),
        scope.len()
    );
    Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, name.as_bytes())
}
