//! The pieces hostile inputs are made of, shared by the HTTP bodies and the
//! WebSocket frames: ordinary queries to start from, queries nested around,
//! past and far past the server's bound, strings full of delimiters, random
//! JSON, huge strings, and edits that break a text in random places.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

/// The server's bound on nesting, as the README documents it.
const MAX_NESTING: usize = 64;

/// Ordinary operations of the schema and their variables: what a real
/// client sends, and what the other generators start from.
pub const CORPUS: &[(&str, &str)] = &[
    ("{ __typename }", "{}"),
    ("{ me { id roles teams } }", "{}"),
    (
        "query($f: SupportTicketFilter, $n: Int) { supportTickets(filter: $f, first: $n) { totalCount edges { cursor node { id reference status tags assignedTo { id } } } pageInfo { hasNextPage endCursor } } }",
        r#"{"f": {"statuses": ["OPEN"], "tags": ["a"], "search": "x"}, "n": 5}"#,
    ),
    (
        "query($id: String!) { supportTicket(id: $id) { id request comments { comment author { id } } relatedTickets { id } } }",
        r#"{"id": "00000000-0000-0000-0000-000000000000"}"#,
    ),
    (
        "query($r: String!) { supportTicketByReference(reference: $r) { id version } }",
        r#"{"r": "TCK-000001"}"#,
    ),
    (
        "query($id: String!) { supportTicketHistory(id: $id) { eventType version changes { field oldValue newValue } } }",
        r#"{"id": "TCK-000001"}"#,
    ),
    (
        "query($id: String!, $v: Int, $at: DateTime) { supportTicketAsOf(id: $id, version: $v, at: $at) { status } }",
        r#"{"id": "TCK-000001", "v": 1, "at": "2024-01-01T00:00:00Z"}"#,
    ),
    (
        "{ queueMetrics { queue open byPriority avgResolutionSeconds } }",
        "{}",
    ),
    (
        "query($u: Boolean) { notifications(unreadOnly: $u, first: 3) { unreadCount edges { node { id title } } } }",
        r#"{"u": true}"#,
    ),
    (
        "query($a: String) { eventLog(after: $a, first: 5) { events { id data metadata } nextAfter } }",
        r#"{"a": null}"#,
    ),
    (
        "mutation($r: String!, $t: [String!]) { createSupportTicket(input: {request: $r, priority: HIGH, tags: $t}) { success errorCode ticket { id reference } } }",
        r#"{"r": "Printer on fire", "t": ["hardware"]}"#,
    ),
    (
        "mutation($id: String!, $c: String!) { commentOnSupportTicket(id: $id, comment: $c, internal: true) { success errorCode error } }",
        r#"{"id": "TCK-000001", "c": "Looking into it"}"#,
    ),
    (
        "mutation($ids: [String!]!) { markNotificationsRead(ids: $ids) }",
        r#"{"ids": ["00000000-0000-0000-0000-000000000000"]}"#,
    ),
    (
        "subscription($f: SupportTicketSubscriptionFilter) { supportTicketEvents(filter: $f) { id eventType ticket { id } } }",
        r#"{"f": {"eventTypes": ["CREATED"]}}"#,
    ),
    (
        "subscription { myTicketUpdates { id } }",
        "{}",
    ),
    (
        "{ __schema { types { name fields { name type { name ofType { name ofType { name } } } } } } }",
        "{}",
    ),
];

/// An ordinary operation and its variables.
pub fn ordinary(rng: &mut ChaCha8Rng) -> (String, Value) {
    let (query, variables) = CORPUS.choose(rng).expect("a corpus");
    let variables = serde_json::from_str(variables).expect("corpus variables are JSON");
    (query.to_string(), variables)
}

/// A nesting depth: mostly around the bound, often past it, sometimes far
/// past it (where the parser's own stack guard takes over).
pub fn depth(rng: &mut ChaCha8Rng) -> usize {
    match rng.gen_range(0..10) {
        0..=4 => rng.gen_range(MAX_NESTING - 8..=MAX_NESTING + 8),
        5..=7 => rng.gen_range(0..=600),
        _ => rng.gen_range(600..=5_000),
    }
}

/// A GraphQL value nested `depth` deep: lists, input objects or both.
pub fn nested_value(rng: &mut ChaCha8Rng, depth: usize) -> String {
    let leaf = match rng.gen_range(0..4) {
        0 => "1".to_string(),
        1 => graphql_string(rng, 12),
        2 => "$v".to_string(),
        _ => String::new(),
    };
    let (open, close): (&str, &str) = match rng.gen_range(0..4) {
        0 => ("[", "]"),
        1 => ("{a: ", "}"),
        2 => ("[{a: ", "}]"),
        _ => ("[ \"[\" # [\n", "]"),
    };
    let levels = match open {
        "[{a: " => depth / 2,
        _ => depth,
    };
    format!("{}{leaf}{}", open.repeat(levels), close.repeat(levels))
}

/// A query with a deep value, deep selections, or both, in one of the places
/// a value may stand.
pub fn deep_query(rng: &mut ChaCha8Rng) -> String {
    let depth = depth(rng);
    let value = nested_value(rng, depth);
    match rng.gen_range(0..9) {
        0 => format!("{{ supportTickets(filter: {{tags: {value}}}) {{ totalCount }} }}"),
        1 => format!("query($v: [String] = {value}) {{ __typename }}"),
        2 => format!("{{ __typename @include(if: {value}) }}"),
        3 => format!("{{ supportTicket(id: {value}) {{ id }} }}"),
        4 => format!(
            "mutation {{ createSupportTicket(input: {{request: \"x\", tags: {value}}}) {{ success }} }}"
        ),
        5 => format!("subscription {{ supportTicketEvents(filter: {{ticketIds: {value}}}) {{ id }} }}"),
        6 => format!("{}__typename{}", "{ a ".repeat(depth), " }".repeat(depth)),
        7 => {
            let selections = rng.gen_range(0..=depth.min(40));
            format!(
                "{}f(x: {value}){}",
                "{ a ".repeat(selections),
                " }".repeat(selections)
            )
        }
        _ => format!("{{ __typename(x: {}) }}", "(".repeat(depth)),
    }
}

/// A GraphQL string literal (plain or block) whose text holds brackets,
/// quotes, escapes and `#`, correctly delimited or not.
pub fn graphql_string(rng: &mut ChaCha8Rng, len: usize) -> String {
    const PIECES: &[&str] = &[
        "a", "[", "]", "{", "}", "(", ")", "#", "é", "\\\"", "\\\\", "\\n", "\\u0041", "\"",
        "\"\"\"", "\\\"\"\"", "\n", "\\", "\u{0}", "😀",
    ];
    let text: String = (0..rng.gen_range(0..=len))
        .map(|_| *PIECES.choose(rng).expect("pieces"))
        .collect();
    if rng.gen_bool(0.5) {
        format!("\"{text}\"")
    } else {
        format!("\"\"\"{text}\"\"\"")
    }
}

/// Any text: bytes from the whole range, made into a string.
pub fn random_text(rng: &mut ChaCha8Rng, max_len: usize) -> String {
    let bytes = random_bytes(rng, max_len);
    String::from_utf8_lossy(&bytes).into_owned()
}

pub fn random_bytes(rng: &mut ChaCha8Rng, max_len: usize) -> Vec<u8> {
    let len = rng.gen_range(0..=max_len);
    (0..len).map(|_| rng.gen()).collect()
}

/// A long string: one character repeated, or random letters; mostly
/// thousands of characters, sometimes hundreds of thousands.
pub fn huge_string(rng: &mut ChaCha8Rng) -> String {
    let len = match rng.gen_range(0..10) {
        0..=4 => 1_000,
        5..=7 => 10_000,
        8 => 100_000,
        _ => 400_000,
    };
    if rng.gen_bool(0.5) {
        let c = *['x', '[', '"', '\\', 'é', '\u{0}']
            .choose(rng)
            .expect("chars");
        std::iter::repeat_n(c, len).collect()
    } else {
        (0..len).map(|_| rng.gen_range('a'..='z')).collect()
    }
}

/// A JSON value of random type and shape, at most `depth` deep.
pub fn random_json(rng: &mut ChaCha8Rng, depth: usize) -> Value {
    let scalar_only = depth == 0;
    match rng.gen_range(0..if scalar_only { 7 } else { 9 }) {
        0 => Value::Null,
        1 => json!(rng.gen::<bool>()),
        2 => json!(rng.gen::<i64>()),
        3 => json!(rng.gen::<f64>() * 1e300),
        4 => json!(random_text(rng, 20)),
        5 => json!("TCK-000001"),
        6 => json!(u64::MAX),
        7 => Value::Array(
            (0..rng.gen_range(0..4))
                .map(|_| random_json(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let mut object = Map::new();
            for _ in 0..rng.gen_range(0..4) {
                let key = ["request", "id", "tags", "f", "x", ""]
                    .choose(rng)
                    .expect("keys");
                object.insert(key.to_string(), random_json(rng, depth - 1));
            }
            Value::Object(object)
        }
    }
}

/// JSON arrays or objects nested `depth` deep, as text (serde_json refuses
/// more than 128 levels; the server must say so, not fall over).
pub fn deep_json(rng: &mut ChaCha8Rng, depth: usize) -> String {
    if rng.gen_bool(0.5) {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    } else {
        format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
    }
}

/// `text` with a few random edits: characters put in, taken out, a slice
/// repeated, or the text cut short.
pub fn mangle(rng: &mut ChaCha8Rng, text: &str) -> String {
    const INSERTS: &[&str] = &[
        "\"", "\"\"\"", "\\", "\n", "#", "[", "]", "{", "}", "(", ")", "$", "@", "...", ":", "!",
        "\u{0}", "é",
    ];
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..rng.gen_range(1..=4) {
        let at = rng.gen_range(0..=chars.len());
        match rng.gen_range(0..4) {
            0 => {
                let insert = INSERTS.choose(rng).expect("inserts");
                chars.splice(at..at, insert.chars());
            }
            1 => {
                let end = (at + rng.gen_range(1..8)).min(chars.len());
                chars.drain(at..end);
            }
            2 => {
                let end = (at + rng.gen_range(1..16)).min(chars.len());
                let slice: Vec<char> = chars[at..end].to_vec();
                for _ in 0..rng.gen_range(1..50) {
                    chars.splice(at..at, slice.iter().copied());
                }
            }
            _ => chars.truncate(at),
        }
    }
    chars.into_iter().collect()
}

/// A value of the wrong type for most variables of the corpus.
pub fn wrong_variables(rng: &mut ChaCha8Rng, variables: &Value) -> Value {
    let mut wrong = Map::new();
    let names: Vec<String> = match variables {
        Value::Object(map) if !map.is_empty() => map.keys().cloned().collect(),
        _ => vec!["v".to_string(), "id".to_string()],
    };
    for name in names {
        let value = match rng.gen_range(0..5) {
            0 => random_json(rng, 3),
            1 => json!(huge_string(rng)),
            2 => serde_json::from_str(&deep_json(rng, 100)).expect("100 levels parse"),
            3 => json!([random_json(rng, 1), random_json(rng, 1)]),
            _ => json!({ "statuses": ["NOT_A_STATUS"], "tags": [1, 2], "first": -1 }),
        };
        wrong.insert(name, value);
    }
    Value::Object(wrong)
}
