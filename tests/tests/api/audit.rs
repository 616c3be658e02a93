//! The event log over GraphQL: each event's hash, and the `eventLogTail`
//! subscription.

use std::time::Duration;

use serde_json::json;
use tests::{stdout_ok, tickets, Server};

use crate::helpers::{create, log_len, Client};
use crate::subscriptions::{connect, next_message, subscribe, Socket};

/// `eventLog` serves each event's `hash`, the same SHA-256 that `tickets log
/// export` writes and `tickets log verify` recomputes.
#[tokio::test]
async fn the_event_log_serves_each_events_hash() {
    let server = Server::start();
    let sam = Client::user(&server, "sam", &["AGENT"], &["support"]);
    create(&sam, "Printer on fire", "support").await;
    let root = Client::user(&server, "root", &["ADMIN"], &[]);
    let data = root
        .data("{ eventLog { events { id hash } } }", json!({}))
        .await;
    let served = data["eventLog"]["events"].as_array().unwrap().clone();
    assert!(!served.is_empty());

    let export = stdout_ok(&tickets(&server.database_url, &["log", "export"]));
    let exported: Vec<_> = export
        .lines()
        .skip(1)
        .map(|l| {
            let line: serde_json::Value = serde_json::from_str(l).unwrap();
            json!({ "id": line["id"], "hash": line["hash"] })
        })
        .collect();
    assert_eq!(served, exported);
    assert!(served
        .iter()
        .all(|e| e["hash"].as_str().is_some_and(|h| h.len() == 64)));
    let verified = stdout_ok(&tickets(&server.database_url, &["log", "verify"]));
    assert!(verified.starts_with("verified"), "{verified}");
}

const TAIL: &str =
    "subscription($after: String) { eventLogTail(after: $after) { position id hash } }";

/// The next event of an `eventLogTail` subscription.
async fn next_tail_event(socket: &mut Socket) -> serde_json::Value {
    let message = next_message(socket, Duration::from_secs(15))
        .await
        .expect("an event");
    assert_eq!(message["type"], "next", "{message}");
    assert!(message["payload"].get("errors").is_none(), "{message}");
    message["payload"]["data"]["eventLogTail"].clone()
}

/// `eventLogTail(after: "0")` replays the whole log, then delivers new
/// events live: every position once, in order, none skipped, each with its
/// hash as `eventLog` serves it. A non-admin is refused.
#[tokio::test]
async fn the_event_log_tail_replays_then_follows_without_gap() {
    let server = Server::start();
    let sam = Client::user(&server, "sam", &["AGENT"], &["support"]);
    create(&sam, "Printer on fire", "support").await;
    let admin_token = server.token("root", &["ADMIN"], &[]);
    let root = Client::new(&server, Some(admin_token.clone()));
    let stored = log_len(&root).await;

    let mut socket = connect(&server, &admin_token).await;
    subscribe(&mut socket, "1", TAIL, json!({ "after": "0" })).await;
    let mut positions = Vec::new();
    let mut first_hash = None;
    for _ in 0..stored {
        let event = next_tail_event(&mut socket).await;
        positions.push(
            event["position"]
                .as_str()
                .unwrap()
                .parse::<usize>()
                .unwrap(),
        );
        first_hash.get_or_insert(event["hash"].clone());
    }
    create(&sam, "VPN drops", "support").await;
    let total = log_len(&root).await;
    assert!(total > stored);
    for _ in stored..total {
        let event = next_tail_event(&mut socket).await;
        positions.push(
            event["position"]
                .as_str()
                .unwrap()
                .parse::<usize>()
                .unwrap(),
        );
    }
    // SQLite hands out positions 1, 2, 3... with no holes.
    assert_eq!(positions, (1..=total).collect::<Vec<_>>());
    let served = root
        .data("{ eventLog(first: 1) { events { hash } } }", json!({}))
        .await;
    assert_eq!(
        Some(served["eventLog"]["events"][0]["hash"].clone()),
        first_hash
    );

    let sam_token = server.token("sam", &["AGENT"], &["support"]);
    let mut refused = connect(&server, &sam_token).await;
    subscribe(&mut refused, "1", TAIL, json!({ "after": "0" })).await;
    let message = next_message(&mut refused, Duration::from_secs(15))
        .await
        .expect("an answer");
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{message}"
    );
}
