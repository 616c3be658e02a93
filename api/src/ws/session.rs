//! One socket's life, for both subprotocols: wait for `connection_init` (at
//! most the configured time), authenticate it, then run operations until the
//! client leaves, breaks the protocol, its token expires or the server shuts
//! down. Everything happens in the socket's one task: a `select!` over the
//! socket, the operations' results, one deadline (initialisation, then token
//! expiry), the keep-alive tick and the shutdown signal.
//!
//! Every exit path goes through [`Session::close`] or [`Session::gone`], and
//! every count (open sockets, the user's slot, live operations) is a guard
//! dropped with the session, so none is left behind.

use std::time::Duration;

use async_graphql::ServerError;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use tokio::time::{Instant, Interval};
use tracing::Instrument;

use super::answers::{
    close_reason, coded_error, is_request_error, TOO_MANY_OPERATIONS, TOO_MANY_SOCKETS,
};
use super::messages::{socket_token, Incoming, Subprotocol};
use super::operations::{Matched, Operations, Outcome};
use super::timers::{expiry, keepalive_interval, tick};
use super::transport_ws::close;
use super::{legacy_ws, transport_ws};
use crate::auth::Viewer;
use crate::graphql::Authentication;
use crate::metrics::{Held, Metrics};
use crate::presence::SocketPresence;
use crate::sockets::{OpenSocket, UserSlot};
use crate::state::AppState;

/// How long a closing socket waits for the client's close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Close code of a shutting-down server (RFC 6455 "going away").
const GOING_AWAY: u16 = 1001;

/// Serves one upgraded socket until it closes.
pub(super) async fn run(
    socket: WebSocket,
    state: AppState,
    protocol: Subprotocol,
    header_token: Option<String>,
) {
    let span = tracing::info_span!(
        "socket",
        protocol = protocol.name(),
        user = tracing::field::Empty
    );
    let open = (
        state.sockets.open(),
        Metrics::hold(&state.ctx.metrics, |m| &m.open_sockets),
    );
    let presence = state.ctx.presence.socket();
    let session = Session {
        socket,
        state,
        protocol,
        header_token,
        ready: None,
        ops: Operations::default(),
        presence,
        _open: open,
    };
    session.serve().instrument(span).await
}

/// Fields drop in this order: the socket, then the user's slot (in `ready`),
/// the operations, the presence set over the socket, and last the
/// open-socket counts, so a socket counted as closed has given everything
/// back.
struct Session {
    socket: WebSocket,
    state: AppState,
    protocol: Subprotocol,
    header_token: Option<String>,
    /// Set once `connection_init` is acknowledged.
    ready: Option<Box<Ready>>,
    ops: Operations,
    /// Presence set by mutations over this socket ends with it.
    presence: SocketPresence,
    _open: (OpenSocket, Held),
}

struct Ready {
    viewer: Viewer,
    _slot: UserSlot,
}

/// What the session does next.
enum Step {
    Continue,
    /// `connection_init` was acknowledged; the token expires at `expires`.
    Acknowledged {
        expires: Instant,
    },
    /// Close with this code and reason.
    Close(u16, String),
    /// The client left (or the connection broke).
    Gone,
}

impl Session {
    async fn serve(mut self) {
        let shutdown = self.state.ctx.shutdown.clone();
        let settings = self.state.ctx.settings.clone();
        let deadline = tokio::time::sleep(Duration::from_millis(settings.ws_init_timeout_ms));
        tokio::pin!(deadline);
        let mut keepalive: Option<Interval> = None;
        loop {
            // The handlers' futures are boxed, each only while it runs:
            // inline, the biggest of them would be part of this loop's state,
            // which every idle socket's task carries.
            let step = tokio::select! {
                () = shutdown.cancelled() => Step::Close(GOING_AWAY, "server shutting down".into()),
                () = &mut deadline => Box::pin(self.on_deadline()).await,
                () = tick(&mut keepalive) => Box::pin(self.on_keepalive()).await,
                Some(outcome) = self.ops.results.next(), if !self.ops.results.is_empty() => {
                    Box::pin(self.on_outcome(outcome)).await
                }
                frame = self.socket.recv() => Box::pin(self.on_frame(frame)).await,
            };
            match step {
                Step::Continue => {}
                Step::Acknowledged { expires } => {
                    deadline.as_mut().reset(expires);
                    keepalive = keepalive_interval(settings.ws_keepalive_ms);
                }
                Step::Close(code, reason) => return Box::pin(self.close(code, reason)).await,
                Step::Gone => return Box::pin(self.gone()).await,
            }
        }
    }

    /// Before the acknowledgement: no `connection_init` in time. After it:
    /// the token has expired.
    async fn on_deadline(&mut self) -> Step {
        if self.ready.is_some() {
            tracing::info!("token expired on a live socket");
            return Step::Close(close::UNAUTHORIZED, "token expired".into());
        }
        let reason = close::INIT_TIMEOUT_REASON;
        self.refuse(close::INIT_TIMEOUT, reason.into(), reason, "BAD_REQUEST")
            .await
    }

    async fn on_keepalive(&mut self) -> Step {
        match self.protocol {
            Subprotocol::TransportWs => self.send(&transport_ws::Outgoing::Ping).await,
            Subprotocol::LegacyWs => self.send(&legacy_ws::Outgoing::KeepAlive).await,
        }
    }

    async fn on_frame(&mut self, frame: Option<Result<Message, axum::Error>>) -> Step {
        let text = match frame {
            None | Some(Ok(Message::Close(_))) => return Step::Gone,
            Some(Err(e)) => return self.read_failed(e),
            Some(Ok(Message::Text(text))) => text.as_str().to_owned(),
            Some(Ok(Message::Binary(bytes))) => match String::from_utf8(bytes.to_vec()) {
                Ok(text) => text,
                Err(_) => {
                    return self
                        .malformed(None, "a binary message that is not UTF-8")
                        .await
                }
            },
            // WebSocket pings are answered by tungstenite itself.
            Some(Ok(_)) => return Step::Continue,
        };
        let incoming = match self.protocol {
            Subprotocol::TransportWs => match transport_ws::parse(&text) {
                Ok(incoming) => incoming,
                Err(reason) => return Step::Close(close::BAD_REQUEST, reason),
            },
            Subprotocol::LegacyWs => match legacy_ws::parse(&text) {
                Ok(incoming) => incoming,
                Err(wrong) => return self.malformed(wrong.id.as_deref(), &wrong.reason).await,
            },
        };
        match incoming {
            // Boxed: authenticating is the biggest future of a session, and an
            // inline one would be carried by every idle socket's task.
            Incoming::Init(payload) => Box::pin(self.on_init(payload)).await,
            Incoming::Subscribe { id, request } => self.on_subscribe(id, *request).await,
            Incoming::Complete { id } => {
                let was_live = self.ops.stop(&id);
                match self.protocol {
                    // "No further events ... should be sent through", and no
                    // `complete` back to the client's.
                    Subprotocol::TransportWs => Step::Continue,
                    Subprotocol::LegacyWs if was_live => {
                        self.send(&legacy_ws::Outgoing::Complete { id: &id }).await
                    }
                    Subprotocol::LegacyWs => Step::Continue,
                }
            }
            Incoming::Ping(payload) => self.send(&transport_ws::Outgoing::Pong { payload }).await,
            Incoming::Pong => Step::Continue,
            Incoming::Terminate => Step::Close(1000, String::new()),
        }
    }

    /// A message the client got wrong: graphql-transport-ws closes with 4400,
    /// the legacy protocol answers `error` and goes on.
    async fn malformed(&mut self, id: Option<&str>, reason: &str) -> Step {
        match self.protocol {
            Subprotocol::TransportWs => Step::Close(
                close::BAD_REQUEST,
                format!("Invalid message received: {reason}"),
            ),
            Subprotocol::LegacyWs => {
                let error = coded_error(reason, "BAD_REQUEST");
                self.send(&legacy_ws::Outgoing::Error {
                    id,
                    payload: &error,
                })
                .await
            }
        }
    }

    /// A read error: a message over the size limit gets 1009, a text message
    /// that is not UTF-8 gets 1007 (RFC 6455, 7.4.1); anything else means the
    /// connection is broken.
    fn read_failed(&self, e: axum::Error) -> Step {
        let detail = e.to_string();
        tracing::debug!(error = %detail, "reading the socket failed");
        // tungstenite's capacity error; axum does not expose its type.
        if detail.starts_with("Space limit exceeded") {
            let limit = self.state.ctx.settings.max_body_bytes;
            return Step::Close(1009, format!("message too big: at most {limit} bytes"));
        }
        // tungstenite's UTF-8 error on a text message; the socket can still
        // send its close frame.
        if detail.starts_with("UTF-8 encoding error") {
            return Step::Close(1007, "invalid UTF-8 in a text message".into());
        }
        Step::Gone
    }

    async fn on_init(&mut self, payload: Option<Value>) -> Step {
        if self.ready.is_some() {
            let reason = close::TOO_MANY_INITS_REASON;
            return self
                .refuse(close::TOO_MANY_INITS, reason.into(), reason, "BAD_REQUEST")
                .await;
        }
        let payload = payload.unwrap_or(Value::Null);
        let token = socket_token(&payload, self.header_token.as_deref());
        let viewer = match self.state.ctx.authenticate(token.as_deref()).await {
            Ok(viewer) => viewer,
            Err(e) => {
                tracing::info!(reason = %e, "connection_init refused");
                let message = e.to_string();
                return self
                    .refuse(
                        close::FORBIDDEN,
                        "Forbidden".into(),
                        &message,
                        "UNAUTHENTICATED",
                    )
                    .await;
            }
        };
        let limit = self.state.ctx.settings.ws_max_sockets_per_user;
        let Some(slot) = self.state.sockets.claim(viewer.id(), limit) else {
            tracing::info!(user = %viewer.id(), limit, "connection_init refused: too many sockets");
            let reason = format!("Forbidden: too many sockets for this user (at most {limit})");
            return self
                .refuse(close::FORBIDDEN, reason.clone(), &reason, TOO_MANY_SOCKETS)
                .await;
        };
        tracing::Span::current().record("user", viewer.id());
        tracing::info!("socket acknowledged");
        let expires = expiry(viewer.claims.exp);
        self.ready = Some(Box::new(Ready {
            viewer,
            _slot: slot,
        }));
        let step = match self.protocol {
            Subprotocol::TransportWs => self.send(&transport_ws::Outgoing::ConnectionAck).await,
            Subprotocol::LegacyWs => match self.send(&legacy_ws::Outgoing::ConnectionAck).await {
                Step::Continue => self.send(&legacy_ws::Outgoing::KeepAlive).await,
                other => other,
            },
        };
        match step {
            Step::Continue => Step::Acknowledged { expires },
            other => other,
        }
    }

    /// Refuses the connection: graphql-transport-ws closes with `code` and
    /// `reason`; the legacy protocol first says why in `connection_error`.
    async fn refuse(&mut self, code: u16, reason: String, message: &str, error_code: &str) -> Step {
        if self.protocol == Subprotocol::LegacyWs {
            let error = coded_error(message, error_code);
            if let Step::Gone = self
                .send(&legacy_ws::Outgoing::ConnectionError { payload: &error })
                .await
            {
                return Step::Gone;
            }
        }
        Step::Close(code, reason)
    }

    async fn on_subscribe(&mut self, id: String, request: async_graphql::Request) -> Step {
        let Some(viewer) = self.ready.as_ref().map(|ready| ready.viewer.clone()) else {
            return match self.protocol {
                Subprotocol::TransportWs => Step::Close(close::UNAUTHORIZED, "Unauthorized".into()),
                Subprotocol::LegacyWs => {
                    let error = coded_error(
                        "send connection_init and wait for connection_ack first",
                        "UNAUTHENTICATED",
                    );
                    self.operation_error(&id, error).await
                }
            };
        };
        if self.ops.is_live(&id) {
            match self.protocol {
                Subprotocol::TransportWs => {
                    return Step::Close(close::SUBSCRIBER_EXISTS, close::subscriber_exists(&id))
                }
                // The reference server replaces the running operation.
                Subprotocol::LegacyWs => {
                    self.ops.stop(&id);
                }
            }
        }
        // Before anything parses the query: a deeply nested one would overflow
        // the parser's stack (see `crate::nesting`).
        if let Err(too_deep) = crate::nesting::check(&request.query) {
            tracing::info!(user = %viewer.id(), id = %id, "operation refused before parsing: {too_deep}");
            let error = coded_error(too_deep.to_string(), crate::nesting::QUERY_TOO_DEEP);
            return self.operation_error(&id, error).await;
        }
        if let Err(limited) = self.state.ctx.rates.operation(viewer.id()) {
            tracing::info!(user = %viewer.id(), id = %id, "operation refused: over the rate limit");
            let mut error = coded_error(limited.message("operations started"), "RATE_LIMITED");
            if let Some(extensions) = error.extensions.as_mut() {
                extensions.set("retryAfterSeconds", limited.retry_after_seconds);
            }
            return self.operation_error(&id, error).await;
        }
        let max = self.state.ctx.settings.ws_max_subscriptions as usize;
        if self.ops.len() >= max {
            tracing::info!(user = %viewer.id(), id = %id, max, "operation refused: too many on this socket");
            let error = coded_error(
                format!(
                    "too many operations on this socket: at most {max} may run at once; \
                     complete one first"
                ),
                TOO_MANY_OPERATIONS,
            );
            return self.operation_error(&id, error).await;
        }
        let operation = request.operation_name.clone().unwrap_or_default();
        let span =
            tracing::info_span!("operation", user = %viewer.id(), id = %id, operation = %operation);
        span.in_scope(|| tracing::debug!("operation started"));
        let results = self.state.schema.execute_stream(
            request
                .data(Authentication(Ok(viewer)))
                .data(self.presence.id()),
        );
        self.ops.start(id, results, span, &self.state.ctx.metrics);
        Step::Continue
    }

    /// An `error` for one operation; the socket stays up.
    async fn operation_error(&mut self, id: &str, error: ServerError) -> Step {
        match self.protocol {
            Subprotocol::TransportWs => {
                let payload = std::slice::from_ref(&error);
                self.send(&transport_ws::Outgoing::Error { id, payload })
                    .await
            }
            Subprotocol::LegacyWs => {
                self.send(&legacy_ws::Outgoing::Error {
                    id: Some(id),
                    payload: &error,
                })
                .await
            }
        }
    }

    async fn on_outcome(&mut self, outcome: Outcome) -> Step {
        let id = outcome.id.clone();
        match (self.ops.settle(outcome), self.protocol) {
            (Matched::Stale, _) => Step::Continue,
            (Matched::Ended, Subprotocol::TransportWs) => {
                self.send(&transport_ws::Outgoing::Complete { id: &id })
                    .await
            }
            (Matched::Ended, Subprotocol::LegacyWs) => {
                self.send(&legacy_ws::Outgoing::Complete { id: &id }).await
            }
            // graphql-transport-ws: errors before execution (parsing,
            // validation, limits) are an `error` message, ending the operation
            // without `complete`. Execution errors travel in `next`.
            (Matched::Result { response, first }, Subprotocol::TransportWs)
                if first && is_request_error(&response) =>
            {
                self.ops.stop(&id);
                let payload = response.errors.as_slice();
                self.send(&transport_ws::Outgoing::Error { id: &id, payload })
                    .await
            }
            (Matched::Result { response, .. }, Subprotocol::TransportWs) => {
                let payload = &response;
                self.send(&transport_ws::Outgoing::Next { id: &id, payload })
                    .await
            }
            // The reference server sends validation errors as `data` too.
            (Matched::Result { response, .. }, Subprotocol::LegacyWs) => {
                let payload = &response;
                self.send(&legacy_ws::Outgoing::Data { id: &id, payload })
                    .await
            }
        }
    }

    async fn send(&mut self, message: &impl Serialize) -> Step {
        let text = match serde_json::to_string(message) {
            Ok(text) => text,
            Err(e) => {
                tracing::error!(error = %e, "a server message could not be serialised");
                return Step::Close(1011, "internal error".into());
            }
        };
        match self.socket.send(Message::Text(text.into())).await {
            Ok(()) => Step::Continue,
            Err(e) => {
                tracing::debug!(error = %e, "sending on the socket failed");
                Step::Gone
            }
        }
    }

    /// Stops every operation, sends the close frame and waits (briefly) for the
    /// client's.
    async fn close(mut self, code: u16, reason: String) {
        self.ops.stop_all();
        let reason = close_reason(reason);
        tracing::info!(code, reason = %reason, "closing the socket");
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        if self.socket.send(Message::Close(Some(frame))).await.is_ok() {
            self.drain().await;
        }
    }

    /// The client closed (or vanished): answer its close frame and stop.
    async fn gone(mut self) {
        self.ops.stop_all();
        tracing::debug!("the client closed the socket");
        self.drain().await;
    }

    /// Reads until the connection ends, so tungstenite sends its close reply
    /// and sees the client's; bounded, a client may never answer.
    async fn drain(&mut self) {
        let socket = &mut self.socket;
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            while let Some(Ok(_)) = socket.recv().await {}
        })
        .await;
    }
}
