//! `graphql-transport-ws`, as the graphql-ws library's PROTOCOL.md words it:
//! the client messages we accept, the server messages we send, and the close
//! codes. Any message of a type or shape the protocol does not define closes
//! the socket with 4400 and a reason saying what was wrong.

use async_graphql::{Response, ServerError};
use serde::Serialize;
use serde_json::{Map, Value};

use super::messages::{operation_id, operation_request, optional_object, Incoming};

/// Close codes of the protocol (and the reasons it prescribes, where it does).
pub(super) mod close {
    pub const BAD_REQUEST: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const SUBSCRIBER_EXISTS: u16 = 4409;
    pub const TOO_MANY_INITS: u16 = 4429;

    pub const INIT_TIMEOUT_REASON: &str = "Connection initialisation timeout";
    pub const TOO_MANY_INITS_REASON: &str = "Too many initialisation requests";

    /// The 4409 reason; a very long id is cut so the reason fits a close frame.
    pub fn subscriber_exists(id: &str) -> String {
        const MAX_ID_BYTES: usize = 90;
        let mut end = id.len().min(MAX_ID_BYTES);
        while !id.is_char_boundary(end) {
            end -= 1;
        }
        let cut = if end < id.len() { "..." } else { "" };
        format!("Subscriber for {}{cut} already exists", &id[..end])
    }
}

/// Server to client.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Outgoing<'a> {
    ConnectionAck,
    Ping,
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        payload: Option<Value>,
    },
    Next {
        id: &'a str,
        payload: &'a Response,
    },
    Error {
        id: &'a str,
        payload: &'a [ServerError],
    },
    Complete {
        id: &'a str,
    },
}

/// A client message, or the reason of the 4400 close.
pub(super) fn parse(text: &str) -> Result<Incoming, String> {
    let mut message = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(message)) => message,
        Ok(_) => return Err("Invalid message received: not a JSON object".into()),
        Err(e) => return Err(format!("Invalid message received: {e}")),
    };
    let kind = match message.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        _ => return Err("Invalid message received: \"type\" must be a string".into()),
    };
    incoming(&kind, &mut message).map_err(|e| format!("Invalid message received: {e}"))
}

fn incoming(kind: &str, message: &mut Map<String, Value>) -> Result<Incoming, String> {
    match kind {
        "connection_init" => Ok(Incoming::Init(optional_object(message, kind)?)),
        "ping" => Ok(Incoming::Ping(optional_object(message, kind)?)),
        "pong" => optional_object(message, kind).map(|_| Incoming::Pong),
        "subscribe" => {
            let id = operation_id(message, kind)?;
            let request = operation_request(message.remove("payload"), kind)?;
            Ok(Incoming::Subscribe { id, request })
        }
        "complete" => Ok(Incoming::Complete {
            id: operation_id(message, kind)?,
        }),
        other => Err(format!("unexpected message type \"{other}\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> String {
        parse(text).expect_err("invalid")
    }

    /// Every malformed message is refused with a reason naming the problem.
    #[test]
    fn malformed_messages_are_refused_with_a_reason() {
        assert!(reason("{not json").starts_with("Invalid message received"));
        assert!(reason("[]").contains("object"));
        assert!(reason(r#"{"id":"1"}"#).contains("type"));
        assert!(reason(r#"{"type":"start","id":"1"}"#).contains("\"start\""));
        assert!(reason(r#"{"type":"subscribe","payload":{"query":"{a}"}}"#).contains("id"));
        assert!(reason(r#"{"type":"subscribe","id":"","payload":{"query":"{a}"}}"#).contains("id"));
        assert!(reason(r#"{"type":"subscribe","id":"1"}"#).contains("payload"));
        assert!(reason(r#"{"type":"complete"}"#).contains("id"));
        assert!(reason(r#"{"type":"connection_init","payload":"x"}"#).contains("object"));
        assert!(reason(r#"{"type":"next","id":"1","payload":{}}"#).contains("next"));
    }

    /// The well-formed client messages of PROTOCOL.md parse.
    #[test]
    fn the_protocols_client_messages_parse() {
        assert!(matches!(
            parse(r#"{"type":"connection_init"}"#),
            Ok(Incoming::Init(None))
        ));
        assert!(matches!(
            parse(r#"{"type":"ping","payload":{"a":1}}"#),
            Ok(Incoming::Ping(Some(_)))
        ));
        assert!(matches!(parse(r#"{"type":"pong"}"#), Ok(Incoming::Pong)));
        assert!(matches!(
            parse(r#"{"type":"subscribe","id":"7","payload":{"query":"{a}"}}"#),
            Ok(Incoming::Subscribe { id, .. }) if id == "7"
        ));
        assert!(matches!(
            parse(r#"{"type":"complete","id":"7"}"#),
            Ok(Incoming::Complete { id }) if id == "7"
        ));
    }

    /// Server messages carry the protocol's type names.
    #[test]
    fn server_messages_serialise_with_their_type() {
        let text = |m: &Outgoing| serde_json::to_string(m).unwrap();
        assert_eq!(
            text(&Outgoing::ConnectionAck),
            r#"{"type":"connection_ack"}"#
        );
        assert_eq!(
            text(&Outgoing::Pong { payload: None }),
            r#"{"type":"pong"}"#
        );
        assert_eq!(
            text(&Outgoing::Complete { id: "1" }),
            r#"{"type":"complete","id":"1"}"#
        );
    }
}
