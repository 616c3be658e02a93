//! The event log's hashes over GraphQL.

use serde_json::json;
use tests::{stdout_ok, tickets, Server};

use crate::helpers::{create, Client};

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
