//! The queue-metrics and notifications read models, served over GraphQL.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tests::Server;

use crate::helpers::{create, error_code, introduce, ok, Client};

/// Polls `query` as `client` until `done` holds on its data (the projections
/// run behind the log), for at most ten seconds.
async fn eventually(client: &Client, query: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let data = client.data(query, json!({})).await;
        if done(&data) {
            return data;
        }
        assert!(Instant::now() < deadline, "never caught up: {data}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const INBOX: &str =
    "{ notifications { edges { cursor node { id eventType title read } } pageInfo { hasNextPage endCursor } unreadCount } }";

/// An agent assigns a ticket to another: the assignee is notified, marks it
/// read, and the queue's figures count the open ticket; requesters get no
/// figures and malformed ids change nothing.
#[tokio::test]
async fn an_assignment_notifies_the_assignee_and_counts_in_the_queue() {
    let server = Server::start();
    let sam = Client::user(&server, "sam", &["AGENT"], &["support"]);
    let kim = Client::user(&server, "kim", &["AGENT"], &["support"]);
    let alice = Client::user(&server, "alice", &["REQUESTER"], &[]);
    introduce(&sam).await;
    introduce(&kim).await;

    let (id, _) = create(&sam, "Printer on fire", "support").await;
    ok(sam
        .mutate(
            "assignSupportTicket(id: $id, assigneeId: \"kim\")",
            "($id: String!)",
            json!({ "id": id }),
        )
        .await);

    // Kim, an agent of the queue, hears of the new ticket, then of the
    // assignment (newest first).
    let inbox = eventually(&kim, INBOX, |d| d["notifications"]["unreadCount"] == 2).await;
    let edges = inbox["notifications"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2, "{inbox}");
    assert_eq!(edges[0]["node"]["eventType"], "ASSIGNED", "{inbox}");
    assert_eq!(edges[0]["node"]["read"], false, "{inbox}");
    assert_eq!(edges[1]["node"]["eventType"], "CREATED", "{inbox}");
    assert_eq!(
        inbox["notifications"]["pageInfo"]["endCursor"], edges[1]["cursor"],
        "{inbox}"
    );
    // The assigner hears nothing of their own action.
    let own = sam.data(INBOX, json!({})).await;
    assert_eq!(own["notifications"]["unreadCount"], 0, "{own}");

    // A malformed id is refused and marks nothing.
    let bad = kim
        .post(
            "mutation { markNotificationsRead(ids: [\"not-a-uuid\"]) }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&bad), "INVALID", "{bad}");
    let still = kim.data(INBOX, json!({})).await;
    assert_eq!(still["notifications"]["unreadCount"], 2, "{still}");

    let marked = kim
        .data("mutation { markAllNotificationsRead }", json!({}))
        .await;
    assert_eq!(marked["markAllNotificationsRead"], 2);
    let after = kim.data(INBOX, json!({})).await;
    assert_eq!(after["notifications"]["unreadCount"], 0, "{after}");
    assert_eq!(
        after["notifications"]["edges"][0]["node"]["read"], true,
        "{after}"
    );
    let unread = kim
        .data(
            "{ notifications(unreadOnly: true) { edges { cursor } unreadCount } }",
            json!({}),
        )
        .await;
    assert_eq!(unread["notifications"]["edges"], json!([]), "{unread}");

    let query = "{ queueMetrics(queue: \"support\") { queue open inProgress unassigned byPriority position } }";
    let figures = eventually(&sam, query, |d| d["queueMetrics"][0]["open"] == 1).await;
    let support = &figures["queueMetrics"][0];
    assert_eq!(support["queue"], "support");
    assert_eq!(support["unassigned"], 0, "{figures}");
    assert_eq!(support["byPriority"]["HIGH"], 1, "{figures}");

    // An agent outside the team sees no figures of the queue; a requester none at all.
    let outsider = Client::user(&server, "lee", &["AGENT"], &["billing"]);
    let none = outsider.data("{ queueMetrics { queue } }", json!({})).await;
    assert_eq!(none["queueMetrics"], json!([]), "{none}");
    let refused = alice.post("{ queueMetrics { queue } }", json!({})).await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
}

/// A notification marked read can be marked unread again, by its recipient
/// only: the unread count follows, a second time changes nothing, and
/// another user's call with the same id changes nothing either.
#[tokio::test]
async fn a_read_notification_can_be_marked_unread_by_its_recipient() {
    let server = Server::start();
    let sam = Client::user(&server, "sam", &["AGENT"], &["support"]);
    let kim = Client::user(&server, "kim", &["AGENT"], &["support"]);
    introduce(&sam).await;
    introduce(&kim).await;
    let (id, _) = create(&sam, "Printer on fire", "support").await;
    ok(sam
        .mutate(
            "assignSupportTicket(id: $id, assigneeId: \"kim\")",
            "($id: String!)",
            json!({ "id": id }),
        )
        .await);
    let inbox = eventually(&kim, INBOX, |d| d["notifications"]["unreadCount"] == 2).await;
    let note = inbox["notifications"]["edges"][0]["node"]["id"].clone();
    kim.data("mutation { markAllNotificationsRead }", json!({}))
        .await;
    let unread = "mutation($ids: [String!]!) { markNotificationsUnread(ids: $ids) }";
    let by_sam = sam.data(unread, json!({ "ids": [note] })).await;
    assert_eq!(by_sam["markNotificationsUnread"], 0, "not sam's: {by_sam}");
    let by_kim = kim.data(unread, json!({ "ids": [note] })).await;
    assert_eq!(by_kim["markNotificationsUnread"], 1, "{by_kim}");
    let again = kim.data(unread, json!({ "ids": [note] })).await;
    assert_eq!(again["markNotificationsUnread"], 0, "{again}");
    let after = kim.data(INBOX, json!({})).await;
    assert_eq!(after["notifications"]["unreadCount"], 1, "{after}");
    assert_eq!(
        after["notifications"]["edges"][0]["node"]["read"], false,
        "{after}"
    );
}
