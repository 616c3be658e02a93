//! Hostile WebSocket sessions: a subprotocol, perhaps a token on the upgrade
//! request, and a few frames: random text, binary frames, messages out of
//! order or of types only the server sends, operations with deeply nested or
//! mangled queries, huge ids and payloads.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use super::inputs::{
    deep_json, deep_query, huge_string, mangle, ordinary, random_bytes, random_json, random_text,
    wrong_variables,
};
use super::Tokens;

pub const TRANSPORT: &str = "graphql-transport-ws";
pub const LEGACY: &str = "graphql-ws";

pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
    /// A WebSocket-level ping.
    Ping(Vec<u8>),
}

/// One socket's worth of hostile input.
pub struct Session {
    pub protocol: &'static str,
    /// A bearer token on the upgrade request.
    pub header_token: Option<String>,
    /// Each frame with the kind of input it is, for a failure's report.
    pub frames: Vec<(&'static str, Frame)>,
}

pub fn session(rng: &mut ChaCha8Rng, tokens: &Tokens) -> Session {
    let protocol = if rng.gen_bool(0.6) { TRANSPORT } else { LEGACY };
    let header_token = rng
        .gen_bool(0.1)
        .then(|| format!("Bearer {}", tokens.any(rng)));
    let mut frames = Vec::new();
    // Mostly acknowledged first, so the operations reach the server's
    // handling of them; sometimes not, so they arrive out of order.
    if rng.gen_bool(0.8) {
        frames.push(("connection_init", text(init(rng, tokens, true))));
    }
    for _ in 0..rng.gen_range(1..=8) {
        frames.push(frame(rng, tokens, protocol));
    }
    Session {
        protocol,
        header_token,
        frames,
    }
}

fn text(message: Value) -> Frame {
    Frame::Text(message.to_string())
}

fn init(rng: &mut ChaCha8Rng, tokens: &Tokens, valid: bool) -> Value {
    let payload = if valid {
        json!({ "Authorization": format!("Bearer {}", tokens.any(rng)) })
    } else {
        match rng.gen_range(0..5) {
            0 => json!({ "authToken": random_text(rng, 100) }),
            1 => json!({ "Authorization": huge_string(rng) }),
            2 => random_json(rng, 3),
            3 => json!({ "authToken": tokens.any(rng), "Authorization": 5 }),
            _ => Value::Null,
        }
    };
    json!({ "type": "connection_init", "payload": payload })
}

/// An operation id: mostly short, sometimes huge or not a string.
fn id(rng: &mut ChaCha8Rng) -> Value {
    match rng.gen_range(0..10) {
        0 => json!(huge_string(rng)),
        1 => random_json(rng, 1),
        2 => json!(""),
        _ => json!(["1", "2", "x"].choose(rng).expect("ids")),
    }
}

/// A subscribe (`start` on the legacy protocol) with a hostile query or
/// payload.
fn operation(rng: &mut ChaCha8Rng, protocol: &str) -> (&'static str, Value) {
    let kind = if protocol == TRANSPORT {
        "subscribe"
    } else {
        "start"
    };
    let (query, variables) = ordinary(rng);
    let (what, payload) = match rng.gen_range(0..10) {
        0..=3 => ("deep query", json!({ "query": deep_query(rng) })),
        4 => ("mangled query", json!({ "query": mangle(rng, &query) })),
        5 => (
            "wrong variables",
            json!({ "query": query, "variables": wrong_variables(rng, &variables) }),
        ),
        6 => (
            "deep variables",
            json!({ "query": query, "variables": { "f": serde_json::from_str::<Value>(&deep_json(rng, 120)).expect("120 levels parse") } }),
        ),
        7 => ("wrong payload", random_json(rng, 3)),
        8 => (
            "huge query",
            json!({ "query": format!("{query} #{}", huge_string(rng)) }),
        ),
        _ => (
            "ordinary",
            json!({ "query": query, "variables": variables }),
        ),
    };
    (
        what,
        json!({ "type": kind, "id": id(rng), "payload": payload }),
    )
}

fn frame(rng: &mut ChaCha8Rng, tokens: &Tokens, protocol: &str) -> (&'static str, Frame) {
    match rng.gen_range(0..20) {
        0..=6 => {
            let (what, message) = operation(rng, protocol);
            (what, text(message))
        }
        7 => ("random text", Frame::Text(random_text(rng, 500))),
        8 => ("random binary", Frame::Binary(random_bytes(rng, 500))),
        9 => {
            let (_, message) = operation(rng, protocol);
            (
                "operation as binary",
                Frame::Binary(message.to_string().into_bytes()),
            )
        }
        10 => ("random JSON", text(random_json(rng, 4))),
        11 => {
            let depth = *[127, 129, 10_000].choose(rng).expect("depths");
            ("deep JSON", Frame::Text(deep_json(rng, depth)))
        }
        12 => ("mangled message", {
            let (_, message) = operation(rng, protocol);
            Frame::Text(mangle(rng, &message.to_string()))
        }),
        13 => ("second or bad connection_init", {
            let valid = rng.gen_bool(0.5);
            text(init(rng, tokens, valid))
        }),
        14 => {
            let kind = ["complete", "stop"].choose(rng).expect("kinds");
            ("complete", text(json!({ "type": kind, "id": id(rng) })))
        }
        15 => {
            let kind = ["ping", "pong"].choose(rng).expect("kinds");
            let payload = random_json(rng, 2);
            (
                "ping or pong",
                text(json!({ "type": kind, "payload": payload })),
            )
        }
        16 => {
            let kind = [
                "next",
                "error",
                "data",
                "ka",
                "connection_ack",
                "connection_error",
                "connection_terminate",
                "",
                "subscribe",
                "start",
            ]
            .choose(rng)
            .expect("kinds");
            (
                "server-only or bare type",
                text(json!({ "type": kind, "id": id(rng), "payload": random_json(rng, 2) })),
            )
        }
        17 => ("WebSocket ping", Frame::Ping(random_bytes(rng, 125))),
        18 => (
            "huge ping payload",
            text(json!({ "type": "ping", "payload": { "x": huge_string(rng) } })),
        ),
        _ => ("duplicate operation", {
            let (_, message) = operation(rng, protocol);
            let mut message = message;
            message["id"] = json!("1");
            message["payload"] = json!({ "query": "subscription { myTicketUpdates { id } }" });
            text(message)
        }),
    }
}
