//! The notification centre (schema-next.graphql, auth.md "Next round"):
//! reasons, queue alerts, mentions, preferences, inbox changes pushed to
//! every socket of a user, announcements. Each scenario runs on SQLite and
//! on PostgreSQL.

use std::time::Duration;

use serde_json::{json, Value};
use tests::Server;

use crate::helpers::{create, error_code, introduce, ok, Client, Db};
use crate::on_both_databases;
use crate::subscriptions::{connect, next_message, next_of, subscribe, Socket};

const INBOX: &str = "{ notifications { edges { cursor node { id eventType reason ticketIds \
    actor { id } title read } } unreadCount } }";
const CHANGES: &str = "subscription($after: String) { notificationsChanged(after: $after) { \
    kind ids unreadCount cursor notification { id eventType reason ticketIds actor { id } } } }";

/// A client and a socket of the same user.
async fn user(server: &Server, id: &str, roles: &[&str], teams: &[&str]) -> (Client, String) {
    let token = server.token(id, roles, teams);
    let client = Client::new(server, Some(token.clone()));
    introduce(&client).await;
    (client, token)
}

/// A socket of `token` subscribed to `notificationsChanged` as `"c"`.
async fn watching_inbox(server: &Server, token: &str, after: Option<&str>) -> Socket {
    let mut socket = connect(server, token).await;
    subscribe(&mut socket, "c", CHANGES, json!({ "after": after })).await;
    socket
}

/// The nodes of `user`'s inbox, newest first.
async fn inbox(client: &Client) -> (Vec<Value>, Value) {
    let data = client.data(INBOX, json!({})).await;
    let nodes = data["notifications"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    (nodes, data["notifications"]["unreadCount"].clone())
}

/// Waits until `client`'s inbox holds `n` notifications (the projection runs
/// behind the log), for at most ten seconds.
async fn inbox_of_size(client: &Client, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (nodes, _) = inbox(client).await;
        if nodes.len() >= n {
            return nodes;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never reached {n}: {nodes:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The strings of a JSON array, sorted.
fn sorted(list: &Value) -> Vec<String> {
    let mut items: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    items.sort();
    items
}

/// The ids of the announcements `client` is shown, newest first.
async fn announcement_ids(client: &Client) -> Vec<Value> {
    let data = client.data("{ announcements { id } }", json!({})).await;
    data["announcements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].clone())
        .collect()
}

/// The event types of ticket `id`'s history as `client` reads it.
async fn event_types(client: &Client, id: &str) -> Vec<String> {
    client
        .data(
            "query($id: String!) { supportTicketHistory(id: $id) { eventType } }",
            json!({ "id": id }),
        )
        .await["supportTicketHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap().to_string())
        .collect()
}

async fn next_change(socket: &mut Socket) -> Value {
    next_of(socket, "c", "notificationsChanged").await
}

on_both_databases!(
    a_new_ticket_alerts_exactly_its_queues_agents_live_and_in_the_inbox,
    a_mention_in_an_internal_note_reaches_an_agent_and_never_a_requester,
    reads_unreads_and_deletes_reach_every_socket_of_the_user_and_resume_with_after,
    announcements_reach_their_audience_live_and_in_the_list,
    a_rebuild_of_the_notifications_keeps_every_inbox_read_flag_deletion_and_preference,
    a_bulk_call_gives_each_recipient_one_digest_of_every_ticket_it_touched,
    sla_events_reach_staff_only_in_inboxes_history_and_subscriptions,
);

/// A requester creates a ticket in `billing`: the billing agent gets a QUEUE
/// notification (live on both subscriptions, and in the inbox, with the
/// ticket and the actor), while the creator, an agent of another queue and
/// a billing agent who muted the queue get nothing. Moving the ticket to
/// `support` alerts support's agent and tells the creator (YOUR_TICKET).
async fn a_new_ticket_alerts_exactly_its_queues_agents_live_and_in_the_inbox(db: Db) {
    let server = db.server();
    let (ada, ada_token) = user(&server, "ada", &["AGENT"], &["billing"]).await;
    let (bob, _) = user(&server, "bob", &["AGENT"], &["billing"]).await;
    let (cat, _) = user(&server, "cat", &["AGENT"], &["support"]).await;
    let (rita, _) = user(&server, "rita", &["REQUESTER"], &[]).await;

    let muted = bob
        .data(
            "mutation { updateNotificationPreferences(input: {mutedQueues: [\"billing\"]}) \
             { mutedQueues mutedReasons mutedEventTypes } }",
            json!({}),
        )
        .await;
    assert_eq!(
        muted["updateNotificationPreferences"],
        json!({ "mutedQueues": ["billing"], "mutedReasons": [], "mutedEventTypes": [] })
    );
    let read_back = bob
        .data("{ notificationPreferences { mutedQueues } }", json!({}))
        .await;
    assert_eq!(
        read_back["notificationPreferences"]["mutedQueues"],
        json!(["billing"]),
        "a query right after the mutation sees it"
    );
    let bad = bob
        .post(
            "mutation { updateNotificationPreferences(input: {mutedQueues: [\"  \"]}) { mutedQueues } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&bad), "INVALID", "{bad}");

    let mut socket = watching_inbox(&server, &ada_token, None).await;
    subscribe(
        &mut socket,
        "n",
        "subscription { notificationAdded { id reason ticketIds } }",
        json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (id, _) = create(&rita, "Invoice charged twice", "billing").await;
    // Both subscriptions push it, in either order.
    let (mut change, mut added) = (Value::Null, Value::Null);
    while change.is_null() || added.is_null() {
        let message = next_message(&mut socket, Duration::from_secs(15))
            .await
            .expect("a message");
        assert_eq!(message["type"], "next", "{message}");
        match message["id"].as_str() {
            Some("c") => change = message["payload"]["data"]["notificationsChanged"].clone(),
            Some("n") => added = message["payload"]["data"]["notificationAdded"].clone(),
            _ => panic!("{message}"),
        }
    }
    assert_eq!(change["kind"], "ADDED", "{change}");
    assert_eq!(change["unreadCount"], 1, "{change}");
    let note = &change["notification"];
    assert_eq!(note["reason"], "QUEUE", "{change}");
    assert_eq!(note["eventType"], "CREATED", "{change}");
    assert_eq!(note["ticketIds"], json!([id]), "{change}");
    assert_eq!(note["actor"]["id"], "rita", "{change}");
    assert_eq!(change["ids"], json!([note["id"]]), "{change}");
    assert_eq!(added["id"], note["id"], "{added}");
    assert_eq!(added["reason"], "QUEUE", "{added}");

    let (ada_inbox, unread) = inbox(&ada).await;
    assert_eq!(unread, 1);
    assert_eq!(ada_inbox.len(), 1, "{ada_inbox:?}");
    assert_eq!(ada_inbox[0]["reason"], "QUEUE");
    assert_eq!(ada_inbox[0]["title"], "New ticket TCK-000001 in billing");
    // Written in the same batch as ada's: nothing more is coming for them.
    for (who, client) in [("bob (muted)", &bob), ("cat", &cat), ("rita", &rita)] {
        let (nodes, _) = inbox(client).await;
        assert!(nodes.is_empty(), "{who}: {nodes:?}");
    }

    ok(ada
        .mutate(
            "moveSupportTicket(id: $id, queue: \"support\")",
            "($id: String!)",
            json!({ "id": id }),
        )
        .await);
    let cats = inbox_of_size(&cat, 1).await;
    assert_eq!(cats[0]["reason"], "QUEUE", "{cats:?}");
    assert_eq!(cats[0]["eventType"], "QUEUE_CHANGED", "{cats:?}");
    assert_eq!(cats[0]["actor"]["id"], "ada", "{cats:?}");
    let ritas = inbox_of_size(&rita, 1).await;
    assert_eq!(ritas[0]["reason"], "YOUR_TICKET", "{ritas:?}");
    let (ada_after, _) = inbox(&ada).await;
    assert_eq!(
        ada_after.len(),
        1,
        "not told of her own move: {ada_after:?}"
    );
}

/// `@kim` in an internal note notifies kim (an agent of the queue, not
/// otherwise involved) as MENTIONED, but never rita, the requester who
/// created the ticket, though she is mentioned too; an unknown `@ghost` is
/// ignored and an agent who may not see the ticket is not told of it. A
/// public comment mentioning rita reaches her as MENTIONED.
async fn a_mention_in_an_internal_note_reaches_an_agent_and_never_a_requester(db: Db) {
    let server = db.server();
    let (ada, _) = user(&server, "ada", &["AGENT"], &["billing"]).await;
    let (kim, _) = user(&server, "kim", &["AGENT"], &["billing"]).await;
    let (sam, _) = user(&server, "sam", &["AGENT"], &["support"]).await;
    let (rita, _) = user(&server, "rita", &["REQUESTER"], &[]).await;
    // kim mutes queue alerts: only the mention can reach her.
    kim.data(
        "mutation { updateNotificationPreferences(input: {mutedReasons: [QUEUE]}) { mutedReasons } }",
        json!({}),
    )
    .await;
    let (id, _) = create(&rita, "VPN drops", "billing").await;
    ok(ada
        .mutate(
            "commentOnSupportTicket(id: $id, comment: \"@kim @rita @sam @ghost: known issue?\", internal: true)",
            "($id: String!)",
            json!({ "id": id }),
        )
        .await);
    let kims = inbox_of_size(&kim, 1).await;
    assert_eq!(kims.len(), 1, "{kims:?}");
    assert_eq!(kims[0]["reason"], "MENTIONED", "{kims:?}");
    assert_eq!(kims[0]["eventType"], "COMMENTED", "{kims:?}");
    assert_eq!(kims[0]["title"], "ada mentioned you on TCK-000001");
    let (ritas, _) = inbox(&rita).await;
    assert!(
        ritas.is_empty(),
        "no internal note for a requester: {ritas:?}"
    );
    let (sams, _) = inbox(&sam).await;
    assert!(sams.is_empty(), "sam may not see the ticket: {sams:?}");

    ok(ada
        .mutate(
            "commentOnSupportTicket(id: $id, comment: \"@rita could you restart it?\")",
            "($id: String!)",
            json!({ "id": id }),
        )
        .await);
    let ritas = inbox_of_size(&rita, 1).await;
    assert_eq!(ritas[0]["reason"], "MENTIONED", "{ritas:?}");
    assert_eq!(ritas[0]["title"], "ada mentioned you on TCK-000001");
}

/// Kim has two sockets: a notification added, read, marked unread and
/// deleted through HTTP reaches both, in order, each with the unread count
/// after it. Another user's delete of kim's notification changes nothing
/// and is not pushed. A deleted notification is gone from the inbox and
/// cannot be marked unread. A third socket resuming after the first change
/// gets exactly the three that followed.
async fn reads_unreads_and_deletes_reach_every_socket_of_the_user_and_resume_with_after(db: Db) {
    let server = db.server();
    let (kim, kim_token) = user(&server, "kim", &["AGENT"], &["billing"]).await;
    let (ada, _) = user(&server, "ada", &["AGENT"], &["billing"]).await;
    let (rita, _) = user(&server, "rita", &["REQUESTER"], &[]).await;
    let mut a = watching_inbox(&server, &kim_token, None).await;
    let mut b = watching_inbox(&server, &kim_token, None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    create(&rita, "Printer jam", "billing").await;
    let first = next_change(&mut a).await;
    assert_eq!(first["kind"], "ADDED", "{first}");
    assert_eq!(next_change(&mut b).await, first);
    let id = first["notification"]["id"].clone();
    let ids = json!({ "ids": [id] });

    let read = kim
        .data(
            "mutation($ids: [String!]!) { markNotificationsRead(ids: $ids) }",
            ids.clone(),
        )
        .await;
    assert_eq!(read["markNotificationsRead"], 1);
    for socket in [&mut a, &mut b] {
        let change = next_change(socket).await;
        assert_eq!(change["kind"], "READ", "{change}");
        assert_eq!(change["ids"], json!([id]), "{change}");
        assert_eq!(change["unreadCount"], 0, "{change}");
    }
    let unread = kim
        .data(
            "mutation($ids: [String!]!) { markNotificationsUnread(ids: $ids) }",
            ids.clone(),
        )
        .await;
    assert_eq!(unread["markNotificationsUnread"], 1);
    for socket in [&mut a, &mut b] {
        let change = next_change(socket).await;
        assert_eq!(change["kind"], "UNREAD", "{change}");
        assert_eq!(change["unreadCount"], 1, "{change}");
    }
    let not_hers = ada
        .data(
            "mutation($ids: [String!]!) { deleteNotifications(ids: $ids) }",
            ids.clone(),
        )
        .await;
    assert_eq!(not_hers["deleteNotifications"], 0);
    let deleted = kim
        .data(
            "mutation($ids: [String!]!) { deleteNotifications(ids: $ids) }",
            ids.clone(),
        )
        .await;
    assert_eq!(deleted["deleteNotifications"], 1);
    for socket in [&mut a, &mut b] {
        // The next change is kim's delete: ada's call pushed nothing.
        let change = next_change(socket).await;
        assert_eq!(change["kind"], "DELETED", "{change}");
        assert_eq!(change["ids"], json!([id]), "{change}");
        assert_eq!(change["unreadCount"], 0, "{change}");
    }
    let (nodes, count) = inbox(&kim).await;
    assert!(nodes.is_empty(), "{nodes:?}");
    assert_eq!(count, 0);
    let again = kim
        .data(
            "mutation($ids: [String!]!) { markNotificationsUnread(ids: $ids) }",
            ids.clone(),
        )
        .await;
    assert_eq!(
        again["markNotificationsUnread"], 0,
        "a deleted one stays gone"
    );
    let bad = kim
        .post(
            "mutation { deleteNotifications(ids: [\"nope\"]) }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&bad), "INVALID", "{bad}");

    let cursor = first["cursor"].as_str().unwrap().to_string();
    let mut c = watching_inbox(&server, &kim_token, Some(&cursor)).await;
    let kinds: Vec<Value> = [
        next_change(&mut c).await,
        next_change(&mut c).await,
        next_change(&mut c).await,
    ]
    .iter()
    .map(|change| change["kind"].clone())
    .collect();
    assert_eq!(kinds, [json!("READ"), json!("UNREAD"), json!("DELETED")]);
    let more = next_message(&mut c, Duration::from_millis(500)).await;
    assert!(more.is_none(), "nothing twice: {more:?}");
    let refused = {
        let mut d = connect(&server, &kim_token).await;
        subscribe(&mut d, "c", CHANGES, json!({ "after": "not-a-cursor" })).await;
        next_message(&mut d, Duration::from_secs(10))
            .await
            .expect("an answer")
    };
    let code = refused["payload"]["errors"][0]["extensions"]["code"].clone();
    assert_eq!(code, "INVALID", "{refused}");
}

/// Only an ADMIN publishes. An announcement to the agents of `billing`
/// reaches a billing agent's socket and list, not a requester's nor a
/// support agent's; one to everyone reaches all three. A retry with the
/// same idempotency key publishes nothing twice.
async fn announcements_reach_their_audience_live_and_in_the_list(db: Db) {
    let server = db.server();
    let (root, _) = user(&server, "root", &["ADMIN"], &[]).await;
    let (ada, ada_token) = user(&server, "ada", &["AGENT"], &["billing"]).await;
    let (cat, _) = user(&server, "cat", &["AGENT"], &["support"]).await;
    let (rita, rita_token) = user(&server, "rita", &["REQUESTER"], &[]).await;
    const PUBLISH: &str = "mutation($input: AnnouncementInput!, $key: String) { \
        publishAnnouncement(input: $input, idempotencyKey: $key) { id title roles teams publishedBy { id } } }";
    const LIVE: &str = "subscription { announcementPublished { id title } }";
    let refused = ada
        .post(
            PUBLISH,
            json!({ "input": { "title": "Hi", "body": "all" } }),
        )
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");

    let mut ada_socket = connect(&server, &ada_token).await;
    subscribe(&mut ada_socket, "a", LIVE, json!({})).await;
    let mut rita_socket = connect(&server, &rita_token).await;
    subscribe(&mut rita_socket, "a", LIVE, json!({})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let billing = json!({ "title": "Billing run tonight", "body": "22:00", "roles": ["AGENT"], "teams": ["billing"] });
    let first = root
        .data(PUBLISH, json!({ "input": billing, "key": "billing-run" }))
        .await;
    let first = &first["publishAnnouncement"];
    assert_eq!(first["publishedBy"]["id"], "root");
    assert_eq!(first["roles"], json!(["AGENT"]));
    let retried = root
        .data(PUBLISH, json!({ "input": billing, "key": "billing-run" }))
        .await;
    assert_eq!(retried["publishAnnouncement"]["id"], first["id"]);
    let everyone = root
        .data(
            PUBLISH,
            json!({ "input": { "title": "Welcome", "body": "to the new helpdesk" } }),
        )
        .await;
    let everyone = &everyone["publishAnnouncement"];

    let live = next_of(&mut ada_socket, "a", "announcementPublished").await;
    assert_eq!(live["id"], first["id"]);
    let live = next_of(&mut ada_socket, "a", "announcementPublished").await;
    assert_eq!(
        live["id"], everyone["id"],
        "the retry was not published again"
    );
    let live = next_of(&mut rita_socket, "a", "announcementPublished").await;
    assert_eq!(
        live["id"], everyone["id"],
        "rita is not in the billing audience"
    );

    assert_eq!(
        announcement_ids(&ada).await,
        [everyone["id"].clone(), first["id"].clone()]
    );
    assert_eq!(announcement_ids(&cat).await, [everyone["id"].clone()]);
    assert_eq!(announcement_ids(&rita).await, [everyone["id"].clone()]);
    let bad = root
        .post(PUBLISH, json!({ "input": { "title": " ", "body": "x" } }))
        .await;
    assert_eq!(error_code(&bad), "INVALID", "{bad}");
}

/// Everything a user sees of their notification centre, for comparing it
/// before and after a rebuild.
async fn centre(client: &Client) -> Value {
    client
        .data(
            "{ notifications(first: 100) { edges { cursor node { id eventType reason ticketIds \
             actor { id } title body read createdDate } } unreadCount } \
             notificationPreferences { mutedEventTypes mutedReasons mutedQueues } \
             announcements { id } }",
            json!({}),
        )
        .await
}

/// Inboxes with read flags, a deletion and preferences, then `tickets
/// projections rebuild notifications` beside the running server: every
/// user's notifications, read flags, unread count and preferences read the
/// same after it, and the preferences still apply to what comes next.
async fn a_rebuild_of_the_notifications_keeps_every_inbox_read_flag_deletion_and_preference(
    db: Db,
) {
    let server = db.server();
    let (ada, _) = user(&server, "ada", &["AGENT"], &["billing"]).await;
    let (kim, _) = user(&server, "kim", &["AGENT"], &["billing"]).await;
    let (rita, _) = user(&server, "rita", &["REQUESTER"], &[]).await;
    kim.data(
        "mutation { updateNotificationPreferences(input: {mutedEventTypes: [COMMENTED]}) { mutedEventTypes } }",
        json!({}),
    )
    .await;
    let (first, _) = create(&rita, "Card declined", "billing").await;
    let (second, _) = create(&rita, "Refund missing", "billing").await;
    ok(ada
        .mutate(
            "commentOnSupportTicket(id: $id, comment: \"Looking into it\")",
            "($id: String!)",
            json!({ "id": first }),
        )
        .await);
    ok(ada
        .mutate(
            "assignSupportTicket(id: $id, assigneeId: \"kim\")",
            "($id: String!)",
            json!({ "id": second }),
        )
        .await);
    let kims = inbox_of_size(&kim, 3).await;
    assert_eq!(
        kims.len(),
        3,
        "two queue alerts and the assignment: {kims:?}"
    );
    inbox_of_size(&rita, 1).await;
    let read = json!({ "ids": [kims[0]["id"]] });
    kim.data(
        "mutation($ids: [String!]!) { markNotificationsRead(ids: $ids) }",
        read,
    )
    .await;
    let gone = json!({ "ids": [kims[1]["id"]] });
    kim.data(
        "mutation($ids: [String!]!) { deleteNotifications(ids: $ids) }",
        gone,
    )
    .await;
    let root = Client::user(&server, "root", &["ADMIN"], &[]);
    root.data(
        "mutation { publishAnnouncement(input: {title: \"Hello\", body: \"all\"}) { id } }",
        json!({}),
    )
    .await;
    let before = [centre(&kim).await, centre(&rita).await, centre(&ada).await];
    assert_eq!(
        before[0]["notifications"]["unreadCount"], 1,
        "{}",
        before[0]
    );
    assert_eq!(before[0]["announcements"].as_array().unwrap().len(), 1);

    let report = server.cli(&["projections", "rebuild", "notifications"]);
    assert!(report.contains("notifications"), "{report}");
    let after = [centre(&kim).await, centre(&rita).await, centre(&ada).await];
    assert_eq!(after, before);

    ok(ada
        .mutate(
            "commentOnSupportTicket(id: $id, comment: \"Refund sent\")",
            "($id: String!)",
            json!({ "id": second }),
        )
        .await);
    let ritas = inbox_of_size(&rita, 2).await;
    assert_eq!(ritas[0]["eventType"], "COMMENTED", "{ritas:?}");
    let (kims, _) = inbox(&kim).await;
    assert_eq!(
        kims.len(),
        2,
        "kim muted comments, after the rebuild too: {kims:?}"
    );
}

/// Ada assigns three tickets to kim, sets them HIGH and tags them in one
/// bulk call (nine events): kim gets one DIGEST listing the three tickets,
/// as does rita, who created two of them; ron, whose one ticket it touched,
/// gets one ordinary notification. A rebuild gives the same inboxes.
async fn a_bulk_call_gives_each_recipient_one_digest_of_every_ticket_it_touched(db: Db) {
    let server = db.server();
    let (ada, _) = user(&server, "ada", &["AGENT"], &["billing"]).await;
    let (kim, _) = user(&server, "kim", &["AGENT"], &["billing"]).await;
    let (rita, _) = user(&server, "rita", &["REQUESTER"], &[]).await;
    let (ron, _) = user(&server, "ron", &["REQUESTER"], &[]).await;
    // Only the bulk call's notifications matter here.
    kim.data(
        "mutation { updateNotificationPreferences(input: {mutedReasons: [QUEUE]}) { mutedReasons } }",
        json!({}),
    )
    .await;
    let (one, _) = create(&rita, "Invoice A", "billing").await;
    let (two, _) = create(&rita, "Invoice B", "billing").await;
    let (three, _) = create(&ron, "Invoice C", "billing").await;
    let done = ada
        .data(
            "mutation($ids: [String!]!) { bulkUpdateSupportTickets(ids: $ids, \
             action: {assigneeId: \"kim\", priority: HIGH, addTags: [\"outage\"]}) { succeeded failed } }",
            json!({ "ids": [one, two, three] }),
        )
        .await;
    assert_eq!(
        done["bulkUpdateSupportTickets"],
        json!({ "succeeded": 3, "failed": 0 })
    );
    // The call's events reach the projection over one or more batches:
    // wait for the digest to cover the three tickets.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let kims = loop {
        let nodes = inbox_of_size(&kim, 1).await;
        let covered = nodes[0]["ticketIds"].as_array().map_or(0, Vec::len);
        if covered == 3 || std::time::Instant::now() > deadline {
            break nodes;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        kims.len(),
        1,
        "one notification for the whole call: {kims:?}"
    );
    assert_eq!(kims[0]["reason"], "DIGEST", "{kims:?}");
    // In the order the log met them: the call works on several tickets at once.
    assert_eq!(
        sorted(&kims[0]["ticketIds"]),
        sorted(&json!([one, two, three])),
        "{kims:?}"
    );
    assert_eq!(kims[0]["actor"]["id"], "ada", "{kims:?}");
    assert_eq!(kims[0]["title"], "3 tickets changed by ada", "{kims:?}");
    let ritas = inbox_of_size(&rita, 1).await;
    assert_eq!(ritas.len(), 1, "{ritas:?}");
    assert_eq!(ritas[0]["reason"], "DIGEST", "{ritas:?}");
    assert_eq!(
        sorted(&ritas[0]["ticketIds"]),
        sorted(&json!([one, two])),
        "{ritas:?}"
    );
    let rons = inbox_of_size(&ron, 1).await;
    assert_eq!(rons.len(), 1, "{rons:?}");
    assert_eq!(rons[0]["reason"], "YOUR_TICKET", "{rons:?}");
    assert_eq!(rons[0]["ticketIds"], json!([three]), "{rons:?}");

    let before = [centre(&kim).await, centre(&rita).await, centre(&ron).await];
    server.cli(&["projections", "rebuild", "notifications"]);
    let after = [centre(&kim).await, centre(&rita).await, centre(&ron).await];
    assert_eq!(after, before);
}

/// With one-second SLA targets checked every 100 ms: the warning and breach
/// of an unassigned ticket alert its queue's agent (QUEUE), appear in an
/// agent's history and team subscription, and never reach the requester who
/// created it: not in her inbox, her history or her subscription.
async fn sla_events_reach_staff_only_in_inboxes_history_and_subscriptions(db: Db) {
    let env = [
        ("TICKETS_SLA_TARGETS", "HIGH=1s/2s"),
        ("TICKETS_SLA_CHECK_INTERVAL_MS", "100"),
    ];
    let server = db.server_with(&env);
    let (kim, kim_token) = user(&server, "kim", &["AGENT"], &["billing"]).await;
    let (rita, rita_token) = user(&server, "rita", &["REQUESTER"], &[]).await;
    const EVENTS: &str = "{ eventType }";
    let mut kim_socket = connect(&server, &kim_token).await;
    subscribe(
        &mut kim_socket,
        "t",
        &format!("subscription {{ teamTicketUpdates {EVENTS} }}"),
        json!({}),
    )
    .await;
    let mut rita_socket = connect(&server, &rita_token).await;
    subscribe(
        &mut rita_socket,
        "m",
        &format!("subscription {{ myTicketUpdates {EVENTS} }}"),
        json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (id, _) = create(&rita, "Nobody answers", "billing").await;

    // The agent's stream: created, then the SLA process's events.
    let mut seen = vec![];
    while !seen.iter().any(|t| t == "SLA_BREACHED") {
        let event = next_of(&mut kim_socket, "t", "teamTicketUpdates").await;
        seen.push(event["eventType"].as_str().unwrap().to_string());
    }
    assert!(seen.iter().any(|t| t == "SLA_WARNING"), "{seen:?}");
    // A public comment after them: the requester's stream must show it next
    // to her ticket's creation, and nothing in between.
    let (ada, _) = user(&server, "ada", &["AGENT"], &["billing"]).await;
    ok(ada
        .mutate(
            "commentOnSupportTicket(id: $id, comment: \"We are on it\")",
            "($id: String!)",
            json!({ "id": id }),
        )
        .await);
    let first = next_of(&mut rita_socket, "m", "myTicketUpdates").await;
    let second = next_of(&mut rita_socket, "m", "myTicketUpdates").await;
    assert_eq!(
        [&first["eventType"], &second["eventType"]],
        [&json!("CREATED"), &json!("COMMENTED")],
        "no SLA event for the requester"
    );

    let kims = event_types(&kim, &id).await;
    assert!(kims.iter().any(|t| t.starts_with("SLA_")), "{kims:?}");
    let ritas = event_types(&rita, &id).await;
    assert!(ritas.iter().all(|t| !t.starts_with("SLA_")), "{ritas:?}");

    let alerts = inbox_of_size(&kim, 3).await;
    let sla: Vec<_> = alerts
        .iter()
        .filter(|n| n["eventType"].as_str().unwrap().starts_with("SLA_"))
        .collect();
    assert!(!sla.is_empty(), "{alerts:?}");
    assert!(
        sla.iter()
            .all(|n| n["reason"] == "QUEUE" && n["actor"].is_null()),
        "{sla:?}"
    );
    let (ritas, _) = inbox(&rita).await;
    assert!(
        ritas
            .iter()
            .all(|n| !n["eventType"].as_str().unwrap().starts_with("SLA_")),
        "{ritas:?}"
    );
}
