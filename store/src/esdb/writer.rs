//! Appending to EventStoreDB with this crate's rules: an expected version,
//! and a repeated append (same event ids) answered with the original's
//! result instead of writing twice. The server checks expected versions
//! itself; `Any` appends are sent as the exact version just read, so the
//! ids already stored can be checked first, and are retried when another
//! writer moves the stream in between.

use std::collections::HashSet;

use eventstore::AppendToStreamOptions;
use uuid::Uuid;

use super::translate::{actual_version, event_data, expected_revision, store_error};
use super::EsdbEventStore;
use crate::append::{self, Decision, StoredId};
use crate::{AppendResult, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError};

/// Events per read when a whole stream is searched for ids.
const STREAM_PAGE: usize = 1000;

/// How often an `Any` append re-reads and retries when other writers keep
/// moving the stream between its read and its write.
const ANY_ATTEMPTS: usize = 10;

impl EsdbEventStore {
    /// [`EventStore::append`], logged by the caller.
    pub(super) async fn append_events(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        append::validate(stream, &events)?;
        if stream.starts_with('$') {
            return Err(StoreError::Invalid(format!(
                "stream {stream}: names starting with '$' belong to EventStoreDB"
            )));
        }
        let ids: HashSet<Uuid> = events.iter().map(|e| e.id).collect();
        for _ in 0..ANY_ATTEMPTS {
            // What the server is asked to expect, and where the events go.
            let (sent, first_version) = match expected {
                ExpectedVersion::NoStream => (ExpectedVersion::NoStream, 0),
                ExpectedVersion::Exact(n) => (ExpectedVersion::Exact(n), n + 1),
                ExpectedVersion::Any => {
                    let (stored, current) = self.scan_stream(stream, &ids).await?;
                    if let Decision::AlreadyAppended(result) =
                        append::decide(stream, expected, &events, stored, current)?
                    {
                        return Ok(result);
                    }
                    match current {
                        None => (ExpectedVersion::NoStream, 0),
                        Some(v) => (ExpectedVersion::Exact(v), v + 1),
                    }
                }
            };
            match self.try_append(stream, sent, &events).await? {
                Ok(()) => {
                    return self
                        .read_back(stream, expected, &events, first_version, &ids)
                        .await?
                        .ok_or_else(|| {
                            StoreError::Unavailable(format!(
                                "stream {stream}: the appended events are not at version \
                                 {first_version} when read back"
                            ))
                        });
                }
                // Another writer moved the stream between our read and write.
                Err(_) if expected == ExpectedVersion::Any => continue,
                Err(actual) => {
                    let repeat = self
                        .read_back(stream, expected, &events, first_version, &ids)
                        .await?;
                    return repeat.ok_or(StoreError::Conflict {
                        stream: stream.to_string(),
                        expected,
                        actual,
                    });
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "stream {stream}: other writers kept moving it; gave up after {ANY_ATTEMPTS} tries"
        )))
    }
}

impl EsdbEventStore {
    /// The stored events of `stream` (store name) whose id is among `ids`,
    /// found in versions `from..from + count`.
    async fn stored_ids_in(
        &self,
        stream: &str,
        from: u64,
        count: usize,
        ids: &HashSet<Uuid>,
    ) -> Result<Vec<StoredId>, StoreError> {
        let events = self.read_stream(stream, from, count).await?;
        Ok(stored_ids(&events, ids))
    }

    /// Searches the whole stream for `ids`; also returns its last version.
    async fn scan_stream(
        &self,
        stream: &str,
        ids: &HashSet<Uuid>,
    ) -> Result<(Vec<StoredId>, Option<u64>), StoreError> {
        let (mut stored, mut current, mut from) = (Vec::new(), None, 0);
        loop {
            let page = self.read_stream(stream, from, STREAM_PAGE).await?;
            stored.extend(stored_ids(&page, ids));
            if let Some(last) = page.last() {
                current = Some(last.version);
                from = last.version + 1;
            }
            if page.len() < STREAM_PAGE {
                return Ok((stored, current));
            }
        }
    }

    /// Sends the append with `expected`; `Ok(None)` when the server refused it
    /// as a wrong expected version (with the stream's actual version).
    async fn try_append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<Result<(), Option<u64>>, StoreError> {
        let data = events
            .iter()
            .map(event_data)
            .collect::<Result<Vec<_>, _>>()?;
        let name = self.server_stream(stream);
        let options =
            AppendToStreamOptions::default().expected_revision(expected_revision(expected));
        let outcome = self
            .connection
            .run("append", |client| {
                let (name, options, data) = (name.clone(), options.clone(), data.clone());
                async move { client.append_to_stream(name, &options, data).await }
            })
            .await;
        match outcome {
            Ok(_) => Ok(Ok(())),
            Err(eventstore::Error::WrongExpectedVersion { current, .. }) => {
                Ok(Err(actual_version(current)))
            }
            Err(e) => Err(store_error(e, stream, expected)),
        }
    }

    /// The result of an append of `events` at versions `first_version..`, read
    /// back from the stream (a repeat gets the original's).
    async fn read_back(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        first_version: u64,
        ids: &HashSet<Uuid>,
    ) -> Result<Option<AppendResult>, StoreError> {
        let stored = self
            .stored_ids_in(stream, first_version, events.len(), ids)
            .await?;
        if stored.is_empty() {
            return Ok(None);
        }
        match append::decide(stream, expected, events, stored, None)? {
            Decision::AlreadyAppended(result) => Ok(Some(result)),
            Decision::Write { .. } => Ok(None),
        }
    }
}

/// The events among `events` whose id is in `ids`, as the append rules want them.
fn stored_ids(events: &[RecordedEvent], ids: &HashSet<Uuid>) -> Vec<StoredId> {
    events
        .iter()
        .filter(|e| ids.contains(&e.id))
        .map(|e| StoredId {
            id: e.id,
            stream_id: e.stream_id.clone(),
            version: e.version,
            position: e.position,
            recorded_at: e.recorded_at,
            hash: e.hash.clone(),
        })
        .collect()
}
