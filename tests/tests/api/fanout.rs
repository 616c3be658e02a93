//! The fan-out hub behind the ticket subscriptions, seen by a client: a slow
//! subscriber is cut off with a `LAGGED` error naming where it stopped, and
//! resumes from there with `after`.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tests::Server;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::helpers::{ok, Client};

type Socket = WebSocketStream<TcpStream>;

/// Events the server may buffer for one subscriber (`TICKETS_SUBSCRIBER_BUFFER`).
const BUFFER: &str = "4";
/// Comments appended while the subscriber does not read.
const COMMENTS: u64 = 100;

const TICKET_UPDATED: &str = "subscription($id: String!, $after: String) { \
    ticketUpdated(ticketId: $id, after: $after) { id position version \
    ticket { description comments { comment } } } }";

/// A graphql-transport-ws socket with a small receive buffer, so that a
/// client that stops reading soon pushes back on the server.
async fn connect_slow_reader(server: &Server, token: &str) -> Socket {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket
        .connect(server.address.parse().unwrap())
        .await
        .expect("TCP connection");
    let mut request = format!("ws://{}/graphql", server.address)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("WebSocket upgrade");
    let init = json!({ "type": "connection_init", "payload": { "authToken": token } });
    socket.send(Message::text(init.to_string())).await.unwrap();
    let ack = next_message(&mut socket).await.expect("connection_ack");
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    socket
}

async fn subscribe(socket: &mut Socket, id: &str, variables: Value) {
    let message = json!({ "id": id, "type": "subscribe",
        "payload": { "query": TICKET_UPDATED, "variables": variables } });
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

/// The next protocol message other than a ping (answered) or pong, or `None`
/// on close or after 30 s of silence.
async fn next_message(socket: &mut Socket) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .ok()??
            .ok()?;
        let Message::Text(text) = frame else {
            if matches!(frame, Message::Close(_)) {
                return None;
            }
            continue;
        };
        let value: Value = serde_json::from_str(&text).expect("JSON message");
        match value["type"].as_str() {
            Some("ping") => {
                let pong = json!({ "type": "pong" }).to_string();
                socket.send(Message::text(pong)).await.ok()?;
            }
            Some("pong") => {}
            _ => return Some(value),
        }
    }
}

/// What a subscription said: its events' (version, position), in order, and
/// the error that ended it, if one did.
async fn read_until_end_or(
    socket: &mut Socket,
    id: &str,
    last_version: u64,
    events: &mut Vec<(u64, String)>,
) -> Option<Value> {
    loop {
        let message = next_message(socket)
            .await
            .expect("the subscription goes on");
        assert_eq!(message["id"], id, "{message}");
        if let Some(errors) = message["payload"].get("errors") {
            return Some(errors[0].clone());
        }
        assert_eq!(message["type"], "next", "{message}");
        let event = &message["payload"]["data"]["ticketUpdated"];
        let version = event["version"].as_u64().expect("a version");
        events.push((version, event["position"].as_str().unwrap().to_string()));
        if version == last_version {
            return None;
        }
    }
}

/// Appends comment `n` (about 4 KB) to ticket `id`.
async fn comment(client: &Client, id: &str, n: u64) {
    let body = format!("comment {n} {}", "c".repeat(4_000));
    let result = client
        .data(
            "mutation($id: String!, $c: String!) { \
             r: commentOnSupportTicket(id: $id, comment: $c) { success } }",
            json!({ "id": id, "c": body }),
        )
        .await;
    assert_eq!(result["r"]["success"], true, "{result}");
}

/// A subscriber that stops reading while many events are appended falls more
/// than its buffer behind: it receives what was already on its way, then a
/// `LAGGED` error whose `position` is that of the last event it received,
/// and the stream completes. Resubscribing with `after` = that position
/// delivers the rest: together, every event of the ticket once, in order.
#[tokio::test]
async fn a_lagging_subscriber_gets_its_position_and_resumes_without_gap_or_duplicate() {
    let server = Server::start_with(&[("TICKETS_SUBSCRIBER_BUFFER", BUFFER)]);
    let token = server.token("sam", &["AGENT"], &["support"]);
    let sam = Client::new(&server, Some(token.clone()));
    // Large events, so a client that does not read fills the sockets' buffers.
    let created = ok(sam
        .mutate(
            "createSupportTicket(input: {request: \"Flood\", queue: \"support\", description: $d})",
            "($d: String)",
            json!({ "d": "d".repeat(19_000) }),
        )
        .await);
    let id = created["ticket"]["id"].as_str().unwrap().to_string();
    let start = created["event"]["position"].as_str().unwrap().to_string();
    let mut socket = connect_slow_reader(&server, &token).await;
    subscribe(&mut socket, "1", json!({ "id": id, "after": start })).await;
    // The first comment arriving proves the subscriber is registered live.
    comment(&sam, &id, 1).await;
    let mut first = Vec::new();
    assert_eq!(
        read_until_end_or(&mut socket, "1", 1, &mut first).await,
        None
    );

    for n in 2..=COMMENTS {
        comment(&sam, &id, n).await;
    }
    let last_version = COMMENTS;
    let lagged = read_until_end_or(&mut socket, "1", last_version, &mut first)
        .await
        .unwrap_or_else(|| panic!("read every event without lagging: {}", first.len()));
    assert_eq!(lagged["extensions"]["code"], "LAGGED", "{lagged}");
    let position = lagged["extensions"]["position"]
        .as_str()
        .expect("a position")
        .to_string();
    let (received, last_position) = first.last().cloned().unwrap();
    assert_eq!(position, last_position, "the last event received");
    assert!(received < last_version, "lagged before the end");
    let complete = next_message(&mut socket).await.expect("complete");
    assert_eq!(
        (&complete["type"], &complete["id"]),
        (&json!("complete"), &json!("1"))
    );

    subscribe(&mut socket, "2", json!({ "id": id, "after": position })).await;
    let mut rest = Vec::new();
    assert_eq!(
        read_until_end_or(&mut socket, "2", last_version, &mut rest).await,
        None
    );
    let versions: Vec<u64> = first.iter().chain(&rest).map(|(v, _)| *v).collect();
    assert_eq!(versions, (1..=last_version).collect::<Vec<_>>());
}
