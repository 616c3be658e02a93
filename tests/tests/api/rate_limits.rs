//! Rate limits (auth.md, "Next round"): a caller over its budget is told
//! `RATE_LIMITED` with `retryAfterSeconds` and nothing is done. Budgets of
//! 10 a minute here, so one request at a time passes and the next is over.

use serde_json::json;
use tests::Server;

use crate::helpers::{create, log_len, Client};
use crate::ws_protocol::{acknowledged, message, send, subscribe};

const TEN_A_MINUTE: &str = "10";

/// A second mutation in a row is refused in the result (`success: false`,
/// `errorCode: RATE_LIMITED`, `retryAfterSeconds`), appends nothing, and
/// leaves another user's budget alone.
#[tokio::test]
async fn a_user_over_the_mutation_budget_is_refused_and_nothing_is_appended() {
    let server = Server::start_with(&[("TICKETS_RATE_MUTATIONS_PER_MINUTE", TEN_A_MINUTE)]);
    let sam = Client::user(&server, "sam", &["AGENT"], &["support"]);
    let kim = Client::user(&server, "kim", &["AGENT"], &["support"]);
    let admin = Client::user(&server, "root", &["ADMIN"], &[]);
    let (id, _) = create(&sam, "First", "support").await;
    let before = log_len(&admin).await;
    let second = sam
        .mutate(
            "addSupportTicketTag(id: $id, tag: \"again\")",
            "($id: String!)",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(second["success"], false, "{second}");
    assert_eq!(second["errorCode"], "RATE_LIMITED", "{second}");
    assert!(
        second["error"].as_str().unwrap().contains("retry in"),
        "{second}"
    );
    let body = sam
        .post(
            "mutation($id: String!) { r: addSupportTicketTag(id: $id, tag: \"x\") { retryAfterSeconds } }",
            json!({ "id": id }),
        )
        .await;
    let wait = body["data"]["r"]["retryAfterSeconds"].as_i64().unwrap_or(0);
    assert!((1..=7).contains(&wait), "{body}");
    assert_eq!(log_len(&admin).await, before, "nothing appended");
    create(&kim, "Kim's own budget", "support").await;
}

/// Without a valid token, a second request from the same address in a row
/// gets HTTP 429 with `Retry-After` and `RATE_LIMITED`; a request with a
/// token is not held to that budget.
#[tokio::test]
async fn requests_without_a_token_are_limited_per_address() {
    let server = Server::start_with(&[("TICKETS_RATE_ANONYMOUS_PER_MINUTE", TEN_A_MINUTE)]);
    let http = reqwest::Client::new();
    let ask = || {
        http.post(server.graphql_url())
            .json(&json!({ "query": "{ me { id } }" }))
            .send()
    };
    let first = ask().await.unwrap();
    assert_ne!(first.status(), 429);
    let second = ask().await.unwrap();
    assert_eq!(second.status(), 429);
    let retry: u64 = second.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let body: serde_json::Value = second.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{body}"
    );
    assert_eq!(
        body["errors"][0]["extensions"]["retryAfterSeconds"], retry,
        "{body}"
    );
    let sam = Client::user(&server, "sam", &["AGENT"], &["support"]);
    for _ in 0..3 {
        sam.data("{ me { id } }", json!({})).await;
    }
}

/// On a WebSocket, a second operation started in a row gets an `error` for
/// its id with `RATE_LIMITED` and `retryAfterSeconds`; the socket stays up.
#[tokio::test]
async fn operations_started_over_the_budget_get_an_error_and_the_socket_stays() {
    let server = Server::start_with(&[("TICKETS_RATE_OPERATIONS_PER_MINUTE", TEN_A_MINUTE)]);
    let token = server.token("sam", &["AGENT"], &["support"]);
    let mut socket = acknowledged(&server, &token).await;
    send(
        &mut socket,
        subscribe("1", "subscription { myTicketUpdates { id } }"),
    )
    .await;
    send(
        &mut socket,
        subscribe("2", "subscription { myTicketUpdates { id } }"),
    )
    .await;
    let refused = message(&mut socket).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "2", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"], "RATE_LIMITED",
        "{refused}"
    );
    assert!(
        refused["payload"][0]["extensions"]["retryAfterSeconds"].as_u64() >= Some(1),
        "{refused}"
    );
    send(&mut socket, json!({ "type": "ping" })).await;
    let pong = message(&mut socket).await;
    assert_eq!(pong["type"], "pong", "the socket is still up: {pong}");
}
