//! A lean graphql-transport-ws client for the load generator: small buffers,
//! frames decoded only as far as the benchmark needs (event id and position),
//! and the protocol followed to the letter: `connection_init` with
//! `{"Authorization": "Bearer <token>"}`, wait for `connection_ack`, one
//! `subscribe` per unique id, every `ping` answered with a `pong`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long the server may take to answer `connection_init`.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens a socket to `ws://{address}/graphql` speaking graphql-transport-ws
/// and completes the handshake.
pub async fn connect(address: &str, token: &str) -> anyhow::Result<Socket> {
    let mut request = format!("ws://{address}/graphql").into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().context("protocol header")?,
    );
    // 10,000 of these live in one process: a 4 KiB read buffer instead of the
    // default 128 KiB, and writes go out at once (they are tiny and rare).
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .context("WebSocket upgrade")?;
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    socket.send(Message::text(init.to_string())).await?;
    let deadline = Instant::now() + ACK_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, socket.next())
            .await
            .map_err(|_| anyhow!("no connection_ack within {ACK_TIMEOUT:?}"))?
            .ok_or_else(|| anyhow!("closed before connection_ack"))??;
        match frame {
            Message::Text(text) => {
                let frame: Frame = serde_json::from_str(&text)?;
                match frame.kind.as_str() {
                    "connection_ack" => return Ok(socket),
                    "ping" => pong(&mut socket).await?,
                    other => bail!("expected connection_ack, got {other}: {text}"),
                }
            }
            Message::Close(close) => bail!("closed before connection_ack: {close:?}"),
            _ => {}
        }
    }
}

/// Sends `subscribe` with operation id `id`.
pub async fn subscribe(
    socket: &mut Socket,
    id: &str,
    query: &str,
    variables: Value,
) -> anyhow::Result<()> {
    let message = json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } });
    socket.send(Message::text(message.to_string())).await?;
    Ok(())
}

async fn pong(socket: &mut Socket) -> anyhow::Result<()> {
    socket
        .send(Message::text(r#"{"type":"pong"}"#))
        .await
        .context("sending pong")
}

/// What one client saw.
#[derive(Debug, Default)]
pub struct ClientLog {
    /// Each delivered event: its id and when it arrived.
    pub received: Vec<(Uuid, Instant)>,
    /// The position of the last delivered event (what `after` resumes from).
    pub last_position: Option<String>,
    /// Protocol errors, `error` or `complete` messages, unexpected closes.
    pub problems: Vec<String>,
}

/// Reads deliveries into `log` until `stop` is cancelled (then returns,
/// dropping nothing but the caller's socket if it drops it) or the socket
/// ends. Each delivery bumps `delivered`.
pub async fn listen(
    socket: &mut Socket,
    log: &mut ClientLog,
    stop: &CancellationToken,
    delivered: &AtomicU64,
) {
    loop {
        let frame = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            frame = socket.next() => frame,
        };
        let frame = match frame {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                log.problems.push(format!("socket error: {e}"));
                return;
            }
            None => {
                log.problems.push("socket closed by the server".into());
                return;
            }
        };
        let arrived = Instant::now();
        let text = match frame {
            Message::Text(text) => text,
            Message::Close(close) => {
                log.problems
                    .push(format!("server closed the socket: {close:?}"));
                return;
            }
            _ => continue,
        };
        match serde_json::from_str::<Frame>(&text) {
            Ok(frame) if frame.kind == "next" => match frame.event() {
                Some(event) => match Uuid::parse_str(&event.id) {
                    Ok(id) => {
                        log.received.push((id, arrived));
                        log.last_position = Some(event.position);
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => log.problems.push(format!("event id is no UUID: {text}")),
                },
                None => log.problems.push(format!("next without an event: {text}")),
            },
            Ok(frame) if frame.kind == "ping" => {
                if let Err(e) = pong(socket).await {
                    log.problems.push(e.to_string());
                    return;
                }
            }
            Ok(frame) if frame.kind == "pong" => {}
            Ok(_) => log.problems.push(format!("unexpected message: {text}")),
            Err(e) => log
                .problems
                .push(format!("undecodable message ({e}): {text}")),
        }
    }
}

/// The parts of a server message the benchmark reads. Every subscription is
/// sent with its field aliased `e`, so one shape fits all.
#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    payload: Option<Payload>,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(default)]
    e: Option<EventRef>,
}

#[derive(Deserialize)]
struct EventRef {
    id: String,
    position: String,
}

impl Frame {
    fn event(self) -> Option<EventRef> {
        self.payload?.data?.e
    }
}
