//! Hostile `POST /graphql` requests: random bytes, truncated and mangled
//! JSON, deeply nested JSON and GraphQL values, variables of the wrong type,
//! huge strings and ids, requests of the wrong shape, with or without a
//! token (a valid one, or garbage).

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use super::inputs::{
    deep_json, deep_query, huge_string, mangle, ordinary, random_bytes, random_json, random_text,
    wrong_variables,
};
use super::Tokens;

/// One request to send.
pub struct Body {
    /// What kind of input this is, for a failure's report.
    pub kind: &'static str,
    pub bytes: Vec<u8>,
    pub content_type: Option<&'static str>,
    /// The whole `Authorization` header, if any.
    pub authorization: Option<String>,
}

pub fn body(rng: &mut ChaCha8Rng, tokens: &Tokens) -> Body {
    let (kind, bytes) = match rng.gen_range(0..20) {
        0 => ("random bytes", random_bytes(rng, 2_000)),
        1 => ("random text", random_text(rng, 2_000).into_bytes()),
        2 | 3 => ("truncated request", truncated(rng)),
        4 | 5 => {
            let (query, variables) = ordinary(rng);
            ("mangled query", request(&mangle(rng, &query), variables))
        }
        6..=9 => ("deep query", request(&deep_query(rng), json!({}))),
        10 => ("deep JSON body", deep_json_body(rng)),
        11 | 12 => ("wrong variables", wrong_variables_request(rng)),
        13 | 14 => huge(rng),
        15 | 16 => ("wrong shape", wrong_shape(rng)),
        17 => {
            let request = ordinary_request(rng);
            ("mangled JSON", mangle(rng, &request).into_bytes())
        }
        _ => ("ordinary", ordinary_request(rng).into_bytes()),
    };
    Body {
        kind,
        bytes,
        content_type: *[
            Some("application/json"),
            Some("application/json"),
            Some("text/plain"),
            Some("application/graphql"),
            Some("multipart/form-data; boundary=x"),
            None,
        ]
        .choose(rng)
        .expect("content types"),
        authorization: authorization(rng, tokens),
    }
}

fn request(query: &str, variables: Value) -> Vec<u8> {
    json!({ "query": query, "variables": variables })
        .to_string()
        .into_bytes()
}

fn ordinary_request(rng: &mut ChaCha8Rng) -> String {
    let (query, variables) = ordinary(rng);
    json!({ "query": query, "variables": variables }).to_string()
}

fn truncated(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut bytes = ordinary_request(rng).into_bytes();
    let cut = rng.gen_range(0..bytes.len());
    bytes.truncate(cut);
    bytes
}

/// JSON nested around and past serde_json's limit, as the body, as the
/// variables, or as the extensions.
fn deep_json_body(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let depth = *[100, 127, 128, 129, 1_000, 100_000]
        .choose(rng)
        .expect("depths");
    let deep = deep_json(rng, depth);
    let (query, _) = ordinary(rng);
    let query = Value::String(query).to_string();
    match rng.gen_range(0..3) {
        0 => deep,
        1 => format!(r#"{{"query":{query},"variables":{deep}}}"#),
        _ => format!(r#"{{"query":{query},"extensions":{{"x":{deep}}}}}"#),
    }
    .into_bytes()
}

fn wrong_variables_request(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let (query, variables) = ordinary(rng);
    let variables = wrong_variables(rng, &variables);
    request(&query, variables)
}

/// A huge string where a short one belongs (an id, in a variable or in the
/// query, a reference, a ticket's request and tag, an operation name, an
/// alias), or thousands of fields or ids.
fn huge(rng: &mut ChaCha8Rng) -> (&'static str, Vec<u8>) {
    let huge = huge_string(rng);
    let short = |n: usize| huge.chars().take(n).collect::<String>();
    match rng.gen_range(0..8) {
        0 => (
            "huge id",
            request(
                "query($id: String!) { supportTicket(id: $id) { id } }",
                json!({ "id": huge }),
            ),
        ),
        1 => (
            "huge id in the query",
            request(
                &format!("{{ supportTicket(id: {}) {{ id }} }}", Value::String(huge.clone())),
                json!({}),
            ),
        ),
        2 => (
            "huge reference",
            request(
                "query($r: String!) { supportTicketByReference(reference: $r) { id } }",
                json!({ "r": huge }),
            ),
        ),
        3 => (
            "huge ticket",
            request(
                "mutation($r: String!, $t: [String!]) { createSupportTicket(input: {request: $r, tags: $t}) { success errorCode } }",
                json!({ "r": huge, "t": [short(5_000)] }),
            ),
        ),
        4 => (
            "huge operation name",
            json!({ "query": "{ __typename }", "operationName": huge })
                .to_string()
                .into_bytes(),
        ),
        5 => {
            let alias: String = huge.chars().filter(char::is_ascii_alphabetic).collect();
            (
                "huge alias",
                request(&format!("{{ {alias}x: __typename }}"), json!({})),
            )
        }
        6 => {
            let fields = "__typename ".repeat(rng.gen_range(1_000..4_000));
            ("thousands of fields", request(&format!("{{ {fields} }}"), json!({})))
        }
        _ => (
            "thousands of ids",
            request(
                "mutation($ids: [String!]!) { markNotificationsRead(ids: $ids) }",
                json!({ "ids": vec![short(40); 2_000] }),
            ),
        ),
    }
}

/// Valid JSON of the wrong shape for a GraphQL request.
fn wrong_shape(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let (query, _) = ordinary(rng);
    let body = match rng.gen_range(0..9) {
        0 => random_json(rng, 4),
        1 => json!({ "query": random_json(rng, 2) }),
        2 => json!({ "query": query, "variables": random_json(rng, 2) }),
        3 => json!({ "query": query, "operationName": random_json(rng, 1) }),
        4 => json!({ "query": query, "extensions": random_json(rng, 3) }),
        5 => json!([{ "query": query }, { "query": query }]),
        6 => json!({ "query": "", "variables": {} }),
        7 => json!({ "query": format!("{query} {query}"), "operationName": "Nope" }),
        _ => json!({ "Query": query, "query": null }),
    };
    body.to_string().into_bytes()
}

/// No token, a valid one, or an `Authorization` header that is not one.
fn authorization(rng: &mut ChaCha8Rng, tokens: &Tokens) -> Option<String> {
    match rng.gen_range(0..10) {
        0..=3 => None,
        4..=7 => Some(format!("Bearer {}", tokens.any(rng))),
        8 => Some(format!(
            "Bearer {}.{}.{}",
            random_ascii(rng),
            random_ascii(rng),
            random_ascii(rng)
        )),
        _ => Some(random_ascii(rng)),
    }
}

/// Printable ASCII, as a header value must be.
fn random_ascii(rng: &mut ChaCha8Rng) -> String {
    let len = rng.gen_range(0..200);
    (0..len).map(|_| rng.gen_range(' '..='~')).collect()
}
