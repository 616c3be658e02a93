//! What both subprotocols share of a client's messages: the subprotocols
//! themselves, [`Incoming`] (a message, whichever protocol it came in), the
//! checks of an operation's id and payload, and where a socket's token is.

use serde_json::{Map, Value};

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
    pub(super) fn negotiate(offered: &str) -> Option<Subprotocol> {
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

/// Longest operation id accepted, in bytes.
pub const MAX_OPERATION_ID_BYTES: usize = 128;

/// A message's `id`: a non-empty string of at most [`MAX_OPERATION_ID_BYTES`].
pub(super) fn operation_id(message: &Map<String, Value>, kind: &str) -> Result<String, String> {
    match message.get("id") {
        // Echoed in every message of the operation: kept short.
        Some(Value::String(id)) if id.len() > MAX_OPERATION_ID_BYTES => Err(format!(
            "\"{kind}\" message \"id\" must be at most {MAX_OPERATION_ID_BYTES} bytes"
        )),
        Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
        _ => Err(format!(
            "\"{kind}\" message needs a non-empty string \"id\""
        )),
    }
}

/// An optional payload: an object, `null` or absent.
pub(super) fn optional_object(
    message: &mut Map<String, Value>,
    kind: &str,
) -> Result<Option<Value>, String> {
    match message.remove("payload") {
        None | Some(Value::Null) => Ok(None),
        Some(payload @ Value::Object(_)) => Ok(Some(payload)),
        Some(_) => Err(format!("\"{kind}\" payload must be an object")),
    }
}

/// The GraphQL request of a `subscribe`/`start` payload: `query` a string,
/// `operationName` a string, `variables` and `extensions` objects (the last
/// three may be null or absent).
pub(super) fn operation_request(
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
