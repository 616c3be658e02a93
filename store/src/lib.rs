//! # Layout
//! The event store: the only source of truth. Everything else is derived from it.
//!
//! - [`EventStore`] (this file): the one trait every backend implements — append
//!   with an expected version, read a stream, read the global log, and a catch-up
//!   subscription to the global log (see [`subscription`]).
//! - [`Position`], [`ExpectedVersion`], [`NewEvent`], [`RecordedEvent`],
//!   [`AppendResult`], [`AppendedEvent`], [`StoreError`]: the vocabulary shared by all backends.
//! - `sqlite`: the embedded default (a file, WAL mode, one writer at a time).
//! - `postgres`: production; gap-free global order through a transaction-scoped
//!   advisory lock around position assignment, `LISTEN/NOTIFY` wake-ups;
//!   `postgres::broadcast`, short messages of other topics between the
//!   processes of one store (presence), in no table.
//! - `esdb`: EventStoreDB/KurrentDB, one server stream per stream, filtered `$all`.
//! - `subscription`: the catch-up subscription shared by the SQL backends
//!   (replay from a position, then follow live on wake-ups).
//! - `contract`: the behaviour every backend must show, as async test bodies that
//!   each backend's tests run.
//! - `chain`: tamper evidence, each event's hash chained to its stream's
//!   previous one (the canonical encoding, and the fill of a log written before
//!   hashes existed).
//! - `migrations`: the embedded schema of each SQL backend ([`SQLITE_MIGRATOR`],
//!   [`POSTGRES_MIGRATOR`]), public so read models can share the database.
//! - `append` (private): the append rules both SQL backends apply under their
//!   writer lock — validation, idempotent repeats, expected versions.
//! - `row` (private): stored rows back into [`RecordedEvent`]s; anything malformed
//!   becomes [`StoreError::Corrupt`], never a panic.
//!
//! Stream versions start at 0: the first event of a stream has version 0, so a
//! ticket is at version 0 right after its creation (as the GraphQL contract says).

mod append;
mod append_queue;
pub mod chain;
#[doc(hidden)]
pub mod contract;
pub mod esdb;
mod migrations;
pub mod postgres;
mod row;
pub mod sqlite;
pub mod subscription;

pub use migrations::{postgres_migrator, sqlite_migrator, POSTGRES_MIGRATOR, SQLITE_MIGRATOR};
pub use postgres::PostgresEventStore;
pub use sqlite::SqliteEventStore;

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use uuid::Uuid;

/// A place in the global log. Opaque to clients (they see [`Position::to_cursor`]).
///
/// SQL backends use one sequence number (`commit == prepare`); EventStoreDB has a
/// commit and a prepare position. Ordering is by commit, then prepare.
/// [`Position::START`] lies before every stored event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    pub commit: u64,
    pub prepare: u64,
}

impl Position {
    /// Before the first event: reading "after START" reads the whole log.
    pub const START: Position = Position {
        commit: 0,
        prepare: 0,
    };

    /// A position of a single-sequence (SQL) backend.
    pub const fn from_sequence(seq: u64) -> Self {
        Position {
            commit: seq,
            prepare: seq,
        }
    }

    /// The cursor clients pass back as `after`: `"42"` for SQL backends,
    /// `"commit-prepare"` where the two differ.
    pub fn to_cursor(&self) -> String {
        if self.commit == self.prepare {
            self.commit.to_string()
        } else {
            format!("{}-{}", self.commit, self.prepare)
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_cursor())
    }
}

/// A cursor that is not one this store hands out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a valid log position")]
pub struct InvalidPosition(pub String);

impl FromStr for Position {
    type Err = InvalidPosition;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidPosition(s.to_string());
        let s = s.trim();
        match s.split_once('-') {
            None => s
                .parse::<u64>()
                .map(Position::from_sequence)
                .map_err(|_| bad()),
            Some((c, p)) => Ok(Position {
                commit: c.parse().map_err(|_| bad())?,
                prepare: p.parse().map_err(|_| bad())?,
            }),
        }
    }
}

/// What the writer believes about the stream it appends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the stream's state.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have exactly this version.
    Exact(u64),
}

/// An event to append. `id` makes the append idempotent: appending events whose ids
/// are all stored already returns the original [`AppendResult`] and writes nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub id: Uuid,
    /// Stable type name, e.g. `TicketCreated`.
    pub event_type: String,
    /// Version of the payload's shape; decoders upcast older ones.
    pub schema_version: i32,
    pub data: serde_json::Value,
    pub metadata: serde_json::Value,
}

/// An event as stored, with its place in its stream and in the global log.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub id: Uuid,
    pub position: Position,
    pub stream_id: String,
    /// The stream version this event produced (0 for the first event).
    pub version: u64,
    pub event_type: String,
    pub schema_version: i32,
    pub data: serde_json::Value,
    pub metadata: serde_json::Value,
    pub recorded_at: DateTime<Utc>,
    /// SHA-256 chaining this event to its stream's previous one, in hex (see
    /// [`chain`]). Empty on EventStoreDB, which does not store one.
    pub hash: String,
}

/// What an append did (or, for a repeated append, what the original one did).
///
/// It carries everything [`RecordedEvent`] adds to a [`NewEvent`], so a caller
/// that wants its events as stored need not read them back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendResult {
    /// Version of the last event appended: the stream's new current version.
    pub last_version: u64,
    /// Global position of the first and last event appended.
    pub first_position: Position,
    pub last_position: Position,
    /// One per event of the append, in order: where it is in the global log and
    /// when it was recorded, exactly as [`EventStore::read_stream`] returns them.
    pub events: Vec<AppendedEvent>,
}

/// Where one appended event went, when it was recorded, and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendedEvent {
    pub position: Position,
    pub recorded_at: DateTime<Utc>,
    /// As [`RecordedEvent::hash`].
    pub hash: String,
}

/// Errors of the event store. Callers branch on the variant, never on a message.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Optimistic concurrency: the stream is not at the expected version. Reload the
    /// stream, decide again and retry (the command service does so when the client
    /// gave no expected version), or report a conflict to the client.
    #[error("stream {stream} is at version {actual:?}, expected {expected:?}")]
    Conflict {
        stream: String,
        expected: ExpectedVersion,
        /// `None` when the stream does not exist.
        actual: Option<u64>,
    },
    /// Some, but not all, of the event ids of an append are stored already, or they
    /// are stored in another stream: the caller reused ids for different events.
    /// A caller bug; do not retry.
    #[error("event ids reused for a different append in stream {stream}: {detail}")]
    IdempotencyMismatch { stream: String, detail: String },
    /// The caller handed over something the store cannot take (empty append, bad
    /// stream name...). Do not retry.
    #[error("invalid request to the event store: {0}")]
    Invalid(String),
    /// The stream was deleted in the store itself (EventStoreDB tombstones).
    #[error("stream {0} is deleted")]
    StreamDeleted(String),
    /// The store cannot be reached or failed; retrying later may succeed.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    /// The store could not be opened: a database file that cannot be created or
    /// written, a server that refuses the connection. The message names what
    /// was tried and why it failed; the configuration needs fixing before a
    /// retry. (A server nobody answers at is `Unavailable`.)
    #[error("{0}")]
    Open(String),
    /// A stored row could not be read back (corrupt data); a bug or tampering.
    #[error("corrupt stored event: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    /// The database failed or could not be reached, except for a value that came
    /// back from a query but does not decode: that is a stored row gone bad, and
    /// retrying will not help.
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(e.to_string())
            }
            _ => StoreError::Unavailable(e.to_string()),
        }
    }
}

/// Logs a failed append in the current span at the level it deserves: a
/// conflict is an expected outcome of optimistic concurrency, which the caller
/// resolves (it decides again, or answers its client), so it is debug; any
/// other failure is an error.
pub(crate) fn log_append<T>(result: Result<T, StoreError>) -> Result<T, StoreError> {
    match &result {
        Err(e @ StoreError::Conflict { .. }) => tracing::debug!(error = %e, "append conflict"),
        Err(e) => tracing::error!(error = %e, "append failed"),
        Ok(_) => {}
    }
    result
}

/// The one interface over every backend.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` atomically (all or none) if the stream is at
    /// `expected`. Idempotent on event ids (see [`NewEvent`]).
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError>;

    /// Up to `max` events of `stream` with version >= `from_version`, in version
    /// order. An unknown stream reads as empty.
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `max` events of the global log strictly after `after`, in position
    /// order. Never skips an event that a later read would return before the last
    /// one returned here (gap-free order).
    async fn read_all(&self, after: Position, max: usize)
        -> Result<Vec<RecordedEvent>, StoreError>;

    /// The position of the last event in the log (`START` when empty).
    async fn head(&self) -> Result<Position, StoreError>;

    /// Catch-up subscription: every event strictly after `after`, replayed from the
    /// log, then live as events are appended, without gap or duplicate. The stream
    /// ends only on an error item (after which the caller resubscribes from the
    /// last position it processed).
    fn subscribe_all(
        &self,
        after: Position,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>>;
}

/// Reads a whole stream (all versions), in pages.
pub async fn read_whole_stream(
    store: &dyn EventStore,
    stream: &str,
) -> Result<Vec<RecordedEvent>, StoreError> {
    const PAGE: usize = 1000;
    let mut out = Vec::new();
    loop {
        let from = out.len() as u64;
        let page = store.read_stream(stream, from, PAGE).await?;
        let n = page.len();
        out.extend(page);
        if n < PAGE {
            return Ok(out);
        }
    }
}
