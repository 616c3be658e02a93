//! Every ticket mutation: its happy path and its rejections.

use serde_json::json;
use tests::Server;

use crate::helpers::{create, introduce, log_len, ok, refused, Client, Db};

crate::on_both_databases!(a_conflict_carries_the_changes_made_since_the_callers_version,);

/// Each of the sixteen ticket mutations changes the ticket as asked and returns
/// the event it appended, with the field changes taken from the history.
#[tokio::test]
async fn every_ticket_mutation_changes_the_ticket_and_returns_its_event() {
    let server = Server::start();
    let alice = Client::user(&server, "alice", &["REQUESTER"], &[]);
    let sam = Client::user(&server, "sam", &["AGENT"], &["support", "hardware"]);
    let root = Client::user(&server, "root", &["ADMIN"], &[]);
    introduce(&sam).await;

    let (id, created) = create(&alice, "Printer on fire", "support").await;
    assert_eq!(created["event"]["eventType"], "CREATED");
    assert_eq!(created["event"]["version"], 0);
    assert!(created["event"]["previousState"].is_null());
    assert_eq!(created["ticket"]["tags"], json!(["hardware"]));
    assert_eq!(created["ticket"]["reference"], "TCK-000001");
    let (other, _) = create(&sam, "Toner low", "support").await;

    let vars = json!({ "id": id, "other": other });
    let steps: Vec<(&str, &str, &str)> = vec![
        ("updateSupportTicket(id: $id, input: {description: \"Smoke\"})", "UPDATED", "description"),
        ("assignSupportTicket(id: $id, assigneeId: \"sam\")", "ASSIGNED", "assignedTo"),
        ("unassignSupportTicket(id: $id)", "UNASSIGNED", "assignedTo"),
        ("updateSupportTicketStatus(id: $id, status: IN_PROGRESS)", "STATUS_CHANGED", "status"),
        ("updateSupportTicketPriority(id: $id, priority: CRITICAL)", "PRIORITY_CHANGED", "priority"),
        ("commentOnSupportTicket(id: $id, comment: \"On it\")", "COMMENTED", "comments"),
        (
            "addSupportTicketAttachment(id: $id, attachment: {name: \"photo.jpg\", url: \"https://files.example/p.jpg\", size: 10})",
            "ATTACHMENT_ADDED",
            "attachments",
        ),
        ("addSupportTicketTag(id: $id, tag: \"urgent\")", "TAG_ADDED", "tags"),
        ("removeSupportTicketTag(id: $id, tag: \"urgent\")", "TAG_REMOVED", "tags"),
        ("relateSupportTickets(id: $id, relatedId: $other)", "RELATED_ADDED", "relatedTickets"),
        ("unrelateSupportTickets(id: $id, relatedId: $other)", "RELATED_REMOVED", "relatedTickets"),
        ("watchSupportTicket(id: $id)", "WATCHER_ADDED", "watchers"),
        ("unwatchSupportTicket(id: $id)", "WATCHER_REMOVED", "watchers"),
        ("moveSupportTicket(id: $id, queue: \"hardware\")", "QUEUE_CHANGED", "queue"),
    ];
    for (version, (call, event_type, field)) in steps.into_iter().enumerate() {
        let result = ok(sam
            .mutate(
                call,
                if call.contains("$other") {
                    "($id: String!, $other: String!)"
                } else {
                    "($id: String!)"
                },
                vars.clone(),
            )
            .await);
        let event = &result["event"];
        assert_eq!(event["eventType"], event_type, "{call}: {result}");
        assert_eq!(event["version"], version + 1, "{call}");
        assert_eq!(result["ticket"]["version"], version + 1, "{call}");
        assert_eq!(event["triggeredBy"]["id"], "sam");
        assert!(event["previousState"].is_object(), "{call}");
        let changed: Vec<&str> = event["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap())
            .collect();
        assert!(changed.contains(&field), "{call}: {changed:?}");
    }
    // Deleting is for admins.
    let deleted = ok(root
        .mutate(
            "deleteSupportTicket(id: $id, reason: \"duplicate\")",
            "($id: String!)",
            json!({ "id": id }),
        )
        .await);
    assert_eq!(deleted["event"]["eventType"], "DELETED");
    assert_eq!(deleted["ticket"]["deleted"], true);
    assert_eq!(deleted["event"]["metadata"]["reason"], "duplicate");

    let status = ok(root
        .mutate(
            "updateSupportTicketStatus(id: $id, status: RESOLVED, comment: \"Fixed\")",
            "($id: String!)",
            json!({ "id": other }),
        )
        .await);
    assert_eq!(
        status["event"]["eventType"], "COMMENTED",
        "the last event of two"
    );
    assert_eq!(status["event"]["comment"]["comment"], "Fixed");
    assert_eq!(status["ticket"]["status"], "RESOLVED");
}

/// Refusals come back as `success: false` with the contract's code and append
/// nothing: FORBIDDEN, NOT_FOUND, CONFLICT, INVALID and DELETED.
#[tokio::test]
async fn a_refused_mutation_reports_its_code_and_appends_nothing() {
    let server = Server::start();
    let alice = Client::user(&server, "alice", &["REQUESTER"], &[]);
    let sam = Client::user(&server, "sam", &["AGENT"], &["support"]);
    let root = Client::user(&server, "root", &["ADMIN"], &[]);
    introduce(&sam).await;
    introduce(&root).await;
    let (id, _) = create(&alice, "VPN drops", "support").await;
    let vars = json!({ "id": id });
    let before = log_len(&root).await;

    let r = alice
        .mutate(
            "assignSupportTicket(id: $id, assigneeId: \"sam\")",
            "($id: String!)",
            vars.clone(),
        )
        .await;
    refused(&r, "FORBIDDEN");
    let r = alice
        .mutate(
            "commentOnSupportTicket(id: $id, comment: \"psst\", internal: true)",
            "($id: String!)",
            vars.clone(),
        )
        .await;
    refused(&r, "FORBIDDEN");
    let r = sam
        .mutate(
            "deleteSupportTicket(id: $id)",
            "($id: String!)",
            vars.clone(),
        )
        .await;
    refused(&r, "FORBIDDEN");

    let missing = json!({ "id": "00000000-0000-0000-0000-000000000000" });
    let r = sam
        .mutate(
            "addSupportTicketTag(id: $id, tag: \"x\")",
            "($id: String!)",
            missing,
        )
        .await;
    refused(&r, "NOT_FOUND");
    let r = sam
        .mutate(
            "addSupportTicketTag(id: $id, tag: \"x\")",
            "($id: String!)",
            json!({ "id": "TCK-999999" }),
        )
        .await;
    refused(&r, "NOT_FOUND");

    let r = sam
        .mutate(
            "updateSupportTicketPriority(id: $id, priority: LOW, expectedVersion: 7)",
            "($id: String!)",
            vars.clone(),
        )
        .await;
    refused(&r, "CONFLICT");

    let r = sam
        .mutate(
            "assignSupportTicket(id: $id, assigneeId: \"nobody\")",
            "($id: String!)",
            vars.clone(),
        )
        .await;
    refused(&r, "INVALID");
    let r = sam
        .mutate(
            "assignSupportTicket(id: $id, assigneeId: \"alice\")",
            "($id: String!)",
            vars.clone(),
        )
        .await;
    refused(&r, "INVALID");
    let r = alice
        .mutate(
            "createSupportTicket(input: {request: \"   \"})",
            "",
            json!({}),
        )
        .await;
    refused(&r, "INVALID");
    assert_eq!(log_len(&root).await, before, "refusals append nothing");

    // The matching expected version goes through.
    ok(sam
        .mutate(
            "updateSupportTicketPriority(id: $id, priority: LOW, expectedVersion: 0)",
            "($id: String!)",
            vars.clone(),
        )
        .await);
    ok(root
        .mutate(
            "deleteSupportTicket(id: $id)",
            "($id: String!)",
            vars.clone(),
        )
        .await);
    let after_delete = log_len(&root).await;
    let r = sam
        .mutate(
            "commentOnSupportTicket(id: $id, comment: \"late\")",
            "($id: String!)",
            vars.clone(),
        )
        .await;
    refused(&r, "DELETED");
    assert_eq!(log_len(&root).await, after_delete);
}

/// A call retried with the same idempotency key returns the first call's
/// result (same ticket, same event) and appends nothing more.
#[tokio::test]
async fn a_retried_idempotency_key_returns_the_first_result_and_appends_nothing() {
    let server = Server::start();
    let sam = Client::user(&server, "sam", &["AGENT"], &["support"]);
    let root = Client::user(&server, "root", &["ADMIN"], &[]);
    introduce(&root).await;
    let create = "createSupportTicket(input: {request: \"Keyboard\"}, idempotencyKey: \"k-1\")";
    let first = ok(sam.mutate(create, "", json!({})).await);
    let appended = log_len(&root).await;
    let again = ok(sam.mutate(create, "", json!({})).await);
    assert_eq!(again["ticket"]["id"], first["ticket"]["id"]);
    assert_eq!(again["ticket"]["reference"], first["ticket"]["reference"]);
    assert_eq!(again["event"]["id"], first["event"]["id"]);
    assert_eq!(log_len(&root).await, appended);

    let vars = json!({ "id": first["ticket"]["id"] });
    let comment = "commentOnSupportTicket(id: $id, comment: \"hello\", idempotencyKey: \"k-2\")";
    let c1 = ok(sam.mutate(comment, "($id: String!)", vars.clone()).await);
    let appended = log_len(&root).await;
    let c2 = ok(sam.mutate(comment, "($id: String!)", vars.clone()).await);
    assert_eq!(c1["event"]["id"], c2["event"]["id"]);
    assert_eq!(c2["ticket"]["comments"].as_array().unwrap().len(), 1);
    assert_eq!(log_len(&root).await, appended);
}

/// The other ticket of a relation must be one the caller sees and not
/// deleted: relating to a deleted, missing or hidden ticket is INVALID, a
/// deleted ticket cannot be related itself (DELETED), and none of these
/// appends anything. Unrelating from a deleted ticket lets go of it on the
/// live side only, since a deleted ticket takes no command.
#[tokio::test]
async fn a_relation_needs_a_live_ticket_the_caller_sees_on_the_other_side() {
    let server = Server::start();
    let sam = Client::user(&server, "sam", &["AGENT"], &["support"]);
    let root = Client::user(&server, "root", &["ADMIN"], &[]);
    let (live, _) = create(&sam, "Printer on fire", "support").await;
    let (gone, gone_created) = create(&sam, "Toner low", "support").await;
    let (fresh, _) = create(&sam, "Scanner jammed", "support").await;
    let (hidden, _) = create(&root, "Payroll", "billing").await;
    let relate = "relateSupportTickets(id: $id, relatedId: $other)";
    let unrelate = "unrelateSupportTickets(id: $id, relatedId: $other)";
    let args = "($id: String!, $other: String!)";
    ok(sam
        .mutate(relate, args, json!({ "id": live, "other": gone }))
        .await);
    ok(root
        .mutate(
            "deleteSupportTicket(id: $id)",
            "($id: String!)",
            json!({ "id": gone }),
        )
        .await);
    let before = log_len(&root).await;

    let gone_reference = gone_created["ticket"]["reference"].as_str().unwrap();
    for other in [gone.as_str(), gone_reference] {
        let r = sam
            .mutate(relate, args, json!({ "id": fresh, "other": other }))
            .await;
        refused(&r, "INVALID");
        assert_eq!(
            r["error"],
            format!("invalid: ticket {gone_reference} is deleted and cannot be related")
        );
    }
    let missing = "00000000-0000-0000-0000-000000000000";
    for other in [missing, hidden.as_str()] {
        for mutation in [relate, unrelate] {
            let r = sam
                .mutate(mutation, args, json!({ "id": fresh, "other": other }))
                .await;
            refused(&r, "INVALID");
            assert_eq!(
                r["error"],
                format!("invalid: related ticket {other} does not exist")
            );
        }
    }
    let r = sam
        .mutate(relate, args, json!({ "id": gone, "other": fresh }))
        .await;
    refused(&r, "DELETED");
    assert_eq!(log_len(&root).await, before, "refusals append nothing");

    let r = ok(sam
        .mutate(unrelate, args, json!({ "id": live, "other": gone }))
        .await);
    assert_eq!(r["event"]["eventType"], "RELATED_REMOVED");
    assert_eq!(r["ticket"]["relatedTickets"], json!([]));
    assert_eq!(log_len(&root).await, before + 1, "only the live side");
    let deleted = root
        .data(
            "query($id: String!) { supportTicket(id: $id) { deleted relatedTickets { id } } }",
            json!({ "id": gone }),
        )
        .await;
    assert_eq!(deleted["supportTicket"]["deleted"], true);
    assert_eq!(
        deleted["supportTicket"]["relatedTickets"],
        json!([{ "id": live }])
    );
}

/// A command with a stale `expectedVersion` answers CONFLICT with the
/// ticket's version now and the events since the caller's version that the
/// caller may see, each with who made it and what it changed: a requester
/// is not shown the internal note in between, an agent is.
async fn a_conflict_carries_the_changes_made_since_the_callers_version(db: Db) {
    let server = db.server();
    let alice = Client::user(&server, "alice", &["REQUESTER"], &[]);
    let kim = Client::user(&server, "kim", &["AGENT"], &["support"]);
    let sam = Client::user(&server, "sam", &["AGENT"], &["support"]);
    let (id, _) = create(&alice, "Printer jam", "support").await;
    let vars = json!({ "id": id });
    ok(kim
        .mutate(
            "updateSupportTicketStatus(id: $id, status: IN_PROGRESS)",
            "($id: String!)",
            vars.clone(),
        )
        .await);
    ok(kim
        .mutate(
            "commentOnSupportTicket(id: $id, comment: \"looks like a bad roller\", internal: true)",
            "($id: String!)",
            vars.clone(),
        )
        .await);
    ok(kim
        .mutate(
            "addSupportTicketTag(id: $id, tag: \"printer\")",
            "($id: String!)",
            vars.clone(),
        )
        .await);
    let stale = "mutation($id: String!) { r: commentOnSupportTicket(id: $id, comment: \"any news?\", \
        expectedVersion: 0) { success errorCode currentVersion ticket { version } \
        changesSince { version eventType triggeredBy { id } changes { field oldValue newValue } } } }";
    let for_alice = alice.data(stale, vars.clone()).await["r"].clone();
    assert_eq!(for_alice["success"], false, "{for_alice}");
    assert_eq!(for_alice["errorCode"], "CONFLICT", "{for_alice}");
    assert_eq!(for_alice["currentVersion"], 3, "{for_alice}");
    assert_eq!(for_alice["ticket"]["version"], 3, "{for_alice}");
    let versions: Vec<i64> = for_alice["changesSince"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_i64().unwrap())
        .collect();
    assert_eq!(
        versions,
        [1, 3],
        "no internal note for a requester: {for_alice}"
    );
    let status = &for_alice["changesSince"][0];
    assert_eq!(status["triggeredBy"]["id"], "kim", "{status}");
    assert!(
        status["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["field"] == "status" && c["newValue"] == "IN_PROGRESS"),
        "{status}"
    );
    let for_sam = sam.data(stale, vars.clone()).await["r"].clone();
    assert_eq!(
        for_sam["changesSince"].as_array().unwrap().len(),
        3,
        "{for_sam}"
    );
}
