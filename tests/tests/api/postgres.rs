//! The server on PostgreSQL, in a schema of its own per test.

use serde_json::json;
use tests::Server;

use crate::helpers::{create, ok, Client};

fn postgres_url() -> String {
    std::env::var("TICKETS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Create, query (by id and in the list) and read the history on PostgreSQL.
#[tokio::test]
async fn the_server_creates_and_reads_tickets_on_postgres() {
    let schema = format!(
        "api_test_{}_{}",
        std::process::id(),
        tests::unique() % 1_000_000
    );
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
