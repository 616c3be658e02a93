//! The server on PostgreSQL, in a schema of its own per test.

use serde_json::json;
use tests::Server;

use crate::helpers::{create, fresh_schema, ok, postgres_url, Client};

/// Create, query (by id and in the list) and read the history on PostgreSQL.
#[tokio::test]
async fn the_server_creates_and_reads_tickets_on_postgres() {
    let schema = fresh_schema("api_test");
    let server = Server::spawn(
        postgres_url(),
        &[("TICKETS_DATABASE_SCHEMA", &schema)],
        None,
    );
    let sam = Client::user(&server, "sam", &["AGENT"], &["support"]);
    let (id, _) = create(&sam, "Database ticket", "support").await;
    ok(sam
        .mutate(
            "updateSupportTicketStatus(id: $id, status: IN_PROGRESS)",
            "($id: String!)",
            json!({ "id": id }),
        )
        .await);
    let data = sam
        .data(
            "query($id: String!) { supportTicket(id: $id) { status version } \
             supportTickets { totalCount edges { node { id status } } } \
             supportTicketHistory(id: $id) { eventType changes { field oldValue newValue } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        data["supportTicket"],
        json!({ "status": "IN_PROGRESS", "version": 1 })
    );
    assert_eq!(data["supportTickets"]["totalCount"], 1);
    assert_eq!(
        data["supportTickets"]["edges"][0]["node"],
        json!({ "id": id, "status": "IN_PROGRESS" })
    );
    // Keyset pagination, a search and a user object from the read models.
    let (second, _) = create(&sam, "Another database ticket", "support").await;
    let page = "query($after: String) { supportTickets(first: 1, after: $after, \
        filter: {search: \"DATABASE\", tags: [\"hardware\"]}) { totalCount \
        edges { node { id createdBy { id roles } } } pageInfo { hasNextPage endCursor } } }";
    let one = sam.data(page, json!({ "after": null })).await;
    assert_eq!(one["supportTickets"]["totalCount"], 2);
    assert_eq!(one["supportTickets"]["edges"][0]["node"]["id"], id);
    assert_eq!(one["supportTickets"]["pageInfo"]["hasNextPage"], true);
    let cursor = one["supportTickets"]["pageInfo"]["endCursor"].clone();
    let two = sam.data(page, json!({ "after": cursor })).await;
    assert_eq!(two["supportTickets"]["edges"][0]["node"]["id"], second);
    assert_eq!(two["supportTickets"]["pageInfo"]["hasNextPage"], false);
    let root = Client::user(&server, "root", &["ADMIN"], &[]);
    let seen_by_admin = root.data(page, json!({ "after": null })).await;
    assert_eq!(
        seen_by_admin["supportTickets"]["edges"][0]["node"]["createdBy"],
        json!({ "id": "sam", "roles": ["AGENT"] })
    );

    let history = data["supportTicketHistory"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["eventType"], "STATUS_CHANGED");
    assert!(history[1]["changes"]
        .as_array()
        .unwrap()
        .contains(&json!({ "field": "status", "oldValue": "OPEN", "newValue": "IN_PROGRESS" })));
}

/// The database stops answering (a stalled connection, not a refused one):
/// `/readyz` answers 503 within a few seconds, naming the database, and a
/// query is stopped at `--request-timeout` with `TIMEOUT` instead of hanging;
/// once the database answers again, the node is ready and serves.
#[tokio::test]
async fn a_database_that_stops_answering_is_reported_within_bounded_time() {
    let schema = fresh_schema("api_stall");
    let target = postgres_url();
    let host = target
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("127.0.0.1:5432")
        .to_string();
    let proxy = tests::proxy::StallingProxy::start(&host);
    let url = target.replacen(&host, proxy.address(), 1);
    let server = Server::spawn(
        url,
        &[
            ("TICKETS_DATABASE_SCHEMA", &schema),
            ("TICKETS_REQUEST_TIMEOUT", "2s"),
        ],
        None,
    );
    let sam = Client::user(&server, "sam", &["AGENT"], &["support"]);
    create(&sam, "Before the stall", "support").await;
    // A hung answer fails the test instead of hanging it.
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .unwrap();
    assert_eq!(
        http.get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    proxy.stall();
    let started = std::time::Instant::now();
    let ready = http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(started.elapsed() < std::time::Duration::from_secs(6));
    let body: serde_json::Value = ready.json().await.unwrap();
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("database"),
        "{body}"
    );

    let started = std::time::Instant::now();
    let stopped = http
        .post(server.graphql_url())
        .bearer_auth(server.token("sam", &["AGENT"], &["support"]))
        .json(&json!({ "query": "{ supportTicket(id: \"00000000-0000-4000-8000-000000000001\") { id } }" }))
        .send()
        .await
        .unwrap();
    let status = stopped.status().as_u16();
    let body: serde_json::Value = stopped.json().await.unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "{body}"
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "TIMEOUT", "{body}");

    proxy.resume();
    let mut ready = false;
    for _ in 0..100 {
        if http
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "ready again once the database answers");
    create(&sam, "After the stall", "support").await;
}

/// One write retried, as a client should, with its idempotency key until
/// the server says it is done; what each failed try was answered (HTTP
/// status, `extensions.code`, `retryAfterSeconds`).
async fn write_until_done(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    key: &str,
) -> Vec<(u16, String, Option<u64>)> {
    let query = "mutation($r: String!, $k: String) { r: createSupportTicket(\
        input: {request: $r, queue: \"support\"}, idempotencyKey: $k) { success errorCode } }";
    let mut failed = Vec::new();
    for _ in 0..200 {
        let response = http
            .post(url)
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": { "r": key, "k": key } }))
            .timeout(std::time::Duration::from_secs(15))
            .send()
            .await
            .expect("the server itself stays up");
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if body["data"]["r"]["success"] == true {
            return failed;
        }
        let error = &body["errors"][0]["extensions"];
        failed.push((
            status,
            error["code"].as_str().unwrap_or("").to_string(),
            error["retryAfterSeconds"].as_u64(),
        ));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{key} never went through: {failed:?}")
}

/// PostgreSQL restarted under load (every connection cut, new ones refused
/// for 1.5 s): a write that fails meanwhile is answered 503 `UNAVAILABLE`
/// with `retryAfterSeconds`, never `INTERNAL`; writers retrying with their
/// idempotency keys lose nothing and duplicate nothing, a subscriber that stays connected receives every event
/// once and in order, and `/readyz` answers 200 again. Prints how long the
/// recovery took.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_restart_under_writes_loses_and_duplicates_nothing() {
    use crate::subscriptions::{connect, next_message, subscribe};
    use std::time::{Duration, Instant};

    let schema = fresh_schema("api_restart");
    let target = postgres_url();
    let host = target
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("host:port in the URL")
        .to_string();
    let proxy = tests::proxy::StallingProxy::start(&host);
    let url = target.replacen(&host, proxy.address(), 1);
    let server = Server::spawn(
        url,
        &[
            ("TICKETS_DATABASE_SCHEMA", &schema),
            ("TICKETS_REQUEST_TIMEOUT", "5s"),
        ],
        None,
    );
    let token = server.token("root", &["ADMIN"], &[]);
    let mut socket = connect(&server, &token).await;
    subscribe(
        &mut socket,
        "all",
        "subscription { supportTicketEvents { id position ticket { request } } }",
        json!({}),
    )
    .await;

    let http = reqwest::Client::new();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (http, url, token) = (http.clone(), server.graphql_url(), token.clone());
            tokio::spawn(async move {
                let mut failed = Vec::new();
                for n in 0..15 {
                    let key = format!("w{w}-{n}");
                    failed.extend(write_until_done(&http, &url, &token, &key).await);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                failed
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    proxy.restart(Duration::from_millis(1500));
    let back = Instant::now() + Duration::from_millis(1500);
    let mut failed = Vec::new();
    for w in writers {
        failed.extend(w.await.expect("a writer finishes"));
    }
    let retried = failed.len();
    assert!(retried > 0, "the restart must be felt by some write");
    for answer in &failed {
        assert!(
            matches!(answer, (503, code, Some(1)) if code == "UNAVAILABLE")
                || matches!(answer, (503, code, _) if code == "TIMEOUT"),
            "a write during the outage: {answer:?} (all: {failed:?})"
        );
    }
    let written = Instant::now();

    let mut ready_after = None;
    for _ in 0..100 {
        let ready = http.get(server.url("/readyz")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            ready_after = Some(Instant::now().saturating_duration_since(back));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready_after = ready_after.expect("/readyz answers 200 again");

    let admin = Client::new(&server, Some(token.clone()));
    let mut keys = std::collections::HashMap::<String, usize>::new();
    let mut after: Option<String> = None;
    let mut ticket_events = Vec::new();
    loop {
        let page = admin
            .data(
                "query($a: String) { eventLog(after: $a, first: 1000) { events { id streamId metadata } nextAfter } }",
                json!({ "a": after }),
            )
            .await;
        let events = page["eventLog"]["events"].as_array().unwrap().clone();
        if events.is_empty() {
            break;
        }
        for event in &events {
            if let Some(key) = event["metadata"]["idempotencyKey"].as_str() {
                *keys.entry(key.to_string()).or_default() += 1;
            }
            if event["streamId"].as_str().unwrap().starts_with("ticket-") {
                ticket_events.push(event["id"].as_str().unwrap().to_string());
            }
        }
        after = page["eventLog"]["nextAfter"].as_str().map(str::to_string);
    }
    assert_eq!(keys.len(), 60, "every write is in the log");
    assert!(keys.values().all(|n| *n == 1), "each once: {keys:?}");

    let mut delivered = Vec::new();
    let mut last_position = 0u64;
    while delivered.len() < ticket_events.len() {
        let message = next_message(&mut socket, Duration::from_secs(30))
            .await
            .unwrap_or_else(|| {
                panic!(
                    "{} of {} events delivered",
                    delivered.len(),
                    ticket_events.len()
                )
            });
        assert_eq!(message["type"], "next", "{message}");
        let event = &message["payload"]["data"]["supportTicketEvents"];
        let position: u64 = event["position"].as_str().unwrap().parse().unwrap();
        assert!(position > last_position, "in order, once: {message}");
        last_position = position;
        delivered.push(event["id"].as_str().unwrap().to_string());
    }
    assert_eq!(
        delivered, ticket_events,
        "the subscriber got every event once"
    );
    println!(
        "postgres restart: 60 writes, {retried} retries, the last written {} ms after the \
         database was back; /readyz, polled from then, 200 at {} ms",
        written.saturating_duration_since(back).as_millis(),
        ready_after.as_millis()
    );
}

/// The web client's development sign-in on PostgreSQL: the users read model
/// lists a user who called the server, and a token is minted for them.
#[tokio::test]
async fn the_development_sign_in_lists_and_mints_on_postgres() {
    let schema = fresh_schema("api_dev_sign_in");
    let server = Server::spawn(
        postgres_url(),
        &[
            ("TICKETS_DATABASE_SCHEMA", &schema),
            ("TICKETS_JWT_SECRET", ""),
        ],
        None,
    );
    crate::helpers::introduce(&Client::user(&server, "sam", &["AGENT"], &["support"])).await;
    let users: serde_json::Value = reqwest::get(server.url("/dev/users"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        users["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["id"] == "sam"),
        "{users}"
    );
    let minted = reqwest::Client::new()
        .post(server.url("/dev/token"))
        .json(&json!({ "user": "sam" }))
        .send()
        .await
        .unwrap();
    assert_eq!(minted.status(), 200);
}
