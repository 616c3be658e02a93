//! `/readyz`: the database, and every projection running close to the log.

use std::time::Duration;

use serde_json::Value;
use sqlx::Connection;
use tests::{stdout_ok, tickets, Server};

/// `/readyz` as (status, JSON body).
async fn readyz(server: &Server) -> (u16, Value) {
    let response = reqwest::get(server.url("/readyz"))
        .await
        .expect("readyz answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// A fresh server is ready, and says so for each projection it runs: its
/// checkpoint, lag and state, and the threshold it was held to.
#[tokio::test]
async fn a_fresh_server_is_ready_and_lists_its_projections() {
    let server = Server::start_with(&[("TICKETS_READY_MAX_LAG", "5")]);
    let (status, body) = readyz(&server).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ready"], true, "{body}");
    assert_eq!(body["maxLag"], 5, "{body}");
    assert_eq!(body["failing"], serde_json::json!([]), "{body}");
    let names: Vec<&str> = body["projections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in ["tickets", "users", "queue_metrics", "notifications"] {
        assert!(names.contains(&name), "{name} missing: {body}");
    }
    for p in body["projections"].as_array().unwrap() {
        assert_eq!(p["state"], "running", "{body}");
        assert!(p["lag"].is_u64() && p["checkpoint"].is_string(), "{body}");
    }
}

/// An event the tickets projection cannot apply (a ticket stream without a
/// ticket id, written straight into the SQLite log) stops that projection:
/// `/readyz` answers 503 and names it, with its error.
#[tokio::test]
async fn a_poisoned_projection_makes_the_server_unready_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tickets.db");
    let url = format!("sqlite://{}", path.display());
    stdout_ok(&tickets(
        &url,
        &["ticket", "create", "--request", "Before the poison"],
    ));
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO events (id, stream_id, version, event_type, schema_version, data, \
         metadata, recorded_at) VALUES ('00000000-0000-4000-8000-00000000beef', \
         'ticket-not-a-uuid', 0, 'Created', 1, '{}', '{}', '2026-01-01T00:00:00Z')",
    )
    .execute(&mut db)
    .await
    .unwrap();
    db.close().await.unwrap();

    let server = Server::spawn(url, &[], Some(dir));
    let mut last = Value::Null;
    for _ in 0..300 {
        let (status, body) = readyz(&server).await;
        // Every projection meets the poison on its own time: wait for the
        // tickets projection's verdict, not just the first one to stop.
        let tickets_failed = body["failing"]
            .as_array()
            .is_some_and(|f| f.iter().any(|n| n == "tickets"));
        if status == 503 && tickets_failed {
            last = body;
            break;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["ready"], false, "never unready: {last}");
    let failing: Vec<&str> = last["failing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(failing.contains(&"tickets"), "{last}");
    assert!(
        last["reason"].as_str().unwrap().contains("tickets"),
        "{last}"
    );
    let tickets = last["projections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "tickets")
        .unwrap();
    assert_eq!(tickets["state"], "failed", "{last}");
    assert!(
        tickets["error"].as_str().unwrap().contains("not-a-uuid"),
        "{last}"
    );
}

/// With `--ops-listen`, health, readiness and metrics are served on that
/// address, and readiness and metrics (which query the database) are gone
/// from the public one; the ops address serves nothing else.
#[tokio::test]
async fn ops_listen_moves_readiness_and_metrics_off_the_public_address() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ops = free.local_addr().unwrap().to_string();
    drop(free);
    let server = Server::start_with(&[("TICKETS_OPS_LISTEN", &ops)]);
    let http = reqwest::Client::new();
    let status = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            status(format!("http://{ops}{path}")).await,
            200,
            "ops {path}"
        );
    }
    let metrics = http
        .get(format!("http://{ops}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("tickets_open_sockets"), "{metrics}");
    assert_eq!(status(server.url("/healthz")).await, 200);
    assert_eq!(status(server.url("/readyz")).await, 404);
    assert_eq!(status(server.url("/metrics")).await, 404);
    assert_eq!(status(format!("http://{ops}/graphql")).await, 404);
}
