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
//! - `registry`: [`Sockets`], the per-user socket counts and the wait for
//!   every socket to close on shutdown.
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
mod operations;
mod registry;
mod session;
mod timers;
mod transport_ws;

use axum::extract::{FromRequestParts, Request, WebSocketUpgrade};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

pub use registry::Sockets;

use crate::http::{client_error, AppState};

/// Capacity of a socket's read buffer (see "Memory" above).
/// Client messages (`connection_init`, `subscribe`, `pong`, `complete`) are a
/// few hundred bytes; a bigger one grows the buffer while it is read. Each
/// KiB here is a KiB per idle socket.
pub const READ_BUFFER_BYTES: usize = 1024;

/// Most a socket buffers for a client that does not read, before the
/// connection is failed.
const MAX_WRITE_BUFFER_BYTES: usize = 1 << 20;

/// The two subprotocols, by the name a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subprotocol {
    /// `graphql-transport-ws`: the graphql-ws library's protocol.
    TransportWs,
    /// `graphql-ws`: the legacy subscriptions-transport-ws protocol.
    LegacyWs,
}

impl Subprotocol {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Subprotocol::TransportWs => "graphql-transport-ws",
            Subprotocol::LegacyWs => "graphql-ws",
        }
    }

    /// The first subprotocol of the client's `Sec-WebSocket-Protocol` list that
    /// we speak.
    fn negotiate(offered: &str) -> Option<Subprotocol> {
        offered.split(',').map(str::trim).find_map(|name| {
            [Subprotocol::TransportWs, Subprotocol::LegacyWs]
                .into_iter()
                .find(|p| p.name().eq_ignore_ascii_case(name))
        })
    }
}

/// A client message, whichever subprotocol it came in.
#[derive(Debug)]
pub(crate) enum Incoming {
    Init(Option<Value>),
    Subscribe {
        id: String,
        request: Box<async_graphql::Request>,
    },
    Complete {
        id: String,
    },
    Ping(Option<Value>),
    Pong,
    /// Legacy only: the client is leaving.
    Terminate,
}

/// A message's `id`: a non-empty string.
fn operation_id(message: &Map<String, Value>, kind: &str) -> Result<String, String> {
    match message.get("id") {
        Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
        _ => Err(format!(
            "\"{kind}\" message needs a non-empty string \"id\""
        )),
    }
}

/// An optional payload: an object, `null` or absent.
fn optional_object(message: &mut Map<String, Value>, kind: &str) -> Result<Option<Value>, String> {
    match message.remove("payload") {
        None | Some(Value::Null) => Ok(None),
        Some(payload @ Value::Object(_)) => Ok(Some(payload)),
        Some(_) => Err(format!("\"{kind}\" payload must be an object")),
    }
}

/// The GraphQL request of a `subscribe`/`start` payload: `query` a string,
/// `operationName` a string, `variables` and `extensions` objects (the last
/// three may be null or absent).
fn operation_request(
    payload: Option<Value>,
    kind: &str,
) -> Result<Box<async_graphql::Request>, String> {
    let Some(Value::Object(mut payload)) = payload else {
        return Err(format!(
            "\"{kind}\" message needs a \"payload\" object with a \"query\""
        ));
    };
    if !matches!(payload.get("query"), Some(Value::String(_))) {
        return Err(format!("\"{kind}\" payload needs a string \"query\""));
    }
    for (field, ok) in [
        ("operationName", Value::is_string as fn(&Value) -> bool),
        ("variables", Value::is_object),
        ("extensions", Value::is_object),
    ] {
        match payload.get(field) {
            Some(Value::Null) => {
                payload.remove(field);
            }
            Some(value) if !ok(value) => {
                return Err(format!(
                    "\"{kind}\" payload field \"{field}\" has the wrong type"
                ))
            }
            _ => {}
        }
    }
    serde_json::from_value(Value::Object(payload))
        .map(Box::new)
        .map_err(|e| format!("\"{kind}\" payload is not a GraphQL request: {e}"))
}

/// The token of a socket: the `connection_init` payload's `Authorization`
/// (`Bearer ...`) or `authToken`, else the upgrade request's header.
pub(crate) fn socket_token(payload: &Value, header: Option<&str>) -> Option<String> {
    let from_payload = ["Authorization", "authorization"]
        .iter()
        .find_map(|k| payload.get(*k).and_then(Value::as_str))
        .map(str::to_string)
        .or_else(|| {
            payload.get("authToken").and_then(Value::as_str).map(|t| {
                let t = t.trim();
                // By `get`: a client's text may hold a multi-byte character
                // across byte 7, where slicing would panic.
                let prefixed = t
                    .get(..7)
                    .is_some_and(|p| p.eq_ignore_ascii_case("bearer "));
                if t.len() > 7 && prefixed {
                    t.to_string()
                } else {
                    format!("Bearer {t}")
                }
            })
        });
    from_payload.or_else(|| header.map(str::to_string))
}

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
    upgrade
        .on_failed_upgrade(|e| tracing::debug!(error = %e, "WebSocket upgrade failed"))
        .on_upgrade(move |socket| session::run(socket, state, protocol, header_token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every accepted spelling of a socket token ends up as a bearer header.
    #[test]
    fn socket_tokens_come_from_the_payload_or_the_header() {
        let t = |p: Value, h: Option<&str>| socket_token(&p, h);
        assert_eq!(
            t(json!({"Authorization": "Bearer a"}), None).as_deref(),
            Some("Bearer a")
        );
        assert_eq!(
            t(json!({"authToken": "b"}), None).as_deref(),
            Some("Bearer b")
        );
        assert_eq!(
            t(json!({"authToken": "Bearer c"}), None).as_deref(),
            Some("Bearer c")
        );
        assert_eq!(t(json!({}), Some("Bearer d")).as_deref(), Some("Bearer d"));
        assert_eq!(t(Value::Null, None), None);
    }

    /// An `authToken` with a multi-byte character across the end of where a
    /// `Bearer ` prefix would be is taken as a bare token, without a panic.
    #[test]
    fn an_auth_token_with_a_multibyte_character_is_a_bare_token() {
        let t = |token: &str| socket_token(&json!({ "authToken": token }), None);
        assert_eq!(t("abcdefé").as_deref(), Some("Bearer abcdefé"));
        assert_eq!(t("Bearer😀x").as_deref(), Some("Bearer Bearer😀x"));
        assert_eq!(t("bearer éé").as_deref(), Some("bearer éé"));
    }

    /// The client's order decides between the two subprotocols; unknown names
    /// are skipped.
    #[test]
    fn the_first_subprotocol_offered_that_we_speak_is_chosen() {
        assert_eq!(
            Subprotocol::negotiate("soap, graphql-ws, graphql-transport-ws"),
            Some(Subprotocol::LegacyWs)
        );
        assert_eq!(
            Subprotocol::negotiate("GRAPHQL-TRANSPORT-WS"),
            Some(Subprotocol::TransportWs)
        );
        assert_eq!(Subprotocol::negotiate("soap"), None);
    }

    /// A subscribe payload is checked field by field; nulls are absences.
    #[test]
    fn operation_payloads_are_checked_before_execution() {
        let ok = operation_request(
            Some(json!({"query": "{ a }", "variables": null, "operationName": null})),
            "subscribe",
        )
        .unwrap();
        assert_eq!(ok.query, "{ a }");
        assert!(operation_request(None, "subscribe").is_err());
        assert!(operation_request(Some(json!({"variables": {}})), "subscribe").is_err());
        assert!(operation_request(Some(json!({"query": 1})), "subscribe").is_err());
        assert!(operation_request(
            Some(json!({"query": "{ a }", "variables": [1]})),
            "subscribe"
        )
        .is_err());
    }
}
