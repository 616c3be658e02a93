//! `bulkUpdateSupportTickets` (issue 24, "Bulk operations"): one result per
//! id in order, each ticket under the rules of the single commands, and a
//! retry with the same key that appends only what the first call did not.

use serde_json::{json, Value};

use crate::helpers::{create, log_len, ok, Client, Db};

crate::on_both_databases!(
    a_bulk_call_answers_each_ticket_in_order_under_the_single_command_rules,
    a_bulk_retry_with_the_same_key_appends_only_what_was_missing,
);

const BULK: &str = "mutation($ids: [String!]!, $k: String) { bulkUpdateSupportTickets(ids: $ids, \
    action: {priority: HIGH, addTags: [\"outage\"], comment: \"Looking into it\"}, idempotencyKey: $k) \
    { succeeded failed results { success errorCode ticket { id priority tags comments { comment } } } } }";

async fn bulk(client: &Client, ids: &[&str], key: Option<&str>) -> Value {
    client.data(BULK, json!({ "ids": ids, "k": key })).await["bulkUpdateSupportTickets"].clone()
}

/// Visible tickets are changed; a hidden one and a missing one are
/// NOT_FOUND, a deleted one DELETED, each in its place; the rest go on.
async fn a_bulk_call_answers_each_ticket_in_order_under_the_single_command_rules(db: Db) {
    let server = db.server();
    let sam = Client::user(&server, "sam", &["AGENT"], &["support"]);
    let kim = Client::user(&server, "kim", &["AGENT"], &["billing"]);
    let root = Client::user(&server, "root", &["ADMIN"], &[]);
    let (a, _) = create(&sam, "First", "support").await;
    let (b, _) = create(&sam, "Second", "support").await;
    let (hidden, _) = create(&kim, "Not sam's", "billing").await;
    let (deleted, _) = create(&sam, "Gone", "support").await;
    ok(root
        .mutate(
            "deleteSupportTicket(id: $id)",
            "($id: String!)",
            json!({ "id": deleted }),
        )
        .await);
    let missing = "TCK-999999";
    let answer = bulk(&sam, &[&a, &hidden, &b, &deleted, missing], None).await;
    let codes: Vec<Value> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["errorCode"].clone())
        .collect();
    assert_eq!(
        codes,
        [
            Value::Null,
            json!("NOT_FOUND"),
            Value::Null,
            json!("DELETED"),
            json!("NOT_FOUND")
        ],
        "{answer}"
    );
    assert_eq!(
        (answer["succeeded"].clone(), answer["failed"].clone()),
        (json!(2), json!(3))
    );
    let first = &answer["results"][0]["ticket"];
    assert_eq!(first["id"], a.as_str());
    assert_eq!(first["priority"], "HIGH", "{first}");
    assert!(
        first["tags"].as_array().unwrap().contains(&json!("outage")),
        "{first}"
    );
    assert_eq!(
        first["comments"][0]["comment"], "Looking into it",
        "{first}"
    );
}

/// A call cut off after its first ticket, retried with the same key, adds
/// only the second ticket's events; retried again, it adds nothing and
/// answers as before. Every event of the call carries the call's `bulkId`.
async fn a_bulk_retry_with_the_same_key_appends_only_what_was_missing(db: Db) {
    let server = db.server();
    let sam = Client::user(&server, "sam", &["AGENT"], &["support"]);
    let root = Client::user(&server, "root", &["ADMIN"], &[]);
    let (a, _) = create(&sam, "First", "support").await;
    let (b, _) = create(&sam, "Second", "support").await;
    let start = log_len(&root).await;
    bulk(&sam, &[&a], Some("triage-42")).await;
    let after_cut = log_len(&root).await;
    // `create` makes HIGH tickets: the priority changes nothing.
    assert_eq!(after_cut - start, 2, "the tag and the comment on the first");
    let retried = bulk(&sam, &[&a, &b], Some("triage-42")).await;
    assert_eq!(retried["succeeded"], 2, "{retried}");
    assert_eq!(log_len(&root).await - after_cut, 2, "the second's only");
    let again = bulk(&sam, &[&a, &b], Some("triage-42")).await;
    assert_eq!(log_len(&root).await - after_cut, 2, "nothing more");
    assert_eq!(again["results"], retried["results"]);
    for result in again["results"].as_array().unwrap() {
        assert_eq!(
            result["ticket"]["comments"].as_array().unwrap().len(),
            1,
            "{result}"
        );
    }
    let log = root
        .data(
            "{ eventLog(first: 1000) { events { streamId metadata } } }",
            json!({}),
        )
        .await;
    let bulk_ids: std::collections::HashSet<String> = log["eventLog"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["metadata"]["bulkId"].as_str().map(str::to_string))
        .collect();
    assert_eq!(bulk_ids.len(), 1, "one call, one bulkId: {bulk_ids:?}");
}
