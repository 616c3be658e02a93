//! Hostile clients: a query document nested far deeper than any real query
//! must be refused with a client error before the GraphQL parser recurses
//! into it, over HTTP (no token needed) and inside a WebSocket operation, and
//! the process must live on. A stack overflow aborts the process without a
//! panic message, so these tests check that the server still runs and still
//! answers, not its log; they send every hostile document first and check
//! that the process lives before they look at the answers, so a server that
//! dies fails as such.

use std::collections::HashMap;

use serde_json::{json, Value};
use tests::Server;

use crate::ws_protocol::{
    acknowledged, hear, init_with, message, open, send, subscribe, Heard, Socket, LEGACY,
};

/// How deep a query document may nest, as the README documents it.
const MAX_NESTING: usize = 64;

/// Nesting depths a hostile client sends. The parser's own stack guard
/// refuses the deepest documents, but below it lies a window in which the
/// recursion after parsing overflows a worker's stack and aborts the process;
/// where that window lies depends on the build's frame sizes (a few hundred
/// levels unoptimised, over a thousand in release), so the tests sweep across
/// both.
const HOSTILE_DEPTHS: [usize; 11] = [
    65, 128, 256, 320, 400, 500, 1_000, 1_250, 1_540, 2_000, 4_000,
];

/// `supportTickets` with a `tags` value of lists `depth` deep.
fn deep_list(depth: usize) -> String {
    format!(
        "{{ supportTickets(filter: {{tags: {}{}}}) {{ totalCount }} }}",
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

/// `supportTickets` with a `tags` value of input objects `depth` deep.
fn deep_object(depth: usize) -> String {
    format!(
        "{{ supportTickets(filter: {{tags: {}1{}}}) {{ totalCount }} }}",
        "{a: ".repeat(depth),
        "}".repeat(depth)
    )
}

/// Both hostile shapes at every depth of [`HOSTILE_DEPTHS`], with a name.
fn hostile_queries() -> Vec<(String, String)> {
    HOSTILE_DEPTHS
        .iter()
        .flat_map(|&depth| {
            [
                (format!("list-{depth}"), deep_list(depth)),
                (format!("object-{depth}"), deep_object(depth)),
            ]
        })
        .collect()
}

/// Posts `query` without a token: the status and the JSON body, or why there
/// was none.
async fn try_post(server: &Server, query: &str) -> Result<(u16, Value), String> {
    let response = reqwest::Client::new()
        .post(server.graphql_url())
        .json(&json!({ "query": query }))
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .json()
        .await
        .map_err(|e| format!("HTTP {status} without a JSON body: {e}"))?;
    Ok((status, body))
}

/// Fails the test, saying so plainly, if the process has exited.
fn assert_alive(server: &mut Server, after: &str) {
    assert!(
        server.is_running(),
        "the server died after {after}; its log:\n{}",
        server.log()
    );
}

/// Asserts the documented refusal of a too-deep document.
fn refused_as_too_deep(name: &str, status: u16, body: &Value) {
    assert_eq!(status, 400, "{name}: {body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "QUERY_TOO_DEEP",
        "{name}: {body}"
    );
    let message = body["errors"][0]["message"].as_str().unwrap_or("");
    assert!(message.contains(&MAX_NESTING.to_string()), "{name}: {body}");
    assert!(body.get("data").is_none(), "{name}: {body}");
}

/// The process runs and answers an ordinary query.
async fn still_serving(server: &mut Server) {
    assert_alive(server, "the hostile requests");
    let answer = try_post(server, "{ __typename }").await;
    assert_eq!(
        answer,
        Ok((200, json!({ "data": { "__typename": "Query" } })))
    );
}

/// A list value and an input-object value nested 2,000 deep (and at every
/// depth of [`HOSTILE_DEPTHS`]), sent without a token, get HTTP 400 with code
/// QUERY_TOO_DEEP and a message naming the bound; the process is still
/// running and answers `{ __typename }` afterwards. Parsed, some of them
/// would overflow a worker's stack and abort the whole server.
#[tokio::test]
async fn a_query_nested_two_thousand_deep_over_http_is_refused_and_the_server_lives() {
    let mut server = Server::start();
    let mut answers = Vec::new();
    for (name, query) in hostile_queries() {
        let answer = try_post(&server, &query).await;
        answers.push((name, answer));
    }
    let sent: Vec<String> = answers
        .iter()
        .map(|(name, answer)| {
            format!(
                "{name}: {}",
                answer.as_ref().map_or("no answer", |_| "answered")
            )
        })
        .collect();
    assert_alive(&mut server, &sent.join(", "));
    for (name, answer) in answers {
        let (status, body) = answer.unwrap_or_else(|e| panic!("{name}: {e}"));
        refused_as_too_deep(&name, status, &body);
    }
    still_serving(&mut server).await;
}

/// A document nested exactly to the bound is parsed and answered as usual
/// (here: a validation error), one level more is refused; brackets inside
/// strings, block strings and comments are not nesting and do not count.
#[tokio::test]
async fn nesting_is_counted_to_the_bound_and_brackets_in_strings_or_comments_do_not_count() {
    let mut server = Server::start();
    // `{`, `(` and `{` of the filter come before the list itself.
    let outer = 3;
    let (status, body) = try_post(&server, &deep_list(MAX_NESTING - outer))
        .await
        .expect("an answer");
    assert_eq!(status, 200, "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or("");
    assert!(message.contains("filter.tags"), "{body}");

    let (status, body) = try_post(&server, &deep_list(MAX_NESTING - outer + 1))
        .await
        .expect("an answer");
    refused_as_too_deep("one level past the bound", status, &body);

    let brackets = "[{(".repeat(2_000);
    for query in [
        format!("{{ __typename @include(if: true) }} # {brackets}"),
        format!(
            "{{ supportTickets(filter: {{search: \"\"\"{brackets}\"\"\"}}) {{ totalCount }} }}"
        ),
        format!("{{ supportTickets(filter: {{search: \"{brackets}\"}}) {{ totalCount }} }}"),
    ] {
        let (status, body) = try_post(&server, &query).await.expect("an answer");
        assert_eq!(status, 200, "{body}");
        assert_ne!(
            body["errors"][0]["extensions"]["code"], "QUERY_TOO_DEEP",
            "{body}"
        );
    }
    still_serving(&mut server).await;
}

/// The first answer to each of [`hostile_queries`], sent as operations on
/// `socket`, in their order; a socket that ends before fails the test, saying
/// whether the server died.
async fn answers(socket: &mut Socket, server: &mut Server) -> Vec<Value> {
    let ids: Vec<String> = hostile_queries().into_iter().map(|(id, _)| id).collect();
    let mut heard: HashMap<String, Value> = HashMap::new();
    while heard.len() < ids.len() {
        match hear(socket).await {
            Heard::Message(m) if m["type"] == "ka" || m["type"] == "ping" => continue,
            Heard::Message(m) => {
                let id = m["id"].as_str().unwrap_or_default().to_string();
                heard.entry(id).or_insert(m);
            }
            other => {
                // An aborting process may close its sockets a moment before
                // it is seen to have exited.
                for _ in 0..20 {
                    if !server.is_running() {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                let answered: Vec<&String> = heard.keys().collect();
                assert_alive(server, &format!("deep operations (answered: {answered:?})"));
                panic!("expected an answer to every deep operation, got {other:?}");
            }
        }
    }
    ids.iter()
        .map(|id| {
            heard
                .remove(id)
                .unwrap_or_else(|| panic!("no answer for {id}"))
        })
        .collect()
}

/// Inside a WebSocket operation a query nested 2,000 deep (and at every
/// depth of [`HOSTILE_DEPTHS`]) is refused before it is parsed:
/// graphql-transport-ws answers one `error` for that operation's id (code
/// QUERY_TOO_DEEP), the legacy graphql-ws an `error` with the id (all of
/// them are sent before the first answer is read); each socket
/// stays up and runs the next operation, and the process lives on.
#[tokio::test]
async fn a_deep_query_in_a_websocket_operation_gets_an_error_and_the_socket_stays_up() {
    let mut server = Server::start();
    let token = server.token("sam", &["AGENT"], &["support"]);

    let mut socket = acknowledged(&server, &token).await;
    for (id, query) in hostile_queries() {
        send(&mut socket, subscribe(&id, &query)).await;
    }
    for error in answers(&mut socket, &mut server).await {
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(
            error["payload"][0]["extensions"]["code"], "QUERY_TOO_DEEP",
            "{error}"
        );
    }
    send(&mut socket, subscribe("after", "{ __typename }")).await;
    let next = message(&mut socket).await;
    assert_eq!(next["type"], "next", "{next}");
    assert_eq!(next["payload"]["data"]["__typename"], "Query", "{next}");
    assert_eq!(message(&mut socket).await["type"], "complete");

    let mut legacy = open(&server, LEGACY).await;
    send(&mut legacy, init_with(&token)).await;
    assert_eq!(message(&mut legacy).await["type"], "connection_ack");
    let start =
        |id: &str, query: &str| json!({ "id": id, "type": "start", "payload": { "query": query } });
    for (id, query) in hostile_queries() {
        send(&mut legacy, start(&id, &query)).await;
    }
    for error in answers(&mut legacy, &mut server).await {
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(
            error["payload"]["extensions"]["code"], "QUERY_TOO_DEEP",
            "{error}"
        );
    }
    send(&mut legacy, start("after", "{ __typename }")).await;
    let data = message(&mut legacy).await;
    assert_eq!(data["type"], "data", "{data}");
    assert_eq!(data["payload"]["data"]["__typename"], "Query", "{data}");

    still_serving(&mut server).await;
}

/// An `authToken` with a multi-byte character where a `Bearer ` prefix would
/// end is a bad token like any other: `connection_init` is refused with 4403
/// `Forbidden` (a `connection_error` first on the legacy protocol), nothing
/// panics, and the server still serves.
#[tokio::test]
async fn an_auth_token_with_a_multibyte_character_is_refused_without_a_panic() {
    let mut server = Server::start();
    for token in ["abcdefé-not-a-token", "Bearer😀x", "bearer ééé"] {
        for protocol in [crate::ws_protocol::TRANSPORT, LEGACY] {
            let mut socket = open(&server, protocol).await;
            let init = json!({ "type": "connection_init", "payload": { "authToken": token } });
            send(&mut socket, init).await;
            let mut heard = hear(&mut socket).await;
            if protocol == LEGACY {
                match heard {
                    Heard::Message(m) => assert_eq!(m["type"], "connection_error", "{token}: {m}"),
                    other => {
                        panic!("{token} on {protocol}: expected connection_error, got {other:?}")
                    }
                }
                heard = hear(&mut socket).await;
            }
            match heard {
                Heard::Close(code, reason) => {
                    assert_eq!((code, reason.as_str()), (4403, "Forbidden"), "{token}")
                }
                other => panic!("{token} on {protocol}: expected a 4403 close, got {other:?}"),
            }
        }
    }
    let panics: Vec<String> = server
        .log()
        .lines()
        .filter(|line| line.contains("panicked"))
        .map(str::to_string)
        .collect();
    assert!(panics.is_empty(), "{panics:?}");
    still_serving(&mut server).await;
}

/// A ticket holds at most what the caps allow (here 2 comments and 1
/// related ticket): one more is `INVALID` naming the cap and appends
/// nothing, a relation refused on the other side's cap leaves both tickets
/// as they were, and a text's limit counts bytes (a 10,000-byte comment
/// passes, 10,002 bytes of "€" do not).
#[tokio::test]
async fn a_ticket_holds_at_most_its_caps_and_texts_are_bounded_in_bytes() {
    use crate::helpers::{create, ok, refused, Client};

    let server = Server::start_with(&[
        ("TICKETS_MAX_COMMENTS_PER_TICKET", "2"),
        ("TICKETS_MAX_RELATED_PER_TICKET", "1"),
    ]);
    let sam = Client::user(&server, "sam", &["AGENT"], &["support"]);
    let (a, _) = create(&sam, "Hub", "support").await;
    let (b, _) = create(&sam, "Spoke", "support").await;
    let (c, _) = create(&sam, "Another", "support").await;
    let comment = "commentOnSupportTicket(id: $id, comment: $c)";
    let vars = |text: &str| json!({ "id": a, "c": text });
    ok(sam
        .mutate(
            comment,
            "($id: String!, $c: String!)",
            vars(&"x".repeat(10_000)),
        )
        .await);
    ok(sam
        .mutate(comment, "($id: String!, $c: String!)", vars("second"))
        .await);
    let third = sam
        .mutate(comment, "($id: String!, $c: String!)", vars("third"))
        .await;
    refused(&third, "INVALID");
    assert!(
        third["error"]
            .as_str()
            .unwrap()
            .contains("at most 2 comments"),
        "{third}"
    );
    let (d, _) = create(&sam, "Wordy", "support").await;
    let long = sam
        .mutate(
            comment,
            "($id: String!, $c: String!)",
            json!({ "id": d, "c": "€".repeat(3_334) }),
        )
        .await;
    refused(&long, "INVALID");
    assert!(long["error"].as_str().unwrap().contains("bytes"), "{long}");

    let relate = "relateSupportTickets(id: $id, relatedId: $other)";
    let pair = |id: &str, other: &str| json!({ "id": id, "other": other });
    ok(sam
        .mutate(relate, "($id: String!, $other: String!)", pair(&a, &b))
        .await);
    // `a` is full: relating `c` to it is refused before `c` changes.
    let full = sam
        .mutate(relate, "($id: String!, $other: String!)", pair(&c, &a))
        .await;
    refused(&full, "INVALID");
    assert!(
        full["error"]
            .as_str()
            .unwrap()
            .contains("at most 1 related tickets"),
        "{full}"
    );
    let related = |id: String| {
        let sam = &sam;
        async move {
            sam.data(
                "query($id: String!) { supportTicket(id: $id) { version relatedTickets { id } } }",
                json!({ "id": id }),
            )
            .await["supportTicket"]
                .clone()
        }
    };
    let c_now = related(c.clone()).await;
    assert_eq!(c_now["relatedTickets"], json!([]), "{c_now}");
    assert_eq!(c_now["version"], 0, "nothing appended to {c}: {c_now}");
    let a_now = related(a.clone()).await;
    assert_eq!(a_now["relatedTickets"], json!([{ "id": b }]), "{a_now}");
}

/// The query cost counts list sizes: `relatedTickets` nested three deep is
/// refused before any stream is read, two deep is answered; a page of 500
/// tickets with a large selection is refused where a page of 50 is not.
#[tokio::test]
async fn nested_related_tickets_and_huge_pages_are_refused_by_their_cost() {
    use crate::helpers::{create, Client};

    let server = Server::start();
    let sam = Client::user(&server, "sam", &["AGENT"], &["support"]);
    let (id, _) = create(&sam, "Hub", "support").await;
    let nested = |depth: usize| {
        let mut selection = "id".to_string();
        for _ in 0..depth {
            selection = format!("id relatedTickets {{ {selection} }}");
        }
        format!("query($id: String!) {{ supportTicket(id: $id) {{ {selection} }} }}")
    };
    let two = sam.post(&nested(2), json!({ "id": id })).await;
    assert!(two.get("errors").is_none(), "{two}");
    let three = sam.post(&nested(3), json!({ "id": id })).await;
    let message = three["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("complex"), "{three}");
    assert!(three["data"].is_null(), "{three}");

    let fields = "id reference request description status priority queue tags deleted \
        version createdDate updatedDate watchers { id } createdBy { id } assignedTo { id } \
        comments { comment } attachments { name } relatedTickets { id }";
    let page = |first: usize| {
        format!("{{ supportTickets(first: {first}) {{ edges {{ node {{ {fields} }} }} }} }}")
    };
    let fifty = sam.post(&page(50), json!({})).await;
    assert!(fifty.get("errors").is_none(), "{fifty}");
    let huge = sam.post(&page(500), json!({})).await;
    let message = huge["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("complex"), "{huge}");
}

/// `supportTicketHistory(id, first, after)` pages through a ticket's events:
/// `first` of them after the position `after`, the pages together the whole
/// history without gap or repeat; `first` out of range is `INVALID`.
#[tokio::test]
async fn a_tickets_history_comes_in_pages() {
    use crate::helpers::{create, ok, Client};

    let server = Server::start();
    let sam = Client::user(&server, "sam", &["AGENT"], &["support"]);
    let (id, _) = create(&sam, "Many events", "support").await;
    for n in 0..6 {
        ok(sam
            .mutate(
                "addSupportTicketTag(id: $id, tag: $t)",
                "($id: String!, $t: String!)",
                json!({ "id": id, "t": format!("t{n}") }),
            )
            .await);
    }
    let query = "query($id: String!, $f: Int, $a: String) { supportTicketHistory(id: $id, \
        first: $f, after: $a) { id position version } }";
    let whole = sam.data(query, json!({ "id": id })).await["supportTicketHistory"].clone();
    assert_eq!(whole.as_array().unwrap().len(), 7, "{whole}");
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = sam
            .data(query, json!({ "id": id, "f": 3, "a": after }))
            .await["supportTicketHistory"]
            .as_array()
            .unwrap()
            .clone();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = last["position"].as_str().map(str::to_string);
        paged.extend(page);
    }
    assert_eq!(json!(paged), whole);
    let refused = sam.post(query, json!({ "id": id, "f": 0 })).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "INVALID",
        "{refused}"
    );
}
