//! A lean graphql-transport-ws client for the load generator: small buffers,
//! frames decoded only as far as the benchmark needs (event id and position),
//! and the protocol followed to the letter: `connection_init` with
//! `{"Authorization": "Bearer <token>"}`, wait for `connection_ack`, one
//! `subscribe` per unique id, every `ping` answered with a `pong`.
//!
//! A subscription that falls behind ends with a `LAGGED` error carrying the
//! position it has delivered everything up to; the client does what a real
//! one should: it resubscribes on the same socket under a fresh operation id
//! with `after` = that position, and counts the lag.

use std::borrow::Cow;
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
                match &*frame.kind {
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

/// A subscription kept alive across `LAGGED`: its query and variables (which
/// carry `after`), and the operation id it currently runs under.
pub struct Subscription {
    query: String,
    variables: Value,
    operation: u32,
}

impl Subscription {
    pub fn new(query: String, variables: Value) -> Subscription {
        Subscription {
            query,
            variables,
            operation: 1,
        }
    }

    /// Sends `subscribe` under the current operation id.
    pub async fn start(&self, socket: &mut Socket) -> anyhow::Result<()> {
        let message = json!({
            "id": self.operation.to_string(),
            "type": "subscribe",
            "payload": { "query": self.query, "variables": self.variables },
        });
        socket.send(Message::text(message.to_string())).await?;
        Ok(())
    }

    /// Resubscribes after `LAGGED`: a fresh operation id (ids are never
    /// reused on a socket) and `after` = the position the server named.
    async fn resume(&mut self, socket: &mut Socket, after: &str) -> anyhow::Result<()> {
        self.advance(after);
        self.start(socket).await
    }

    fn advance(&mut self, after: &str) {
        self.operation += 1;
        match self.variables.as_object_mut() {
            Some(variables) => {
                variables.insert("after".into(), Value::String(after.into()));
            }
            None => self.variables = json!({ "after": after }),
        }
    }

    fn is_current(&self, id: Option<&str>) -> bool {
        id == Some(self.operation.to_string().as_str())
    }
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
    /// `LAGGED` completions, each followed by a resubscription.
    pub lags: u64,
    /// Protocol errors, `error` messages and `complete`s other than the one
    /// after `LAGGED`, unexpected closes.
    pub problems: Vec<String>,
}

/// Reads deliveries of `subscription` (already started) into `log` until
/// `stop` is cancelled (then returns, dropping nothing but the caller's
/// socket if it drops it) or the socket ends. Each delivery bumps
/// `delivered`; a `LAGGED` error resubscribes from the position it names.
pub async fn listen(
    socket: &mut Socket,
    subscription: &mut Subscription,
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
        match Incoming::decode(&text) {
            Incoming::Event { id, position } => {
                log.received.push((id, arrived));
                log.last_position = Some(position);
                delivered.fetch_add(1, Ordering::Relaxed);
            }
            Incoming::Lagged { position } => {
                log.lags += 1;
                // Everything up to `position` has been delivered: a later
                // reconnect resumes from there too.
                log.last_position = Some(position.clone());
                if let Err(e) = subscription.resume(socket, &position).await {
                    log.problems
                        .push(format!("resubscribing after LAGGED: {e}"));
                    return;
                }
            }
            // The lagged operation's stream ends with `complete`; only the
            // running one's ending is a problem.
            Incoming::Complete { id } if !subscription.is_current(id.as_deref()) => {}
            Incoming::Ping => {
                if let Err(e) = pong(socket).await {
                    log.problems.push(e.to_string());
                    return;
                }
            }
            Incoming::Pong => {}
            Incoming::Complete { .. } => log.problems.push(format!("unexpected message: {text}")),
            Incoming::Problem(problem) => log.problems.push(problem),
        }
    }
}

/// A server message, classified.
#[derive(Debug, PartialEq)]
enum Incoming {
    Event {
        id: Uuid,
        position: String,
    },
    /// A `next` or `error` whose error has `extensions.code = "LAGGED"`.
    Lagged {
        position: String,
    },
    Complete {
        id: Option<String>,
    },
    Ping,
    Pong,
    /// Anything else, described for the report.
    Problem(String),
}

impl Incoming {
    /// Two typed passes and no intermediate tree: the frame's type first
    /// (the payload skipped unread), then the one payload shape that type
    /// has, reading only the fields the benchmark uses. The load generator
    /// decodes every delivery on the cores the server runs on, so this is
    /// kept cheap (an untagged enum would buffer every payload as a tree).
    fn decode(text: &str) -> Incoming {
        let frame = match serde_json::from_str::<Frame>(text) {
            Ok(frame) => frame,
            Err(e) => return Incoming::Problem(format!("undecodable message ({e}): {text}")),
        };
        let (event, errors) = match &*frame.kind {
            "next" => match serde_json::from_str::<WithPayload<ExecutionResult>>(text) {
                Ok(WithPayload { payload }) => (payload.data.and_then(|d| d.e), payload.errors),
                Err(e) => return Incoming::Problem(format!("undecodable next ({e}): {text}")),
            },
            "error" => match serde_json::from_str::<WithPayload<Vec<GraphqlError>>>(text) {
                Ok(WithPayload { payload }) => (None, payload),
                Err(e) => return Incoming::Problem(format!("undecodable error ({e}): {text}")),
            },
            _ => (None, Vec::new()),
        };
        if matches!(&*frame.kind, "next" | "error") {
            let lagged = errors
                .iter()
                .find(|e| e.extensions.code.as_deref() == Some("LAGGED"));
            if let Some(lagged) = lagged {
                return match &lagged.extensions.position {
                    Some(position) => Incoming::Lagged {
                        position: position.clone(),
                    },
                    None => Incoming::Problem(format!("LAGGED without a position: {text}")),
                };
            }
        }
        match &*frame.kind {
            "next" if errors.is_empty() => match event {
                Some(event) => match Uuid::parse_str(&event.id) {
                    Ok(id) => Incoming::Event {
                        id,
                        position: event.position.into_owned(),
                    },
                    Err(_) => Incoming::Problem(format!("event id is no UUID: {text}")),
                },
                None => Incoming::Problem(format!("next without an event: {text}")),
            },
            "complete" => Incoming::Complete { id: frame.id },
            "ping" => Incoming::Ping,
            "pong" => Incoming::Pong,
            _ => Incoming::Problem(format!("unexpected message: {text}")),
        }
    }
}

/// A server message's type and id; the payload is skipped. Every
/// subscription is sent with its field aliased `e`, so one shape fits all.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    id: Option<String>,
}

/// A message's payload, once its type says which shape it has: `next`
/// carries an execution result, `error` a list of errors.
#[derive(Deserialize)]
struct WithPayload<T> {
    payload: T,
}

#[derive(Deserialize)]
struct ExecutionResult<'a> {
    #[serde(default, borrow)]
    data: Option<Data<'a>>,
    #[serde(default)]
    errors: Vec<GraphqlError>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(default, borrow)]
    e: Option<EventRef<'a>>,
}

#[derive(Deserialize)]
struct EventRef<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    position: Cow<'a, str>,
}

#[derive(Deserialize)]
struct GraphqlError {
    #[serde(default)]
    extensions: Extensions,
}

#[derive(Deserialize, Default)]
struct Extensions {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    position: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0b7e6a4e-7f3c-4f0e-9d55-3a1f3f6f2b10";

    #[test]
    fn a_delivery_is_an_event_with_its_position() {
        let text = format!(
            r#"{{"id":"1","type":"next","payload":{{"data":{{"e":{{"id":"{ID}","position":"42"}}}}}}}}"#
        );
        assert_eq!(
            Incoming::decode(&text),
            Incoming::Event {
                id: Uuid::parse_str(ID).unwrap(),
                position: "42".into()
            }
        );
    }

    /// async-graphql sends a stream's error item as a `next` with errors.
    #[test]
    fn lagged_in_a_next_names_the_position_to_resume_from() {
        let text = r#"{"id":"1","type":"next","payload":{"data":null,"errors":[{"message":"the subscriber fell behind","extensions":{"code":"LAGGED","position":"17"}}]}}"#;
        assert_eq!(
            Incoming::decode(text),
            Incoming::Lagged {
                position: "17".into()
            }
        );
    }

    #[test]
    fn lagged_in_an_error_message_names_the_position_to_resume_from() {
        let text = r#"{"id":"1","type":"error","payload":[{"message":"behind","extensions":{"code":"LAGGED","position":"9"}}]}"#;
        assert_eq!(
            Incoming::decode(text),
            Incoming::Lagged {
                position: "9".into()
            }
        );
    }

    #[test]
    fn other_errors_are_problems_not_lags() {
        let next = r#"{"id":"1","type":"next","payload":{"data":null,"errors":[{"message":"no","extensions":{"code":"FORBIDDEN"}}]}}"#;
        let error = r#"{"id":"1","type":"error","payload":[{"message":"bad query"}]}"#;
        assert!(matches!(Incoming::decode(next), Incoming::Problem(_)));
        assert!(matches!(Incoming::decode(error), Incoming::Problem(_)));
    }

    #[test]
    fn complete_carries_its_operation_id() {
        assert_eq!(
            Incoming::decode(r#"{"id":"2","type":"complete"}"#),
            Incoming::Complete {
                id: Some("2".into())
            }
        );
    }

    /// A resubscription runs under a new id with `after` replaced, so the
    /// old operation's `complete` is told apart from the new one's.
    #[test]
    fn resuming_moves_to_a_new_operation_id() {
        let mut s = Subscription::new("q".into(), json!({ "after": "1", "q": ["x"] }));
        assert!(s.is_current(Some("1")));
        s.advance("5");
        assert!(s.is_current(Some("2")));
        assert!(!s.is_current(Some("1")));
        assert_eq!(s.variables, json!({ "after": "5", "q": ["x"] }));
    }
}
