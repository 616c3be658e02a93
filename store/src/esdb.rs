//! The EventStoreDB (KurrentDB) backend, on the `eventstore` 4.x gRPC client.
//!
//! # Mapping
//! - One server stream per store stream, named as the store's stream id
//!   (`ticket-<uuid>`, `user-<id>`, `ticket-references`), optionally under a
//!   namespace prefix ([`EsdbEventStore::connect_with_namespace`]) so that several
//!   stores (test runs, or other applications) can share one server, which cannot
//!   be wiped. Names starting with `$` are the server's own and are refused.
//! - Versions are the server's stream revisions (both count from 0), and
//!   [`ExpectedVersion`] maps one to one onto the client's expected revision.
//! - [`Position`] is the server's `$all` position: the same (commit, prepare)
//!   pair, ordered the same way, so a cursor is `"commit-prepare"` (or one number
//!   when both are equal). Reading "after" a position skips the event at it.
//!   Positions of events read from a *stream* are only filled in by servers from
//!   22.10 on, so that is the oldest server this backend supports.
//! - Each event is sent under the store's event id, as JSON, with the schema
//!   version and metadata in its user metadata (`{"schema_version", "metadata"}`).
//! - Reads of `$all` and the subscription keep only this store's events: a
//!   server-side filter on stream names on the subscription (the 4.0.0 client
//!   cannot filter reads, so `read_all` and `head` filter on the client), and a
//!   client-side check of every event on all paths ([`translate`] has both).
//!
//! # Idempotency
//! The contract says an append whose ids are all stored returns the original
//! result and writes nothing. The server alone does not guarantee that: it
//! de-duplicates by event id only while the original events are in its
//! idempotency cache (recent writes; gone after a restart or enough traffic),
//! only in the same stream, and for `Any` only on a best-effort basis. So this
//! backend checks the stream itself:
//! - `NoStream` / `Exact(n)`: the append goes to the server with that expected
//!   revision. When it is refused as a conflict, the events at the versions the
//!   original append would have taken (`0..` or `n+1..`) are read back: if they
//!   carry our ids, this is a repeat and their result is returned; otherwise it
//!   is a conflict. Beyond the server's window a repeat therefore still costs
//!   one extra read, and within it the server answers success and the read-back
//!   below gives the original positions.
//! - `Any`: the whole stream is read first (the application uses `Any` nowhere;
//!   streams are one ticket's history), our ids looked for, and the append is
//!   then made with the revision that read found, retried if another writer got
//!   in between: exact-once without relying on the server's best effort.
//! - Every successful append is read back, because the server's reply carries
//!   one position and the contract wants the first and the last.
//!
//! What this cannot see is an id reused in *another* stream (the server keeps
//! no index by event id), nor, for `NoStream`/`Exact(n)`, an id reused from
//! earlier in the stream by an append whose expected version is right: such
//! appends are written, where the SQL backends refuse them as an idempotency
//! mismatch (so two contract bodies run here in their in-stream form only). Ids here are fresh v4 or
//! derived v5 UUIDs per command, so this only matters to a caller that reuses
//! ids by mistake. The command service's own retry on top of this (it reloads
//! and decides again after a conflict, using new ids only for a new decision)
//! does not depend on the window at all.
//!
//! # Connection
//! The client connects lazily, so [`EsdbEventStore::connect`] needs no server.
//! Lost connections and leader changes are retried with backoff and logged
//! ([`connection`]); the subscription resubscribes from the last event it
//! received for as long as it lives ([`subscription`]).
//!
//! # The rustls trap
//! `eventstore` 4.0.0 installs rustls' aws-lc-rs crypto provider as the process
//! default the first time a client connects, and panics (`expect`) if a
//! provider is installed already. Nothing else in this workspace installs one:
//! sqlx is built without TLS features (keep it so — its `tls-rustls` features
//! would bring rustls in), and reqwest, hyper-rustls and tonic, which come with
//! `eventstore`, pick a provider without installing it. `connect` refuses with
//! [`StoreError::Invalid`] when a provider is already installed before the
//! first client exists, instead of letting the client's connection task panic.
//! `cargo tree -p store -i rustls` lists what depends on rustls.

mod connection;
mod subscription;
mod translate;
mod writer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use eventstore::{ClientSettings, ReadAllOptions, ReadStreamOptions, StreamPosition};
use futures::stream::BoxStream;

use crate::{
    AppendResult, EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent, StoreError,
};
use connection::Connection;
use translate::{
    is_application_event, position_from_server, recorded_event, start_after, store_error,
};

/// Events per read of `$all` (client-side filtered, so some may be dropped).
const ALL_PAGE: usize = 1000;

/// Whether this process has created an `eventstore` client (which installs the
/// rustls crypto provider on first use).
static CLIENT_CREATED: AtomicBool = AtomicBool::new(false);

/// The EventStoreDB event store. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct EsdbEventStore {
    connection: Arc<Connection>,
    /// Prefix of every server stream name of this store ("" for none).
    namespace: Arc<str>,
}

impl EsdbEventStore {
    /// A store on the server at `url` (`esdb://host:2113?tls=false`,
    /// `esdb+discover://cluster.example:2113`, with credentials and settings as
    /// in the client's connection string). Does not connect yet. A connection
    /// string that does not parse is [`StoreError::Invalid`]. Must be called
    /// inside a Tokio runtime, whose tasks will carry the connection.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_namespace(url, "").await
    }

    /// Like [`connect`](Self::connect), with every stream stored as
    /// `{namespace}{stream}` and only those streams visible in `$all`.
    // The url may carry credentials: it is not recorded in the span.
    #[tracing::instrument(skip_all, fields(namespace = %namespace), err)]
    pub async fn connect_with_namespace(url: &str, namespace: &str) -> Result<Self, StoreError> {
        if namespace.starts_with('$') {
            return Err(StoreError::Invalid(format!(
                "namespace {namespace:?}: names starting with '$' belong to EventStoreDB"
            )));
        }
        let settings: ClientSettings = url.parse().map_err(|e| {
            StoreError::Invalid(format!("not an EventStoreDB connection string: {e}"))
        })?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            StoreError::Invalid("the EventStoreDB store needs a Tokio runtime".into())
        })?;
        crypto_provider_check(
            CLIENT_CREATED.load(Ordering::SeqCst),
            rustls::crypto::CryptoProvider::get_default().is_some(),
        )?;
        let connection = Connection::open(settings, runtime)?;
        CLIENT_CREATED.store(true, Ordering::SeqCst);
        Ok(EsdbEventStore {
            connection,
            namespace: namespace.into(),
        })
    }

    fn server_stream(&self, stream: &str) -> String {
        format!("{}{stream}", self.namespace)
    }

    /// Whether an event read from `$all` is one of this store's.
    fn is_ours(&self, event: &eventstore::RecordedEvent) -> bool {
        is_application_event(&event.stream_id, &event.event_type)
            && event.stream_id.starts_with(&*self.namespace)
    }

    /// One forward or backward read of `$all` from `from`, unfiltered.
    async fn read_all_page(
        &self,
        options: ReadAllOptions,
    ) -> Result<Vec<eventstore::RecordedEvent>, StoreError> {
        self.connection
            .run("read_all", |client| {
                let options = options.clone();
                async move {
                    let mut read = client.read_all(&options).await?;
                    let mut events = Vec::new();
                    while let Some(resolved) = read.next().await? {
                        events.extend(resolved.event);
                    }
                    Ok(events)
                }
            })
            .await
            .map_err(|e| store_error(e, "$all", ExpectedVersion::Any))
    }
}

/// Refuses to create the first client when a rustls crypto provider is already
/// installed: `eventstore` 4.0.0 would panic in its connection task.
fn crypto_provider_check(client_created: bool, provider_installed: bool) -> Result<(), StoreError> {
    if provider_installed && !client_created {
        return Err(StoreError::Invalid(
            "a rustls crypto provider is installed already; eventstore 4.0.0 installs its own \
             and would panic (see the store::esdb module docs)"
                .into(),
        ));
    }
    Ok(())
}

#[async_trait]
impl EventStore for EsdbEventStore {
    #[tracing::instrument(skip_all, fields(stream = %stream))]
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        crate::log_append(self.append_events(stream, expected, events).await)
    }

    #[tracing::instrument(skip_all, fields(stream = %stream), err)]
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let name = self.server_stream(stream);
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Position(from_version))
            .max_count(max);
        let events = self
            .connection
            .run("read_stream", |client| {
                let (name, options) = (name.clone(), options.clone());
                async move {
                    let mut read = match client.read_stream(name, &options).await {
                        Err(eventstore::Error::ResourceNotFound) => return Ok(Vec::new()),
                        other => other?,
                    };
                    let mut events = Vec::new();
                    loop {
                        match read.next().await {
                            Ok(Some(resolved)) => events.extend(resolved.event),
                            Ok(None) | Err(eventstore::Error::ResourceNotFound) => {
                                return Ok(events)
                            }
                            Err(e) => return Err(e),
                        }
                    }
                }
            })
            .await
            .map_err(|e| store_error(e, stream, ExpectedVersion::Any))?;
        events
            .iter()
            .map(|e| recorded_event(e, &self.namespace))
            .collect()
    }

    #[tracing::instrument(skip_all, fields(after = %after), err)]
    async fn read_all(
        &self,
        after: Position,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut out = Vec::new();
        let mut last = after;
        while out.len() < max {
            let options = ReadAllOptions::default()
                .position(start_after(last))
                .forwards()
                .max_count(ALL_PAGE);
            let page = self.read_all_page(options).await?;
            let full = page.len() == ALL_PAGE;
            for event in &page {
                let position = position_from_server(event.position);
                // The read starts *at* `last`, which the caller has seen.
                if position <= last {
                    continue;
                }
                last = position;
                if self.is_ours(event) {
                    out.push(recorded_event(event, &self.namespace)?);
                    if out.len() == max {
                        break;
                    }
                }
            }
            if !full {
                break;
            }
        }
        Ok(out)
    }

    #[tracing::instrument(skip_all, err)]
    async fn head(&self) -> Result<Position, StoreError> {
        let mut from = StreamPosition::End;
        let mut seen: Option<Position> = None;
        loop {
            let options = ReadAllOptions::default()
                .position(from)
                .backwards()
                .max_count(ALL_PAGE);
            let page = self.read_all_page(options).await?;
            let full = page.len() == ALL_PAGE;
            for event in &page {
                let position = position_from_server(event.position);
                // A backward read from a position includes the event there.
                if seen.is_some_and(|seen| position >= seen) {
                    continue;
                }
                if self.is_ours(event) {
                    return Ok(position);
                }
                seen = Some(position);
            }
            match seen {
                Some(oldest) if full => {
                    from = StreamPosition::Position(translate::position_to_server(oldest))
                }
                _ => return Ok(Position::START),
            }
        }
    }

    fn subscribe_all(
        &self,
        after: Position,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        subscription::catch_up(self.connection.clone(), self.namespace.to_string(), after)
    }
}

#[cfg(test)]
mod tests;
