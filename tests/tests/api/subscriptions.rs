//! Subscriptions over a real WebSocket (graphql-transport-ws).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tests::Server;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{create, ok, Client};

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const TICKET_UPDATED: &str = "subscription($id: String!, $after: String) { \
    ticketUpdated(ticketId: $id, after: $after) { id position version eventType ticket { priority } } }";

/// Opens a graphql-transport-ws socket and completes `connection_init`.
pub(crate) async fn connect(server: &Server, token: &str) -> Socket {
    connect_with(server, token, "graphql-transport-ws").await
}

/// Opens a socket speaking `protocol` and completes `connection_init`.
async fn connect_with(server: &Server, token: &str, protocol: &str) -> Socket {
    let mut request = format!("ws://{}/graphql", server.address)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("WebSocket upgrade");
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    socket.send(Message::text(init.to_string())).await.unwrap();
    let ack = next_message(&mut socket, Duration::from_secs(10))
        .await
        .expect("an answer to connection_init");
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    socket
}

pub(crate) async fn subscribe(socket: &mut Socket, id: &str, query: &str, variables: Value) {
    let message = json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } });
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

/// The next protocol message (pings are answered and skipped), or `None` on
/// timeout or close.
pub(crate) async fn next_message(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(wait, socket.next())
            .await
            .ok()??
            .ok()?;
        match frame {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).expect("JSON message");
                if value["type"] == "ka" {
                    continue;
                }
                if value["type"] == "ping" {
                    socket
                        .send(Message::text(json!({ "type": "pong" }).to_string()))
                        .await
                        .ok()?;
                    continue;
                }
                return Some(value);
            }
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

/// The payload of the next `next` message, failing on anything else.
async fn next_event(socket: &mut Socket) -> Value {
    let message = next_message(socket, Duration::from_secs(15))
        .await
        .expect("an event");
    assert_eq!(message["type"], "next", "{message}");
    assert!(message["payload"].get("errors").is_none(), "{message}");
    message["payload"]["data"]["ticketUpdated"].clone()
}

/// A subscriber receives a mutation's event live; after a disconnect, while
/// another client mutates twice, resuming with `after` delivers exactly those
/// two events: no gap, no duplicate, nothing of other tickets.
#[tokio::test]
async fn a_resumed_subscription_receives_exactly_what_it_missed() {
    let server = Server::start();
    let sam_token = server.token("sam", &["AGENT"], &["support"]);
    let sam = Client::new(&server, Some(sam_token.clone()));
    let kim = Client::user(&server, "kim", &["AGENT"], &["support"]);
    let (id, created) = create(&sam, "Flaky Wi-Fi", "support").await;
    let (other, _) = create(&sam, "Unrelated", "support").await;
    let created_at = created["event"]["position"].as_str().unwrap().to_string();

    let mut socket = connect(&server, &sam_token).await;
    subscribe(
        &mut socket,
        "1",
        TICKET_UPDATED,
        json!({ "id": id, "after": created_at }),
    )
    .await;
    let priority = "updateSupportTicketPriority(id: $id, priority: $p)";
    let vars = |p: &str| json!({ "id": id, "p": p });
    let first = ok(sam
        .mutate(priority, "($id: String!, $p: TicketPriority!)", vars("LOW"))
        .await);
    let live = next_event(&mut socket).await;
    assert_eq!(live["id"], first["event"]["id"]);
    assert_eq!(live["version"], 1);
    assert_eq!(live["ticket"]["priority"], "LOW");
    let seen = live["position"].as_str().unwrap().to_string();
    drop(socket);

    let second = ok(kim
        .mutate(
            priority,
            "($id: String!, $p: TicketPriority!)",
            vars("HIGH"),
        )
        .await);
    ok(kim
        .mutate(
            "addSupportTicketTag(id: $id, tag: \"noise\")",
            "($id: String!)",
            json!({ "id": other }),
        )
        .await);
    let third = ok(kim
        .mutate(
            priority,
            "($id: String!, $p: TicketPriority!)",
            vars("CRITICAL"),
        )
        .await);

    let mut socket = connect(&server, &sam_token).await;
    subscribe(
        &mut socket,
        "2",
        TICKET_UPDATED,
        json!({ "id": id, "after": seen }),
    )
    .await;
    let a = next_event(&mut socket).await;
    let b = next_event(&mut socket).await;
    assert_eq!(a["id"], second["event"]["id"]);
    assert_eq!(b["id"], third["event"]["id"]);
    assert_eq!(
        (a["version"].clone(), b["version"].clone()),
        (json!(2), json!(3))
    );
    let extra = next_message(&mut socket, Duration::from_millis(700)).await;
    assert!(extra.is_none(), "nothing more: {extra:?}");
}

/// A socket whose `connection_init` carries a bad token gets no acknowledgement
/// and no subscription.
#[tokio::test]
async fn a_socket_with_a_bad_token_is_refused() {
    let server = Server::start();
    let mut request = format!("ws://{}/graphql", server.address)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init = json!({ "type": "connection_init", "payload": { "authToken": "forged" } });
    socket.send(Message::text(init.to_string())).await.unwrap();
    let answer = next_message(&mut socket, Duration::from_secs(5)).await;
    assert!(
        answer
            .as_ref()
            .is_none_or(|m| m["type"] != "connection_ack"),
        "{answer:?}"
    );
}

/// The legacy `graphql-ws` subprotocol works too: `start` a subscription with
/// the token in the `connection_init` payload, receive `data` for a mutation's event.
#[tokio::test]
async fn the_legacy_graphql_ws_protocol_delivers_events_too() {
    let server = Server::start();
    let token = server.token("sam", &["AGENT"], &["support"]);
    let sam = Client::new(&server, Some(token.clone()));
    let (id, created) = create(&sam, "Legacy client", "support").await;
    let mut socket = connect_with(&server, &token, "graphql-ws").await;
    let start = json!({ "id": "1", "type": "start", "payload": {
        "query": TICKET_UPDATED,
        "variables": { "id": id, "after": created["event"]["position"] } } });
    socket.send(Message::text(start.to_string())).await.unwrap();
    let tagged = ok(sam
        .mutate(
            "addSupportTicketTag(id: $id, tag: \"legacy\")",
            "($id: String!)",
            json!({ "id": id }),
        )
        .await);
    let message = next_message(&mut socket, Duration::from_secs(15))
        .await
        .expect("an event");
    assert_eq!(message["type"], "data", "{message}");
    assert_eq!(
        message["payload"]["data"]["ticketUpdated"]["id"],
        tagged["event"]["id"]
    );
}

/// GET /graphql without an upgrade serves the GraphiQL page, and the page
/// works offline: every script, style and icon it references is served by this
/// server (or inline), none from another host.
#[tokio::test]
async fn a_browser_gets_graphiql_with_every_asset_from_this_server() {
    let server = Server::start();
    let page = reqwest::get(server.graphql_url()).await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("GraphiQL"), "{html}");
    assert!(
        !html.contains("http:") && !html.contains("https:") && !html.contains("//"),
        "no external host in the page: {html}"
    );
    let mut references = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for (at, _) in html.match_indices(attribute) {
            let rest = &html[at + attribute.len()..];
            references.push(rest[..rest.find('"').unwrap()].to_string());
        }
    }
    let scripts = references.iter().filter(|r| r.ends_with(".js")).count();
    assert_eq!(scripts, 3, "React, ReactDOM and GraphiQL: {references:?}");
    for reference in &references {
        if reference.starts_with("data:") {
            continue;
        }
        assert!(reference.starts_with('/'), "{reference} is on this server");
        let asset = reqwest::get(server.url(reference)).await.unwrap();
        assert_eq!(asset.status(), 200, "{reference}");
        let kind = asset.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        let body = asset.text().await.unwrap();
        assert!(body.len() > 1000, "{reference} has content");
        if reference.ends_with(".css") {
            assert!(kind.starts_with("text/css"), "{reference}: {kind}");
            assert!(
                !body.contains("url(http") && !body.contains("url(//"),
                "{reference}"
            );
        } else {
            assert!(kind.starts_with("text/javascript"), "{reference}: {kind}");
        }
    }
    // The licences are served beside the code they cover.
    let css = references.iter().find(|r| r.ends_with(".css")).unwrap();
    let licence = reqwest::get(server.url(&css.replace("graphiql.min.css", "LICENSE-graphiql")))
        .await
        .unwrap();
    assert_eq!(licence.status(), 200);
    assert!(licence.text().await.unwrap().contains("MIT License"));
    let missing = reqwest::get(server.url(&css.replace("graphiql.min.css", "nope.js")))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

/// The introspection query GraphiQL sends (graphql-js's, every option on).
const INTROSPECTION: &str = "query IntrospectionQuery { __schema { description \
    queryType { name } mutationType { name } subscriptionType { name } \
    types { ...FullType } directives { name description isRepeatable locations \
    args(includeDeprecated: true) { ...InputValue } } } } \
    fragment FullType on __Type { kind name description specifiedByURL isOneOf \
    fields(includeDeprecated: true) { name description args(includeDeprecated: true) \
    { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason } \
    inputFields(includeDeprecated: true) { ...InputValue } interfaces { ...TypeRef } \
    enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason } \
    possibleTypes { ...TypeRef } } \
    fragment InputValue on __InputValue { name description type { ...TypeRef } \
    defaultValue isDeprecated deprecationReason } \
    fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name \
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name \
    ofType { kind name ofType { kind name ofType { kind name } } } } } } } } } }";

/// GraphiQL loads the schema (docs, completion) from a server with the default
/// `--max-query-depth`: introspection's 15 levels are not held to it, while
/// the contract's own fields still are.
#[tokio::test]
async fn graphiql_loads_the_schema_under_the_default_depth_limit() {
    let server = Server::start();
    let anonymous = Client::new(&server, None);
    let answer = anonymous.post(INTROSPECTION, json!({})).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    assert_eq!(answer["data"]["__schema"]["queryType"]["name"], "Query");
    assert!(
        answer["data"]["__schema"]["types"]
            .as_array()
            .unwrap()
            .len()
            > 20
    );

    let nested = "relatedTickets { ".repeat(12);
    let deep = format!(
        "{{ __schema {{ queryType {{ name }} }} supportTicket(id: \"x\") {{ {nested} id {} }} }}",
        "}".repeat(12)
    );
    let refused = anonymous.post(&deep, json!({})).await;
    let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("nested too deep"), "{refused}");
    assert!(refused["data"].is_null(), "{refused}");
}

const ALL_EVENTS: &str = "subscription { supportTicketEvents(after: \"0\") { \
    eventType ticket { id request comments { comment } } comment { comment } previousState } }";

/// Receives `supportTicketEvents` payloads until nothing comes for a while.
async fn drain(socket: &mut Socket) -> Vec<Value> {
    let mut events = Vec::new();
    while let Some(message) = next_message(socket, Duration::from_millis(1500)).await {
        assert_eq!(message["type"], "next", "{message}");
        assert!(message["payload"].get("errors").is_none(), "{message}");
        events.push(message["payload"]["data"]["supportTicketEvents"].clone());
    }
    events
}

/// Replayed or live, a requester receives only events of tickets they may see
/// and never an internal comment; an agent outside the queue receives nothing;
/// team updates are for staff only.
#[tokio::test]
async fn subscribers_receive_only_what_they_may_see() {
    let server = Server::start();
    let alice_token = server.token("alice", &["REQUESTER"], &[]);
    let bill_token = server.token("bill", &["AGENT"], &["billing"]);
    let alice = Client::new(&server, Some(alice_token.clone()));
    let bob = Client::user(&server, "bob", &["REQUESTER"], &[]);
    let sam = Client::user(&server, "sam", &["AGENT"], &["support"]);
    let (mine, _) = create(&alice, "Alice's laptop", "support").await;
    create(&bob, "Bob's phone", "support").await;

    let mut alice_socket = connect(&server, &alice_token).await;
    subscribe(&mut alice_socket, "1", ALL_EVENTS, json!({})).await;
    let mut bill_socket = connect(&server, &bill_token).await;
    subscribe(&mut bill_socket, "1", ALL_EVENTS, json!({})).await;

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
    create(&bob, "Bob again", "support").await;

    let received = drain(&mut alice_socket).await;
    let text = serde_json::to_string(&received).unwrap();
    assert!(!text.contains("SECRET"), "{text}");
    assert!(!text.contains("Bob"), "{text}");
    let types: Vec<&str> = received
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["CREATED", "COMMENTED"], "{text}");
    assert_eq!(received[1]["comment"]["comment"], "Public reply");
    assert!(drain(&mut bill_socket).await.is_empty());

    subscribe(
        &mut alice_socket,
        "2",
        "subscription { teamTicketUpdates { id } }",
        json!({}),
    )
    .await;
    let refused = next_message(&mut alice_socket, Duration::from_secs(10))
        .await
        .expect("an answer");
    let code = refused["payload"]["errors"][0]["extensions"]["code"].clone();
    assert_eq!(code, "FORBIDDEN", "{refused}");

    subscribe(
        &mut alice_socket,
        "3",
        "subscription { queueMetricsUpdated { queue } }",
        json!({}),
    )
    .await;
    let refused = loop {
        let message = next_message(&mut alice_socket, Duration::from_secs(10))
            .await
            .expect("an answer");
        if message["id"] == "3" {
            break message;
        }
    };
    let code = refused["payload"]["errors"][0]["extensions"]["code"].clone();
    assert_eq!(code, "FORBIDDEN", "{refused}");
}

/// The next `next` payload's `field` of subscription `id`, skipping others.
pub(crate) async fn next_of(socket: &mut Socket, id: &str, field: &str) -> Value {
    loop {
        let message = next_message(socket, Duration::from_secs(15))
            .await
            .expect("a message");
        if message["id"] != id {
            continue;
        }
        assert_eq!(message["type"], "next", "{message}");
        assert!(message["payload"].get("errors").is_none(), "{message}");
        return message["payload"]["data"][field].clone();
    }
}

/// A new ticket and its assignment reach the queue's other agent's
/// `notificationAdded` (never the actor's), and the queue's new figures
/// reach `queueMetricsUpdated`.
#[tokio::test]
async fn read_model_subscriptions_deliver_notifications_and_queue_figures() {
    let server = Server::start();
    let sam_token = server.token("sam", &["AGENT"], &["support"]);
    let kim_token = server.token("kim", &["AGENT"], &["support"]);
    let sam = Client::new(&server, Some(sam_token.clone()));
    let kim = Client::new(&server, Some(kim_token.clone()));
    sam.data("{ me { id } }", json!({})).await;
    kim.data("{ me { id } }", json!({})).await;

    let mut kim_socket = connect(&server, &kim_token).await;
    subscribe(
        &mut kim_socket,
        "n",
        "subscription { notificationAdded { id eventType read ticketId } }",
        json!({}),
    )
    .await;
    let mut sam_socket = connect(&server, &sam_token).await;
    subscribe(
        &mut sam_socket,
        "n",
        "subscription { notificationAdded { id } }",
        json!({}),
    )
    .await;
    subscribe(
        &mut sam_socket,
        "q",
        "subscription { queueMetricsUpdated(queue: \"support\") { queue open } }",
        json!({}),
    )
    .await;
    // Live only: let the subscriptions start before the writes.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (id, _) = create(&sam, "Printer on fire", "support").await;
    ok(sam
        .mutate(
            "assignSupportTicket(id: $id, assigneeId: \"kim\")",
            "($id: String!)",
            json!({ "id": id }),
        )
        .await);

    // Kim is an agent of the queue: the new ticket first, then the assignment.
    let alert = next_of(&mut kim_socket, "n", "notificationAdded").await;
    assert_eq!(alert["eventType"], "CREATED", "{alert}");
    let added = next_of(&mut kim_socket, "n", "notificationAdded").await;
    assert_eq!(added["eventType"], "ASSIGNED", "{added}");
    assert_eq!(added["read"], false, "{added}");
    assert_eq!(added["ticketId"], id.as_str(), "{added}");

    let figures = loop {
        let figures = next_of(&mut sam_socket, "q", "queueMetricsUpdated").await;
        assert_eq!(figures["queue"], "support", "{figures}");
        if figures["open"] == 1 {
            break figures;
        }
    };
    assert_eq!(figures["open"], 1);
    // Sam caused every event: no notification for him.
    let own = next_message(&mut sam_socket, Duration::from_millis(700)).await;
    assert!(own.as_ref().is_none_or(|m| m["id"] != "n"), "{own:?}");
}
