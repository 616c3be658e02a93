//! Who sees what (auth.md): requesters see their own and watched tickets and
//! never an internal comment; agents see their queues plus what they are
//! involved in; nobody learns of a ticket they may not see.

use serde_json::{json, Value};
use tests::Server;

use crate::helpers::{create, ok, Client};

const TICKET: &str =
    "query($id: String!) { supportTicket(id: $id) { id comments { comment internal } } }";
const LIST: &str = "{ supportTickets { totalCount edges { node { id } } } }";
const HISTORY: &str = "query($id: String!) { supportTicketHistory(id: $id) { eventType version \
    ticket { comments { comment } } previousState changes { field newValue } } }";

fn ids(list: &Value) -> Vec<String> {
    list["supportTickets"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_string())
        .collect()
}

/// A requester never sees another requester's ticket (by id, in the list or in
/// its history), and never an internal comment on their own, in the ticket,
/// in the history's events, states or changes.
#[tokio::test]
async fn a_requester_sees_neither_other_tickets_nor_internal_comments() {
    let server = Server::start();
    let alice = Client::user(&server, "alice", &["REQUESTER"], &[]);
    let bob = Client::user(&server, "bob", &["REQUESTER"], &[]);
    let sam = Client::user(&server, "sam", &["AGENT"], &["support"]);
    let (mine, _) = create(&alice, "Alice's laptop", "support").await;
    let (theirs, _) = create(&bob, "Bob's phone", "support").await;
    let vars = json!({ "id": mine });
    ok(sam
        .mutate(
            "commentOnSupportTicket(id: $id, comment: \"SECRET note\", internal: true)",
            "($id: String!)",
            vars.clone(),
        )
        .await);
    ok(sam
        .mutate(
            "commentOnSupportTicket(id: $id, comment: \"Public reply\")",
            "($id: String!)",
            vars.clone(),
        )
        .await);

    let other = alice.data(TICKET, json!({ "id": theirs })).await;
    assert!(other["supportTicket"].is_null());
    let history = alice.data(HISTORY, json!({ "id": theirs })).await;
    assert_eq!(history["supportTicketHistory"], json!([]));
    let list = alice.data(LIST, json!({})).await;
    assert_eq!(ids(&list), vec![mine.clone()]);
    assert_eq!(list["supportTickets"]["totalCount"], 1);

    let own = alice.data(TICKET, vars.clone()).await;
    let comments = own["supportTicket"]["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 1, "{own}");
    assert_eq!(comments[0]["comment"], "Public reply");
    let history = alice.data(HISTORY, vars.clone()).await;
    let text = history.to_string();
    assert!(
        !text.contains("SECRET"),
        "an internal comment leaked: {text}"
    );
    let types: Vec<&str> = history["supportTicketHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["CREATED", "COMMENTED"]);

    // The agent sees both comments.
    let staff = sam.data(TICKET, vars).await;
    assert_eq!(
        staff["supportTicket"]["comments"].as_array().unwrap().len(),
        2
    );
}

/// An agent outside a ticket's queue, not involved in it, sees nothing of it;
/// once a ticket moves into their queue they do.
#[tokio::test]
async fn an_agent_outside_the_queue_sees_nothing() {
    let server = Server::start();
    let alice = Client::user(&server, "alice", &["REQUESTER"], &[]);
    let bill = Client::user(&server, "bill", &["AGENT"], &["billing"]);
    let root = Client::user(&server, "root", &["ADMIN"], &[]);
    let (id, _) = create(&alice, "Broken chair", "support").await;
    let vars = json!({ "id": id });
    assert!(bill.data(TICKET, vars.clone()).await["supportTicket"].is_null());
    assert_eq!(
        bill.data(HISTORY, vars.clone()).await["supportTicketHistory"],
        json!([])
    );
    assert!(ids(&bill.data(LIST, json!({})).await).is_empty());
    let r = bill
        .mutate(
            "addSupportTicketTag(id: $id, tag: \"x\")",
            "($id: String!)",
            vars.clone(),
        )
        .await;
    assert_eq!(r["errorCode"], "NOT_FOUND", "existence does not leak: {r}");

    ok(root
        .mutate(
            "moveSupportTicket(id: $id, queue: \"billing\")",
            "($id: String!)",
            vars.clone(),
        )
        .await);
    assert_eq!(
        bill.data(TICKET, vars.clone()).await["supportTicket"]["id"],
        id
    );
    // The list is a read model: another user's write (root's move) reaches
    // it shortly after, not at once (read-your-writes covers one's own only).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ids(&bill.data(LIST, json!({})).await).is_empty() && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(ids(&bill.data(LIST, json!({})).await), vec![id.clone()]);
    // The event log is for admins only.
    let body = bill.post("{ eventLog { events { id } } }", json!({})).await;
    assert_eq!(crate::helpers::error_code(&body), "FORBIDDEN", "{body}");
}

/// The list pages by an opaque cursor, filters, and shows a client its own
/// writes right away; past states are rebuilt from the log.
#[tokio::test]
async fn the_list_pages_filters_and_reads_its_own_writes() {
    let server = Server::start();
    let sam = Client::user(&server, "sam", &["AGENT"], &["support"]);
    let mut created = Vec::new();
    for n in 0..5 {
        created.push(
            create(&sam, &format!("Ticket number {n}"), "support")
                .await
                .0,
        );
    }
    let page = "query($after: String) { supportTickets(first: 2, after: $after) { totalCount \
        edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = sam.data(page, json!({ "after": after })).await;
        let conn = &data["supportTickets"];
        assert_eq!(conn["totalCount"], 5);
        seen.extend(ids(&data));
        if conn["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, created, "every ticket once, oldest first");

    ok(sam
        .mutate(
            "updateSupportTicketStatus(id: $id, status: ON_HOLD)",
            "($id: String!)",
            json!({ "id": created[3] }),
        )
        .await);
    let held = sam
        .data("{ supportTickets(filter: {statuses: [ON_HOLD], search: \"number 3\"}) { totalCount edges { node { id } } } }", json!({}))
        .await;
    assert_eq!(ids(&held), vec![created[3].clone()]);

    let past = sam
        .data(
            "query($id: String!) { supportTicketAsOf(id: $id, version: 0) { status version } }",
            json!({ "id": created[3] }),
        )
        .await;
    assert_eq!(
        past["supportTicketAsOf"],
        json!({ "status": "OPEN", "version": 0 })
    );
    let bad = sam
        .post(
            "{ supportTickets(after: \"garbage\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(crate::helpers::error_code(&bad), "INVALID", "{bad}");
}

/// auth.md, "Next round": existence never leaks. A requester who names
/// someone else's ticket, by id or by reference, with a wrong
/// `expectedVersion` or a bad `supportTicketAsOf` version, gets exactly the
/// answer a ticket that does not exist gets: no CONFLICT carrying the real
/// version, no INVALID that only an existing ticket triggers.
#[tokio::test]
async fn a_hidden_ticket_answers_exactly_as_a_missing_one() {
    let server = Server::start();
    let owner = Client::user(&server, "olga", &["REQUESTER"], &[]);
    let snoop = Client::user(&server, "sid", &["REQUESTER"], &[]);
    let (hidden, created) = create(&owner, "Olga's invoice", "billing").await;
    let reference = created["ticket"]["reference"].as_str().unwrap().to_string();
    let missing = "00000000-0000-4000-8000-000000000000".to_string();
    let mutations = [
        "addSupportTicketTag(id: $id, tag: \"x\", expectedVersion: 999)",
        "commentOnSupportTicket(id: $id, comment: \"hi\", expectedVersion: 0)",
        "addSupportTicketTag(id: $id, tag: \"x\")",
    ];
    for mutation in mutations {
        for (name, nobody) in [(&hidden, &missing), (&reference, &"TCK-999999".to_string())] {
            let ask = |id: &str| snoop.mutate(mutation, "($id: String!)", json!({ "id": id }));
            let seen = ask(name).await;
            let absent = ask(nobody).await;
            assert_eq!(seen["errorCode"], "NOT_FOUND", "{mutation}: {seen}");
            assert_eq!(
                seen.to_string().replace(name.as_str(), "<id>"),
                absent.to_string().replace(nobody.as_str(), "<id>"),
                "{mutation}"
            );
        }
    }
    for version in ["-1", "0", "999"] {
        let query = format!(
            "query($id: String!) {{ supportTicketAsOf(id: $id, version: {version}) {{ id }} }}"
        );
        let seen = snoop.post(&query, json!({ "id": hidden })).await;
        let absent = snoop.post(&query, json!({ "id": missing })).await;
        assert_eq!(seen, absent, "version {version}");
    }
    // The owner still gets the real conflict, with the version.
    let conflict = owner
        .mutate(
            "addSupportTicketTag(id: $id, tag: \"x\", expectedVersion: 999)",
            "($id: String!)",
            json!({ "id": hidden }),
        )
        .await;
    assert_eq!(conflict["errorCode"], "CONFLICT", "{conflict}");
}
