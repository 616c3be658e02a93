//! Subscriptions over Server-Sent Events (`POST /graphql/stream`, the
//! graphql-sse protocol's distinct connections mode), read by a plain HTTP
//! client: events arrive as `next`, and after the connection drops a new
//! one resumes with `after` and gets exactly what it missed.

use std::time::Duration;

use serde_json::{json, Value};
use tests::Server;

use crate::helpers::{create, ok, Client, Db};

crate::on_both_databases!(a_subscription_over_sse_resumes_with_after_when_the_connection_drops,);

/// Reads `next` events' data from an event stream until `count` have come.
async fn next_events(response: &mut reqwest::Response, count: usize) -> Vec<Value> {
    let mut text = String::new();
    let mut events = Vec::new();
    while events.len() < count {
        let chunk = tokio::time::timeout(Duration::from_secs(15), response.chunk())
            .await
            .expect("an event within 15 s")
            .expect("the stream reads")
            .expect("the stream is still open");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let kind = block
                .lines()
                .find_map(|l| l.strip_prefix("event:"))
                .map(str::trim);
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            if kind == Some("next") {
                events.push(serde_json::from_str(&data).expect("JSON data"));
            }
        }
    }
    events
}

async fn subscribe(server: &Server, token: &str, id: &str, after: &str) -> reqwest::Response {
    let query =
        "subscription($id: String!, $after: String) { ticketUpdated(ticketId: $id, after: $after) \
        { id version position ticket { priority } } }";
    let response = reqwest::Client::new()
        .post(server.url("/graphql/stream"))
        .bearer_auth(token)
        .header("Accept", "text/event-stream")
        .json(&json!({ "query": query, "variables": { "id": id, "after": after } }))
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    response
}

async fn a_subscription_over_sse_resumes_with_after_when_the_connection_drops(db: Db) {
    let server = db.server();
    let token = server.token("sam", &["AGENT"], &["support"]);
    let sam = Client::new(&server, Some(token.clone()));
    let (id, created) = create(&sam, "Flaky Wi-Fi", "support").await;
    let created_at = created["event"]["position"].as_str().unwrap().to_string();
    let priority = |p: &str| {
        let sam = &sam;
        let vars = json!({ "id": id, "p": p });
        async move {
            ok(sam
                .mutate(
                    "updateSupportTicketPriority(id: $id, priority: $p)",
                    "($id: String!, $p: TicketPriority!)",
                    vars,
                )
                .await)
        }
    };
    let mut stream = subscribe(&server, &token, &id, &created_at).await;
    let low = priority("LOW").await;
    let first = next_events(&mut stream, 1).await;
    let event = &first[0]["data"]["ticketUpdated"];
    assert_eq!(event["id"], low["event"]["id"], "{first:?}");
    assert_eq!(event["ticket"]["priority"], "LOW");
    let seen = event["position"].as_str().unwrap().to_string();
    drop(stream);

    let missed = priority("CRITICAL").await;
    let mut resumed = subscribe(&server, &token, &id, &seen).await;
    let again = next_events(&mut resumed, 1).await;
    assert_eq!(
        again[0]["data"]["ticketUpdated"]["id"], missed["event"]["id"],
        "{again:?}"
    );
    assert_eq!(again[0]["data"]["ticketUpdated"]["version"], 2);
}

/// Without a token the operation's result is an error event, not a stream
/// of someone's tickets.
#[tokio::test]
async fn an_sse_subscription_without_a_token_gets_an_error() {
    let server = Server::start();
    let response = reqwest::Client::new()
        .post(server.url("/graphql/stream"))
        .json(&json!({ "query": "subscription { myTicketUpdates { id } }" }))
        .send()
        .await
        .unwrap();
    let mut response = response;
    let events = next_events(&mut response, 1).await;
    assert_eq!(
        events[0]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{events:?}"
    );
}
