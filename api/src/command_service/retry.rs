//! One command on one ticket, decided and appended: first on the cached
//! state (see `cache`), then on fresh loads of the stream, deciding again
//! after each append that lost a race, at most [`MAX_ATTEMPTS`] times.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::{DomainError, Ticket, TicketEvent};
use store::{ExpectedVersion, NewEvent, RecordedEvent, StoreError};
use uuid::Uuid;

use super::idempotency::{check_key, derived_id, event_metadata, previous_result};
use super::{CommandError, CommandOutcome, CommandRequest, CommandService};

/// How often a command is decided again after losing a race for its stream.
pub const MAX_ATTEMPTS: usize = 5;

impl CommandService {
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
            let decided = domain::decide_within(
                &self.limits,
                loaded.state.as_ref(),
                &req.command,
                &req.actor,
                now,
            )?;
            if decided.is_empty() {
                let ticket = loaded.state.ok_or(DomainError::NotFound)?;
                return Ok(CommandOutcome {
                    before: Some(ticket.clone()),
                    ticket,
                    events: vec![],
                    decided: vec![],
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
        let decided = match domain::decide_within(
            &self.limits,
            Some(&*cached.ticket),
            &req.command,
            &req.actor,
            now,
        ) {
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
                hash: place.hash,
            })
            .collect();
        let ticket = decided
            .iter()
            .fold(state.cloned(), domain::evolve)
            .ok_or(DomainError::NotFound)?;
        self.cache
            .put(req.ticket_id, last_version, Arc::new(ticket.clone()));
        Ok(Some(CommandOutcome {
            before: state.cloned(),
            ticket,
            events: recorded,
            decided,
        }))
    }
}
