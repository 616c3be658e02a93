//! The server on PostgreSQL, in a schema of its own per test.

use serde_json::json;
use tests::Server;

use crate::helpers::{create, ok, Client};

fn postgres_url() -> String {
    std::env::var("TICKETS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A schema name of this test process's own, starting with `prefix`.
fn fresh_schema(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        tests::unique() % 1_000_000
    )
}

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
