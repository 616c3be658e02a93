//! Two `tickets serve` processes on one PostgreSQL database (one schema per
//! test), as behind a load balancer: what one writes, the other serves, live
//! and in its read models.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tests::Server;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{create, fresh_schema, ok, postgres_url, Client};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Two servers on one fresh schema; the second starts once the first has
/// created it and run the migrations.
fn two_nodes() -> (Server, Server) {
    let schema = fresh_schema("cluster_test");
    let env = [("TICKETS_DATABASE_SCHEMA", schema.as_str())];
    let a = Server::spawn(postgres_url(), &env, None);
    let b = Server::spawn(postgres_url(), &env, None);
    (a, b)
}

/// A graphql-transport-ws socket on `server`, acknowledged.
async fn connect(server: &Server, token: &str) -> Socket {
    let mut request = format!("ws://{}/graphql", server.address)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("WebSocket upgrade");
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    socket.send(Message::text(init.to_string())).await.unwrap();
    let ack = next_message(&mut socket).await.expect("connection_ack");
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    socket
}

/// The next protocol message other than a ping, or `None` after 20 s or on close.
async fn next_message(socket: &mut Socket) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .ok()??
            .ok()?;
        let Message::Text(text) = frame else {
            continue;
        };
        let value: Value = serde_json::from_str(&text).expect("JSON message");
        match value["type"].as_str() {
            Some("ka") | Some("pong") => continue,
            Some("ping") => {
                let pong = json!({ "type": "pong" }).to_string();
                socket.send(Message::text(pong)).await.ok()?;
            }
            _ => return Some(value),
        }
    }
}

/// A client subscribed on node A hears of a change made through node B (the
/// log is shared; PostgreSQL's NOTIFY wakes A's hub), and the event carries
/// the ticket as B left it.
#[tokio::test]
async fn a_subscriber_on_one_node_receives_a_change_made_through_the_other() {
    let (a, b) = two_nodes();
    let sam_b = Client::user(&b, "sam", &["AGENT"], &["support"]);
    let (id, created) = create(&sam_b, "Seen across nodes", "support").await;
    let after = created["event"]["position"].as_str().unwrap().to_string();

    let mut socket = connect(&a, &a.token("sam", &["AGENT"], &["support"])).await;
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription($id: String!, $after: String) { ticketUpdated(ticketId: $id, after: $after) \
                  { eventType version ticket { id priority } } }",
        "variables": { "id": id, "after": after } } });
    socket
        .send(Message::text(subscribe.to_string()))
        .await
        .unwrap();
    ok(sam_b
        .mutate(
            "updateSupportTicketPriority(id: $id, priority: CRITICAL)",
            "($id: String!)",
            json!({ "id": id }),
        )
        .await);
    let message = next_message(&mut socket)
        .await
        .expect("node A delivers node B's event");
    assert_eq!(message["type"], "next", "{message}");
    let event = &message["payload"]["data"]["ticketUpdated"];
    assert_eq!(event["ticket"]["id"], id.as_str(), "{message}");
    assert_eq!(event["eventType"], "PRIORITY_CHANGED", "{message}");
    assert_eq!(event["version"], 1, "{message}");
    assert_eq!(event["ticket"]["priority"], "CRITICAL", "{message}");
}

/// Read-your-writes across nodes: right after each change made through B, a
/// list query on A (from its read model, not the log) already shows it,
/// though A never saw the request. Repeated, so a race would show.
#[tokio::test]
async fn a_list_query_on_one_node_sees_a_write_just_made_through_the_other() {
    let (a, b) = two_nodes();
    let sam_a = Client::user(&a, "sam", &["AGENT"], &["support"]);
    let sam_b = Client::user(&b, "sam", &["AGENT"], &["support"]);
    let list = "{ all: supportTickets(first: 500) { edges { node { id priority } } } }";
    let priorities = ["LOW", "HIGH", "MEDIUM", "CRITICAL", "LOW", "HIGH"];
    for (round, priority) in priorities.iter().enumerate() {
        let (id, _) = create(&sam_b, &format!("Round {round}"), "support").await;
        ok(sam_b
            .mutate(
                &format!("updateSupportTicketPriority(id: $id, priority: {priority})"),
                "($id: String!)",
                json!({ "id": id }),
            )
            .await);
        let seen = sam_a.data(list, json!({})).await;
        let node = seen["all"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["node"])
            .find(|n| n["id"] == id.as_str())
            .cloned();
        let node =
            node.unwrap_or_else(|| panic!("round {round}: A does not list B's ticket: {seen}"));
        assert_eq!(node["priority"], *priority, "round {round}: {seen}");
    }
}

/// A notification read through node A is pushed to the reader's socket on
/// node B, with the unread count after it: every node tails the inbox
/// change feed, whichever node wrote it.
#[tokio::test]
async fn a_notification_read_through_one_node_reaches_a_socket_on_the_other() {
    let (a, b) = two_nodes();
    let kim_token = b.token("kim", &["AGENT"], &["support"]);
    let kim_a = Client::new(&a, Some(kim_token.clone()));
    kim_a.data("{ me { id } }", json!({})).await;
    let rita = Client::user(&a, "rita", &["REQUESTER"], &[]);
    let mut socket = connect(&b, &kim_token).await;
    let subscribe = json!({ "id": "c", "type": "subscribe", "payload": {
        "query": "subscription { notificationsChanged { kind ids unreadCount notification { id reason } } }" } });
    socket
        .send(Message::text(subscribe.to_string()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    create(&rita, "Seen by the queue on both nodes", "support").await;
    let added = next_message(&mut socket).await.expect("ADDED on node B");
    let added = &added["payload"]["data"]["notificationsChanged"];
    assert_eq!(added["kind"], "ADDED", "{added}");
    assert_eq!(added["notification"]["reason"], "QUEUE", "{added}");
    let id = added["ids"][0].clone();
    let read = kim_a
        .data(
            "mutation($ids: [String!]!) { markNotificationsRead(ids: $ids) }",
            json!({ "ids": [id] }),
        )
        .await;
    assert_eq!(read["markNotificationsRead"], 1);
    let change = next_message(&mut socket).await.expect("READ on node B");
    let change = &change["payload"]["data"]["notificationsChanged"];
    assert_eq!(change["kind"], "READ", "{change}");
    assert_eq!(change["ids"], json!([id]), "{change}");
    assert_eq!(change["unreadCount"], 0, "{change}");
}
