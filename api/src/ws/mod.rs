//! GraphQL over WebSocket on `GET /graphql`, in both subprotocols the contract
//! names. Our own transport rather than async-graphql-axum's: that one closes
//! with none of the codes graphql-transport-ws prescribes (4400, 4401, 4408,
//! 4409, 4429), has no initialisation timeout, no token expiry, no limits and
//! no close frame on shutdown. Operations still run through
//! `schema.execute_stream` with the socket's [`Authentication`], exactly as
//! over HTTP.
//!
//! - `transport_ws`: the messages of `graphql-transport-ws` (the graphql-ws
//!   library's PROTOCOL.md) and its close codes.
//! - `legacy_ws`: the messages of the legacy `graphql-ws`
//!   (subscriptions-transport-ws).
//! - `operations`: one socket's live operations and their result streams.
//! - `session`: one socket's life — `connection_init`, operations, timers,
//!   limits, closing — the same for both, with each protocol's answers.
//! - `answers`: error codes, request errors and close reasons of our answers.
//! - `timers`: the keep-alive tick and a token's expiry.
//! - `messages`: the subprotocols, a client's message whichever protocol it
//!   came in, and where a socket's token is.
//!
//! The sockets' registry (per-user counts, the wait at shutdown) is
//! [`crate::sockets`].
//!
//! # Memory
//! A server may hold tens of thousands of idle sockets, so an idle socket must
//! cost little (the target is under 30 KB). tungstenite allocates its read
//! buffer eagerly, 128 KiB by default, and buffers writes up to 128 KiB: we
//! read into [`READ_BUFFER_BYTES`] (a GraphQL message is small; a bigger one
//! grows the buffer while it is read) and write every message at once. A
//! socket is the one task axum spawns for it: reading, the operations'
//! streams, the timers and the shutdown signal are `select!`ed in that task,
//! with no channel and no task per operation; an idle socket's state is its
//! viewer, two timers and empty maps.
//!
//! # Decisions where the protocols are silent
//! - Both subprotocols get the initialisation timeout, the token expiry (4401
//!   `token expired`), the limits and the 1001 close on shutdown. The legacy
//!   protocol has no close codes of its own: a refused `connection_init`
//!   (bad token, too many sockets, timeout, a second init) is a
//!   `connection_error` followed by the same close code as on
//!   graphql-transport-ws; other mistakes are an `error` message and the
//!   socket stays up, as in the reference server.
//! - An operation whose query nests deeper than [`crate::nesting::MAX_NESTING`]
//!   is refused before it is parsed, on both protocols with an `error` for its
//!   id (code `QUERY_TOO_DEEP`); the socket stays up.
//! - The per-socket limit counts every live operation, queries included; the
//!   per-user limit counts acknowledged sockets, so an unauthenticated socket
//!   holds no slot (it is bounded by the initialisation timeout instead).

mod answers;
mod legacy_ws;
mod messages;
mod operations;
mod session;
mod timers;
mod transport_ws;

use axum::extract::{FromRequestParts, Request, WebSocketUpgrade};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use messages::Subprotocol;

use crate::error::client_error;
use crate::state::AppState;

/// Capacity of a socket's read buffer (see "Memory" above).
/// Client messages (`connection_init`, `subscribe`, `pong`, `complete`) are a
/// few hundred bytes; a bigger one grows the buffer while it is read. Each
/// KiB here is a KiB per idle socket.
pub const READ_BUFFER_BYTES: usize = 1024;

/// Most a socket buffers for a client that does not read, before the
/// connection is failed.
const MAX_WRITE_BUFFER_BYTES: usize = 1 << 20;

/// `GET /graphql` asking to upgrade: negotiate the subprotocol, size the
/// socket's buffers, and hand it to a session.
pub(crate) async fn upgrade(state: AppState, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    let protocol = parts
        .headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(Subprotocol::negotiate);
    let Some(protocol) = protocol else {
        return client_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "unsupported WebSocket subprotocol: use graphql-transport-ws or graphql-ws",
        );
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let origin_allowed = crate::origins::Origins::new(&state.ctx.settings.cors_origins)
        .allows_socket(&parts.headers);
    let header_token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let max_message = state.ctx.settings.max_body_bytes;
    let mut upgrade = upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(max_message)
        .max_frame_size(max_message);
    upgrade.set_selected_protocol(HeaderValue::from_static(protocol.name()));
    let upgrade =
        upgrade.on_failed_upgrade(|e| tracing::debug!(error = %e, "WebSocket upgrade failed"));
    if !origin_allowed {
        // A page of another site (cross-site WebSocket hijacking): closed
        // with 4403 before anything is read.
        tracing::info!("WebSocket refused: its Origin is not allowed (--cors-origin)");
        return upgrade.on_upgrade(|mut socket| async move {
            let frame = axum::extract::ws::CloseFrame {
                code: 4403,
                reason: "Forbidden: this origin may not open a socket (--cors-origin)".into(),
            };
            let _ = socket
                .send(axum::extract::ws::Message::Close(Some(frame)))
                .await;
        });
    }
    upgrade.on_upgrade(move |socket| session::run(socket, state, protocol, header_token))
}
