//! The WebSocket transport to the letter: graphql-transport-ws (the graphql-ws
//! library's PROTOCOL.md) with its close codes, the legacy graphql-ws, the
//! per-socket and per-user limits, token expiry on a live socket, the close
//! frame on shutdown and the `/metrics` gauges, all over a real socket.
//! Its client side (opening, sending, hearing) is shared with the other
//! socket tests of this binary.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tests::Server;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(crate) const TRANSPORT: &str = "graphql-transport-ws";
pub(crate) const LEGACY: &str = "graphql-ws";

/// A subscription that stays live (it starts at the head of the log).
const LIVE: &str = "subscription { supportTicketEvents { eventType } }";

/// What a socket said next.
#[derive(Debug)]
pub(crate) enum Heard {
    Message(Value),
    Close(u16, String),
    /// The connection ended without a close frame.
    End,
}

/// Opens a socket speaking `protocol`, without `connection_init`.
pub(crate) async fn open(server: &Server, protocol: &str) -> Socket {
    let mut request = format!("ws://{}/graphql", server.address)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("WebSocket upgrade");
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        protocol,
        "the server speaks the subprotocol asked for"
    );
    socket
}

pub(crate) async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .expect("send");
}

async fn send_text(socket: &mut Socket, text: &str) {
    socket.send(Message::text(text)).await.expect("send");
}

/// The next thing the server says (WebSocket-level pings skipped). Waits at
/// most 20 s so a broken server fails the test instead of hanging it.
pub(crate) async fn hear(socket: &mut Socket) -> Heard {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("the server said nothing for 20 s");
        match frame {
            None | Some(Err(_)) => return Heard::End,
            Some(Ok(Message::Text(text))) => {
                return Heard::Message(serde_json::from_str(&text).expect("a JSON message"))
            }
            Some(Ok(Message::Close(frame))) => {
                return match frame {
                    Some(frame) => Heard::Close(frame.code.into(), frame.reason.to_string()),
                    None => Heard::Close(1005, String::new()),
                }
            }
            Some(Ok(_)) => continue,
        }
    }
}

/// The next protocol message, skipping keep-alives (`ka`, and `ping`, which
/// is answered).
pub(crate) async fn message(socket: &mut Socket) -> Value {
    loop {
        match hear(socket).await {
            Heard::Message(m) if m["type"] == "ka" => continue,
            Heard::Message(m) if m["type"] == "ping" => {
                send(socket, json!({ "type": "pong" })).await;
            }
            Heard::Message(m) => return m,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

/// The close frame the server sends next, skipping any messages before it.
pub(crate) async fn closed(socket: &mut Socket) -> (u16, String) {
    loop {
        match hear(socket).await {
            Heard::Message(_) => continue,
            Heard::Close(code, reason) => return (code, reason),
            Heard::End => panic!("the connection ended without a close frame"),
        }
    }
}

pub(crate) fn init_with(token: &str) -> Value {
    json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })
}

/// A graphql-transport-ws socket past `connection_ack`.
pub(crate) async fn acknowledged(server: &Server, token: &str) -> Socket {
    let mut socket = open(server, TRANSPORT).await;
    send(&mut socket, init_with(token)).await;
    let ack = message(&mut socket).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    socket
}

pub(crate) fn subscribe(id: &str, query: &str) -> Value {
    json!({ "id": id, "type": "subscribe", "payload": { "query": query } })
}

/// The value of an unlabelled gauge in `/metrics`.
async fn gauge(server: &Server, name: &str) -> i64 {
    let text = reqwest::get(server.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
        .trim()
        .parse()
        .expect("a number")
}

/// Polls `/metrics` until gauge `name` reads `value` (the server counts down
/// once it has seen the socket end, a moment after the client did).
async fn gauge_reaches(server: &Server, name: &str, value: i64) {
    for _ in 0..200 {
        if gauge(server, name).await == value {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{name} never reached {value}: {}",
        gauge(server, name).await
    );
}

/// 4400 for anything PROTOCOL.md does not define: text that is not JSON, an
/// unknown type, a subscribe without an id (or with one over 128 bytes) or
/// without a payload.
#[tokio::test]
async fn an_invalid_message_closes_the_socket_with_4400() {
    let server = Server::start();
    let token = server.token("sam", &["AGENT"], &["support"]);
    let cases = [
        ("{not json", "Invalid message received"),
        (r#"{"type":"start","id":"1"}"#, "start"),
        (
            r#"{"type":"subscribe","payload":{"query":"{ __typename }"}}"#,
            "id",
        ),
        (r#"{"type":"subscribe","id":"1"}"#, "payload"),
    ];
    let long_id = format!(
        r#"{{"type":"subscribe","id":"{}","payload":{{"query":"{{ __typename }}"}}}}"#,
        "i".repeat(129)
    );
    let cases = cases
        .into_iter()
        .chain([(long_id.as_str(), "at most 128 bytes")]);
    for (text, says) in cases {
        let mut socket = acknowledged(&server, &token).await;
        send_text(&mut socket, text).await;
        let (code, reason) = closed(&mut socket).await;
        assert_eq!(code, 4400, "{text}: {reason}");
        assert!(reason.contains(says), "{text}: {reason}");
    }
    // Before connection_init too.
    let mut socket = open(&server, TRANSPORT).await;
    send_text(&mut socket, "[1, 2]").await;
    assert_eq!(closed(&mut socket).await.0, 4400);
}

/// A message over `TICKETS_MAX_BODY_BYTES` is refused with 1009 and a reason
/// naming the limit, before it is buffered whole.
#[tokio::test]
async fn a_message_over_the_size_limit_closes_with_1009() {
    let server = Server::start_with(&[("TICKETS_MAX_BODY_BYTES", "1000")]);
    let mut socket = open(&server, TRANSPORT).await;
    let query = format!("{{ __typename }} # {}", "x".repeat(2000));
    send(&mut socket, subscribe("1", &query)).await;
    let (code, reason) = closed(&mut socket).await;
    assert_eq!(code, 1009, "{reason}");
    assert!(reason.contains("1000"), "{reason}");
}

/// A text frame that is not UTF-8 closes the socket with 1007 (RFC 6455:
/// data inconsistent with the message type), not a bare drop.
#[tokio::test]
async fn a_text_frame_that_is_not_utf8_closes_with_1007() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    let server = Server::start();
    let mut socket = open(&server, TRANSPORT).await;
    let invalid = vec![b'{', 0xff, 0xfe, b'}'];
    socket
        .send(Message::Frame(Frame::message(
            invalid,
            OpCode::Data(Data::Text),
            true,
        )))
        .await
        .expect("the frame is sent");
    let (code, reason) = closed(&mut socket).await;
    assert_eq!(code, 1007, "{reason}");
}

/// A bad, expired or missing token in `connection_init` closes with
/// 4403 `Forbidden` (auth.md), and no acknowledgement comes first.
#[tokio::test]
async fn a_refused_connection_init_closes_with_4403_forbidden() {
    let server = Server::start();
    // Valid until the end of its second (exp = now), expired after.
    let expired = server.token_for("sam", &["AGENT"], &["support"], "0s");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let inits = [
        json!({ "type": "connection_init", "payload": { "authToken": "forged" } }),
        init_with(&expired),
        json!({ "type": "connection_init", "payload": {} }),
        json!({ "type": "connection_init" }),
    ];
    for init in inits {
        let mut socket = open(&server, TRANSPORT).await;
        send(&mut socket, init.clone()).await;
        match hear(&mut socket).await {
            Heard::Close(code, reason) => {
                assert_eq!((code, reason.as_str()), (4403, "Forbidden"), "{init}")
            }
            other => panic!("{init}: expected a 4403 close, got {other:?}"),
        }
    }
}

/// No `connection_init` within `TICKETS_WS_INIT_TIMEOUT_MS`: 4408.
#[tokio::test]
async fn no_connection_init_in_time_closes_with_4408() {
    let server = Server::start_with(&[("TICKETS_WS_INIT_TIMEOUT_MS", "300")]);
    let mut socket = open(&server, TRANSPORT).await;
    let (code, reason) = closed(&mut socket).await;
    assert_eq!(code, 4408);
    assert_eq!(reason, "Connection initialisation timeout");
}

/// Subscribing with the id of an operation still live closes with 4409; once
/// an operation has completed, its id may be used again.
#[tokio::test]
async fn a_duplicate_operation_id_closes_with_4409() {
    let server = Server::start();
    let token = server.token("sam", &["AGENT"], &["support"]);
    let mut socket = acknowledged(&server, &token).await;
    send(&mut socket, subscribe("q", "{ __typename }")).await;
    assert_eq!(message(&mut socket).await["type"], "next");
    assert_eq!(message(&mut socket).await["type"], "complete");
    send(&mut socket, subscribe("q", LIVE)).await;
    send(&mut socket, subscribe("q", LIVE)).await;
    let (code, reason) = closed(&mut socket).await;
    assert_eq!(code, 4409);
    assert_eq!(reason, "Subscriber for q already exists");
}

/// A second `connection_init` closes with 4429.
#[tokio::test]
async fn a_second_connection_init_closes_with_4429() {
    let server = Server::start();
    let token = server.token("sam", &["AGENT"], &["support"]);
    let mut socket = acknowledged(&server, &token).await;
    send(&mut socket, init_with(&token)).await;
    let (code, reason) = closed(&mut socket).await;
    assert_eq!(code, 4429);
    assert_eq!(reason, "Too many initialisation requests");
}

/// `subscribe` before `connection_ack` closes with 4401 `Unauthorized`.
#[tokio::test]
async fn subscribing_before_the_acknowledgement_closes_with_4401() {
    let server = Server::start();
    let mut socket = open(&server, TRANSPORT).await;
    send(&mut socket, subscribe("1", LIVE)).await;
    let (code, reason) = closed(&mut socket).await;
    assert_eq!(code, 4401);
    assert_eq!(reason, "Unauthorized");
}

/// When the token's `exp` passes on a live socket the server closes it with
/// 4401 `token expired`, and its subscription ends with it.
#[tokio::test]
async fn a_token_expiring_on_a_live_socket_closes_it_with_4401() {
    let server = Server::start();
    let token = server.token_for("sam", &["AGENT"], &["support"], "3s");
    let mut socket = acknowledged(&server, &token).await;
    send(&mut socket, subscribe("1", LIVE)).await;
    let (code, reason) = closed(&mut socket).await;
    assert_eq!(code, 4401);
    assert_eq!(reason, "token expired");
    gauge_reaches(&server, "tickets_ws_operations", 0).await;
    gauge_reaches(&server, "tickets_open_sockets", 0).await;
}

/// A query or mutation over the socket is one `next` and a `complete`; a
/// request that fails validation is one `error` (a list of GraphQL errors)
/// and no `complete`.
#[tokio::test]
async fn single_result_operations_answer_next_then_complete() {
    let server = Server::start();
    let token = server.token("sam", &["AGENT"], &["support"]);
    let mut socket = acknowledged(&server, &token).await;
    send(&mut socket, subscribe("me", "query Me { me { id } }")).await;
    let next = message(&mut socket).await;
    assert_eq!(next["type"], "next", "{next}");
    assert_eq!(next["id"], "me");
    assert_eq!(next["payload"]["data"]["me"]["id"], "sam", "{next}");
    let complete = message(&mut socket).await;
    assert_eq!(complete, json!({ "type": "complete", "id": "me" }));

    let create =
        "mutation { createSupportTicket(input: {request: \"Over the socket\"}) { success } }";
    send(&mut socket, subscribe("m", create)).await;
    let next = message(&mut socket).await;
    assert_eq!(
        next["payload"]["data"]["createSupportTicket"]["success"], true,
        "{next}"
    );
    assert_eq!(message(&mut socket).await["type"], "complete");

    send(&mut socket, subscribe("bad", "{ noSuchField }")).await;
    let error = message(&mut socket).await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["id"], "bad");
    assert!(error["payload"][0]["message"].is_string(), "{error}");
    // No complete after an error: the next message answers the next ping.
    send(&mut socket, json!({ "type": "ping" })).await;
    assert_eq!(message(&mut socket).await, json!({ "type": "pong" }));
}

/// The client pings, the server pongs (echoing the payload); the server pings
/// every `TICKETS_WS_KEEPALIVE_MS`, the client pongs, and the socket goes on.
#[tokio::test]
async fn pings_are_answered_with_pongs_both_ways() {
    let server = Server::start_with(&[("TICKETS_WS_KEEPALIVE_MS", "200")]);
    let token = server.token("sam", &["AGENT"], &["support"]);
    let mut socket = open(&server, TRANSPORT).await;
    // A ping may come before connection_init.
    send(
        &mut socket,
        json!({ "type": "ping", "payload": { "n": 1 } }),
    )
    .await;
    match hear(&mut socket).await {
        Heard::Message(pong) => assert_eq!(pong, json!({ "type": "pong", "payload": { "n": 1 } })),
        other => panic!("expected a pong, got {other:?}"),
    }
    send(&mut socket, init_with(&token)).await;
    match hear(&mut socket).await {
        Heard::Message(ack) => assert_eq!(ack["type"], "connection_ack"),
        other => panic!("expected the ack, got {other:?}"),
    }
    for _ in 0..2 {
        match hear(&mut socket).await {
            Heard::Message(ping) => assert_eq!(ping, json!({ "type": "ping" })),
            other => panic!("expected a server ping, got {other:?}"),
        }
        send(&mut socket, json!({ "type": "pong" })).await;
    }
    send(&mut socket, subscribe("1", "{ __typename }")).await;
    assert_eq!(message(&mut socket).await["type"], "next");
}

/// One operation over `TICKETS_WS_MAX_SUBSCRIPTIONS` gets an `error` with
/// code TOO_MANY_SUBSCRIPTIONS for its id; the socket stays up, and once an
/// operation completes there is room again.
#[tokio::test]
async fn a_socket_runs_at_most_the_configured_operations() {
    let server = Server::start_with(&[("TICKETS_WS_MAX_SUBSCRIPTIONS", "2")]);
    let token = server.token("sam", &["AGENT"], &["support"]);
    let mut socket = acknowledged(&server, &token).await;
    send(&mut socket, subscribe("1", LIVE)).await;
    send(&mut socket, subscribe("2", LIVE)).await;
    send(&mut socket, subscribe("3", LIVE)).await;
    let refused = message(&mut socket).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "3");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"], "TOO_MANY_SUBSCRIPTIONS",
        "{refused}"
    );
    assert!(
        refused["payload"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("at most 2")),
        "{refused}"
    );
    gauge_reaches(&server, "tickets_ws_operations", 2).await;
    send(&mut socket, json!({ "type": "complete", "id": "1" })).await;
    send(&mut socket, subscribe("4", "{ __typename }")).await;
    let next = message(&mut socket).await;
    assert_eq!(
        (next["type"].clone(), next["id"].clone()),
        (json!("next"), json!("4"))
    );
}

/// The user's socket over `TICKETS_WS_MAX_SOCKETS_PER_USER` is refused at
/// `connection_init` with 4403 and a reason naming the limit; other users are
/// not affected, and closing one socket makes room again.
#[tokio::test]
async fn a_user_holds_at_most_the_configured_sockets() {
    let server = Server::start_with(&[("TICKETS_WS_MAX_SOCKETS_PER_USER", "2")]);
    let sam = server.token("sam", &["AGENT"], &["support"]);
    let kim = server.token("kim", &["AGENT"], &["support"]);
    let mut first = acknowledged(&server, &sam).await;
    let _second = acknowledged(&server, &sam).await;
    let mut third = open(&server, TRANSPORT).await;
    send(&mut third, init_with(&sam)).await;
    let (code, reason) = closed(&mut third).await;
    assert_eq!(code, 4403);
    assert!(
        reason.contains("too many sockets") && reason.contains('2'),
        "{reason}"
    );
    let _kims = acknowledged(&server, &kim).await;

    first.close(None).await.expect("close");
    while first.next().await.is_some() {}
    gauge_reaches(&server, "tickets_open_sockets", 2).await;
    let _again = acknowledged(&server, &sam).await;
}

/// `/metrics` counts open sockets and live operations, and both come back
/// down on every way out: the client's complete, its close, a server close.
#[tokio::test]
async fn metrics_count_sockets_and_operations_back_to_zero() {
    let server = Server::start();
    let token = server.token("sam", &["AGENT"], &["support"]);
    let mut socket = acknowledged(&server, &token).await;
    send(&mut socket, subscribe("1", LIVE)).await;
    send(&mut socket, subscribe("2", LIVE)).await;
    gauge_reaches(&server, "tickets_open_sockets", 1).await;
    gauge_reaches(&server, "tickets_ws_operations", 2).await;
    send(&mut socket, json!({ "type": "complete", "id": "1" })).await;
    gauge_reaches(&server, "tickets_ws_operations", 1).await;
    socket.close(None).await.expect("close");
    gauge_reaches(&server, "tickets_ws_operations", 0).await;
    gauge_reaches(&server, "tickets_open_sockets", 0).await;

    let mut socket = acknowledged(&server, &token).await;
    send(&mut socket, subscribe("1", LIVE)).await;
    gauge_reaches(&server, "tickets_ws_operations", 1).await;
    send(&mut socket, subscribe("1", LIVE)).await;
    assert_eq!(closed(&mut socket).await.0, 4409);
    gauge_reaches(&server, "tickets_ws_operations", 0).await;
    gauge_reaches(&server, "tickets_open_sockets", 0).await;
    gauge_reaches(&server, "tickets_active_subscriptions", 0).await;
}

/// Legacy graphql-ws: `connection_ack` then `ka`; a query is `data` then
/// `complete`; a subscription runs until `stop`, answered with `complete`;
/// a malformed message is an `error` and the socket stays up;
/// `connection_terminate` closes it.
#[tokio::test]
async fn the_legacy_protocol_runs_start_stop_and_terminate() {
    let server = Server::start();
    let token = server.token("sam", &["AGENT"], &["support"]);
    let mut socket = open(&server, LEGACY).await;
    send(&mut socket, init_with(&token)).await;
    let said = |heard: Heard| match heard {
        Heard::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    };
    assert_eq!(said(hear(&mut socket).await)["type"], "connection_ack");
    assert_eq!(said(hear(&mut socket).await), json!({ "type": "ka" }));

    send(
        &mut socket,
        json!({ "id": "q", "type": "start", "payload": { "query": "{ me { id } }" } }),
    )
    .await;
    let data = message(&mut socket).await;
    assert_eq!(data["type"], "data", "{data}");
    assert_eq!(data["payload"]["data"]["me"]["id"], "sam", "{data}");
    assert_eq!(
        message(&mut socket).await,
        json!({ "type": "complete", "id": "q" })
    );

    send(
        &mut socket,
        json!({ "id": "s", "type": "start", "payload": { "query": LIVE } }),
    )
    .await;
    send(&mut socket, json!({ "id": "s", "type": "stop" })).await;
    assert_eq!(
        message(&mut socket).await,
        json!({ "type": "complete", "id": "s" })
    );

    send(&mut socket, json!({ "id": "x", "type": "subscribe" })).await;
    let error = message(&mut socket).await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["id"], "x");
    assert!(error["payload"]["message"].is_string(), "{error}");

    send(&mut socket, json!({ "type": "connection_terminate" })).await;
    assert_eq!(closed(&mut socket).await.0, 1000);
}

/// Legacy graphql-ws: a bad token gets `connection_error` (saying why, with
/// code UNAUTHENTICATED), then the socket is closed; no `connection_ack`.
#[tokio::test]
async fn the_legacy_protocol_refuses_a_bad_token_with_connection_error() {
    let server = Server::start();
    let mut socket = open(&server, LEGACY).await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "authToken": "forged" } }),
    )
    .await;
    let error = message(&mut socket).await;
    assert_eq!(error["type"], "connection_error", "{error}");
    assert_eq!(
        error["payload"]["extensions"]["code"], "UNAUTHENTICATED",
        "{error}"
    );
    assert!(error["payload"]["message"].is_string(), "{error}");
    assert_eq!(closed(&mut socket).await, (4403, "Forbidden".to_string()));
}

/// On SIGTERM every open socket (either protocol, acknowledged or not) gets a
/// 1001 close frame before the process exits, and the process exits cleanly.
#[tokio::test]
async fn sockets_receive_1001_when_the_server_shuts_down() {
    let server = Server::start();
    let token = server.token("sam", &["AGENT"], &["support"]);
    let mut live = acknowledged(&server, &token).await;
    send(&mut live, subscribe("1", LIVE)).await;
    let mut legacy = open(&server, LEGACY).await;
    send(&mut legacy, init_with(&token)).await;
    assert_eq!(message(&mut legacy).await["type"], "connection_ack");
    let mut waiting = open(&server, TRANSPORT).await;
    gauge_reaches(&server, "tickets_open_sockets", 3).await;

    let stopped = tokio::task::spawn_blocking(move || server.terminate());
    for socket in [&mut live, &mut legacy, &mut waiting] {
        let (code, reason) = closed(socket).await;
        assert_eq!(code, 1001, "{reason}");
    }
    let status = stopped.await.expect("the server stops");
    assert!(status.success(), "{status}");
}
