//! The legacy `graphql-ws` subprotocol (subscriptions-transport-ws's
//! PROTOCOL.md): `connection_init` → `connection_ack` and `ka` keep-alives,
//! `connection_error` for a refused init, `start`/`stop` of operations
//! answered with `data`, `error` and `complete`, `connection_terminate`.
//! As in the reference server, a malformed message is answered with an
//! `error` message (with the operation's `id` when it had one) and the socket
//! stays up.

use async_graphql::{Response, ServerError};
use serde::Serialize;
use serde_json::{Map, Value};

use super::messages::{operation_id, operation_request, Incoming};

/// Server to client.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Outgoing<'a> {
    ConnectionAck,
    #[serde(rename = "ka")]
    KeepAlive,
    ConnectionError {
        payload: &'a ServerError,
    },
    Data {
        id: &'a str,
        payload: &'a Response,
    },
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
        payload: &'a ServerError,
    },
    Complete {
        id: &'a str,
    },
}

/// A message the client got wrong: what to answer, and for which operation.
#[derive(Debug)]
pub(super) struct Malformed {
    pub id: Option<String>,
    pub reason: String,
}

pub(super) fn parse(text: &str) -> Result<Incoming, Malformed> {
    let malformed = |id: Option<String>, reason: String| Malformed { id, reason };
    let mut message = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(message)) => message,
        Ok(_) => return Err(malformed(None, "the message is not a JSON object".into())),
        Err(e) => return Err(malformed(None, format!("the message is not JSON: {e}"))),
    };
    let id = message
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let kind = match message.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        _ => return Err(malformed(id, "\"type\" must be a string".into())),
    };
    incoming(&kind, &mut message).map_err(|reason| malformed(id, reason))
}

fn incoming(kind: &str, message: &mut Map<String, Value>) -> Result<Incoming, String> {
    match kind {
        // The reference server takes any payload here and hands it to onConnect.
        "connection_init" => Ok(Incoming::Init(message.remove("payload"))),
        "start" => {
            let id = operation_id(message, kind)?;
            let request = operation_request(message.remove("payload"), kind)?;
            Ok(Incoming::Subscribe { id, request })
        }
        "stop" => Ok(Incoming::Complete {
            id: operation_id(message, kind)?,
        }),
        "connection_terminate" => Ok(Incoming::Terminate),
        other => Err(format!("unexpected message type \"{other}\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The legacy client messages parse; others are malformed, keeping the
    /// operation id for the answer.
    #[test]
    fn legacy_messages_parse_and_mistakes_keep_their_id() {
        assert!(matches!(
            parse(r#"{"type":"start","id":"1","payload":{"query":"{a}"}}"#),
            Ok(Incoming::Subscribe { id, .. }) if id == "1"
        ));
        assert!(matches!(
            parse(r#"{"type":"stop","id":"1"}"#),
            Ok(Incoming::Complete { id }) if id == "1"
        ));
        assert!(matches!(
            parse(r#"{"type":"connection_terminate"}"#),
            Ok(Incoming::Terminate)
        ));
        let wrong = parse(r#"{"type":"subscribe","id":"9"}"#).unwrap_err();
        assert_eq!(wrong.id.as_deref(), Some("9"));
        assert!(wrong.reason.contains("subscribe"), "{}", wrong.reason);
        assert!(parse("nope").unwrap_err().id.is_none());
    }

    /// Keep-alives are `ka`, as the legacy clients expect.
    #[test]
    fn keep_alive_is_ka() {
        assert_eq!(
            serde_json::to_string(&Outgoing::KeepAlive).unwrap(),
            r#"{"type":"ka"}"#
        );
    }
}
