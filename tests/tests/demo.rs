//! `tickets demo`, then the server on the same file, queried as its users.

use std::time::Duration;

use serde_json::{json, Value};
use tests::{stdout_ok, tickets, Server};

/// GraphQL as `token` on `server`; the body must carry no errors.
async fn query(server: &Server, token: &str, query: &str, variables: Value) -> Value {
    let body: Value = reqwest::Client::new()
        .post(server.graphql_url())
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("a JSON body");
    assert!(body.get("errors").is_none(), "unexpected errors: {body}");
    body["data"].clone()
}

/// Waits until `/readyz` says every projection caught up with the log (the
/// server runs with a readiness lag of 0), or gives up after a minute.
async fn wait_until_ready(server: &Server) -> Value {
    let http = reqwest::Client::new();
    let mut last = Value::Null;
    for _ in 0..600 {
        let response = http.get(server.url("/readyz")).send().await.unwrap();
        let ok = response.status() == 200;
        last = response.json().await.unwrap();
        if ok {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server never caught up with the demo log: {last}");
}

/// A newcomer's demo: `tickets demo --tickets 30` fills a fresh file through
/// the command path (a second run adds nothing); the server started on it
/// serves all 30 tickets with their histories to an admin, queue figures to
/// staff, and to a requester only the tickets they opened or watch.
#[tokio::test]
async fn the_demo_data_set_is_served_with_history_metrics_and_visibility() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());
    let printed = stdout_ok(&tickets(&url, &["demo", "--tickets", "30", "--seed", "7"]));
    assert!(printed.contains("30 tickets"), "{printed}");
    assert!(
        printed.contains("tickets token --sub demo-admin --role ADMIN"),
        "{printed}"
    );
    let again = stdout_ok(&tickets(&url, &["demo", "--tickets", "30", "--seed", "7"]));
    assert!(again.contains("nothing new"), "{again}");

    let server = Server::spawn(url, &[("TICKETS_READY_MAX_LAG", "0")], Some(dir));
    wait_until_ready(&server).await;
    let admin = server.token("demo-admin", &["ADMIN"], &[]);
    let all = query(
        &server,
        &admin,
        "{ supportTickets(first: 100, filter: {includeDeleted: true}) { totalCount \
           edges { node { id reference status queue createdBy { id } watchers { id } } } } }",
        json!({}),
    )
    .await;
    assert_eq!(all["supportTickets"]["totalCount"], 30, "{all}");
    let nodes: Vec<Value> = all["supportTickets"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    assert!(
        nodes.iter().any(|n| n["status"] != "OPEN"),
        "some tickets moved on: {all}"
    );

    // Histories: assignments, status walks, comments.
    let mut kinds = std::collections::HashSet::new();
    let mut longest = 0;
    for node in &nodes {
        let history = query(
            &server,
            &admin,
            "query($id: String!) { supportTicketHistory(id: $id) { eventType } }",
            json!({ "id": node["id"] }),
        )
        .await;
        let events = history["supportTicketHistory"].as_array().unwrap().clone();
        longest = longest.max(events.len());
        kinds.extend(
            events
                .iter()
                .map(|e| e["eventType"].as_str().unwrap().to_string()),
        );
    }
    assert!(longest >= 4, "a ticket with some history: {kinds:?}");
    for kind in ["CREATED", "ASSIGNED", "STATUS_CHANGED", "COMMENTED"] {
        assert!(kinds.contains(kind), "{kind} missing from {kinds:?}");
    }

    let metrics = query(
        &server,
        &admin,
        "{ queueMetrics { queue open inProgress onHold resolved closed } }",
        json!({}),
    )
    .await;
    let queues = metrics["queueMetrics"].as_array().unwrap();
    assert!(!queues.is_empty(), "{metrics}");
    let total: i64 = queues
        .iter()
        .flat_map(|q| {
            ["open", "inProgress", "onHold", "resolved", "closed"]
                .map(|f| q[f].as_i64().unwrap_or(0))
        })
        .sum();
    assert!(total > 0, "{metrics}");

    // A requester sees what they opened or watch, nothing else.
    let requester = nodes[0]["createdBy"]["id"].as_str().unwrap().to_string();
    let token = server.token(&requester, &["REQUESTER"], &[]);
    let own = query(
        &server,
        &token,
        "{ supportTickets(first: 100) { totalCount edges { node { id createdBy { id } watchers { id } } } } }",
        json!({}),
    )
    .await;
    let seen = own["supportTickets"]["edges"].as_array().unwrap();
    assert!(!seen.is_empty(), "{own}");
    for edge in seen {
        let node = &edge["node"];
        let watching = node["watchers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["id"] == requester.as_str());
        assert!(
            node["createdBy"]["id"] == requester.as_str() || watching,
            "{requester} sees another's ticket: {node}"
        );
    }
    let expected = nodes
        .iter()
        .filter(|n| {
            n["createdBy"]["id"] == requester.as_str()
                || n["watchers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|w| w["id"] == requester.as_str())
        })
        .count();
    assert!(seen.len() <= expected, "{own}");
}
