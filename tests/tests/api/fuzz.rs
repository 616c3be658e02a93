//! Seeded fuzzing of a real server with malformed and hostile input:
//! thousands of `POST /graphql` bodies (`bodies`) and WebSocket frames
//! (`frames`), built from the pieces in `inputs`. Whatever a client sends,
//! the process stays up, no answer is a 5xx, every HTTP answer is a
//! GraphQL-shaped JSON body, every socket closes with a code the README
//! lists (never 1011) and every server message is a JSON object with a
//! `type`, no line of the server's log says "panicked", and the server
//! answers a normal query afterwards.
//!
//! A run is deterministic per seed: the same `TICKETS_FUZZ_SEED` sends the
//! same inputs in the same order. `TICKETS_FUZZ_CASES` sets how many bodies
//! and how many frames a run sends; the default keeps it to seconds.

mod bodies;
mod frames;
mod inputs;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use tests::Server;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// Seed of a run without `TICKETS_FUZZ_SEED`.
const DEFAULT_SEED: u64 = 22;

/// Bodies, and frames, of a run without `TICKETS_FUZZ_CASES`.
const DEFAULT_CASES: usize = 1_500;

/// Longest a single answer may take before the server counts as hung.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// Close codes the server may end a socket with: 1000 (the client's own
/// echoed, or after `connection_terminate`), 1009 for a message too big, and
/// the protocol's 44xx.
const CLOSE_CODES: &[u16] = &[1000, 1009, 4400, 4401, 4403, 4408, 4409, 4429];

/// The seed and size of a run, from the environment.
struct Fuzz {
    seed: u64,
    cases: usize,
}

impl Fuzz {
    fn from_env() -> Fuzz {
        let read = |name: &str| {
            std::env::var(name).ok().map(|value| {
                value
                    .trim()
                    .parse::<u64>()
                    .unwrap_or_else(|_| panic!("{name} must be a whole number, not {value:?}"))
            })
        };
        Fuzz {
            seed: read("TICKETS_FUZZ_SEED").unwrap_or(DEFAULT_SEED),
            cases: read("TICKETS_FUZZ_CASES").map_or(DEFAULT_CASES, |n| n as usize),
        }
    }

    /// The generator of one test: the run's seed, a stream per test so the
    /// two tests do not send the same choices.
    fn rng(&self, stream: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(stream);
        rng
    }
}

/// Valid tokens of an admin, an agent and a requester of this server.
pub struct Tokens(Vec<String>);

impl Tokens {
    fn new(server: &Server) -> Tokens {
        Tokens(vec![
            server.token("fuzz-admin", &["ADMIN"], &[]),
            server.token("fuzz-agent", &["AGENT"], &["support"]),
            server.token("fuzz-requester", &["REQUESTER"], &[]),
        ])
    }

    pub fn any(&self, rng: &mut ChaCha8Rng) -> String {
        self.0.choose(rng).expect("tokens").clone()
    }
}

/// What went wrong, kept to report them all at the end.
struct Problems {
    seed: u64,
    found: Vec<String>,
}

impl Problems {
    fn new(seed: u64) -> Problems {
        Problems {
            seed,
            found: Vec::new(),
        }
    }

    fn add(&mut self, case: usize, kind: &str, what: String) {
        self.found.push(format!("case {case} ({kind}): {what}"));
    }

    /// Fails the test if anything went wrong; says how to run it again.
    fn assert_none(&self, server: &Server) {
        assert!(
            self.found.is_empty(),
            "{} problem(s) with TICKETS_FUZZ_SEED={}:\n{}\nserver log:\n{}",
            self.found.len(),
            self.seed,
            self.found.join("\n"),
            tail(&server.log())
        );
    }
}

/// The end of a log, short enough for a failure message.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A short, printable beginning of an input, for a failure's report.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    format!("{text:?} ({} bytes)", bytes.len())
}

/// Stops the run at once if the process has exited: nothing after would
/// tell anything.
fn assert_alive(server: &mut Server, fuzz: &Fuzz, case: usize, input: &str) {
    assert!(
        server.is_running(),
        "the server died at case {case} with TICKETS_FUZZ_SEED={} after {input}; its log:\n{}",
        fuzz.seed,
        tail(&server.log())
    );
}

/// [`assert_alive`] after a connection failed or ended without a close
/// frame: an aborting process drops its connections a moment before it is
/// seen to have exited, so wait that moment, lest a crash be blamed on the
/// next input.
async fn assert_survived(server: &mut Server, fuzz: &Fuzz, case: usize, input: &str) {
    for _ in 0..20 {
        if !server.is_running() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_alive(server, fuzz, case, input);
}

/// How many lines of the server's log say "panicked".
fn panics(server: &Server) -> usize {
    server
        .log()
        .lines()
        .filter(|line| line.contains("panicked"))
        .count()
}

/// After a run: the process lives, nothing panicked, a normal query works.
async fn assert_still_serving(server: &mut Server, fuzz: &Fuzz, problems: &Problems) {
    assert_alive(server, fuzz, fuzz.cases, "the last case");
    let log = server.log();
    let panics: Vec<&str> = log.lines().filter(|l| l.contains("panicked")).collect();
    assert!(
        panics.is_empty(),
        "the server panicked (TICKETS_FUZZ_SEED={}):\n{}\n{}",
        fuzz.seed,
        panics.join("\n"),
        problems.found.join("\n")
    );
    let answer = crate::helpers::Client::new(server, None)
        .post("{ __typename }", serde_json::json!({}))
        .await;
    assert_eq!(answer["data"]["__typename"], "Query", "{answer}");
}

/// `TICKETS_FUZZ_CASES` hostile `POST /graphql` bodies (random bytes,
/// truncated and mangled JSON, deep JSON and GraphQL values, wrong variable
/// types, huge strings and ids, wrong shapes; with no token, a valid one or
/// garbage) never get a 5xx nor anything but a GraphQL-shaped JSON answer,
/// never make the server panic or die, and it answers `{ __typename }`
/// afterwards.
#[tokio::test]
async fn thousands_of_hostile_http_bodies_never_crash_the_server_nor_get_a_5xx() {
    let fuzz = Fuzz::from_env();
    println!(
        "fuzz: TICKETS_FUZZ_SEED={} TICKETS_FUZZ_CASES={} (HTTP bodies)",
        fuzz.seed, fuzz.cases
    );
    let mut server = Server::start();
    let tokens = Tokens::new(&server);
    let mut rng = fuzz.rng(1);
    let http = reqwest::Client::builder()
        .timeout(ANSWER_TIMEOUT)
        .build()
        .expect("an HTTP client");
    let mut problems = Problems::new(fuzz.seed);
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut kinds: BTreeMap<&str, (usize, Duration)> = BTreeMap::new();
    let started = Instant::now();
    for case in 0..fuzz.cases {
        let body = bodies::body(&mut rng, &tokens);
        let sent_at = Instant::now();
        let kind = body.kind;
        let input = format!("{}: {}", body.kind, excerpt(&body.bytes));
        let mut request = http.post(server.graphql_url()).body(body.bytes);
        if let Some(content_type) = body.content_type {
            request = request.header("Content-Type", content_type);
        }
        if let Some(authorization) = body.authorization {
            request = request.header("Authorization", authorization);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                assert_survived(&mut server, &fuzz, case, &input).await;
                let panicked = panics(&server);
                problems.add(
                    case,
                    body.kind,
                    format!("no answer ({e:?}) to {input}; the log now has {panicked} panic(s)"),
                );
                continue;
            }
        };
        let status = response.status().as_u16();
        *statuses.entry(status).or_default() += 1;
        let answer = response.bytes().await.unwrap_or_default();
        if status >= 500 {
            problems.add(case, body.kind, format!("HTTP {status} to {input}"));
        }
        match serde_json::from_slice::<Value>(&answer) {
            Ok(Value::Object(answer))
                if answer.contains_key("data") || answer.contains_key("errors") => {}
            _ => problems.add(
                case,
                body.kind,
                format!("HTTP {status} with {} to {input}", excerpt(&answer)),
            ),
        }
        if case % 50 == 0 {
            assert_alive(&mut server, &fuzz, case, &input);
        }
        let (count, time) = kinds.entry(kind).or_default();
        *count += 1;
        *time += sent_at.elapsed();
    }
    println!(
        "fuzz: {} HTTP bodies in {:.1} s, answered {statuses:?}",
        fuzz.cases,
        started.elapsed().as_secs_f64()
    );
    for (kind, (count, time)) in kinds {
        println!("fuzz:   {count:>6} {kind} in {:.1} s", time.as_secs_f64());
    }
    assert_still_serving(&mut server, &fuzz, &problems).await;
    problems.assert_none(&server);
}

/// How one hostile socket ended.
struct Ending {
    /// The first close code the server sent; `None` when the connection
    /// ended without a close frame.
    close: Option<u16>,
    /// Text messages from the server that were not a JSON object with a
    /// `type`.
    garbled: Vec<String>,
}

/// Reads a socket until it ends.
async fn read_to_end<S>(mut stream: S) -> Ending
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut ending = Ending {
        close: None,
        garbled: Vec::new(),
    };
    while let Some(Ok(message)) = stream.next().await {
        match message {
            Message::Text(text) => match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(m)) if m.get("type").is_some_and(Value::is_string) => {}
                _ => ending.garbled.push(excerpt(text.as_bytes())),
            },
            Message::Close(frame) if ending.close.is_none() => {
                ending.close = Some(frame.map_or(1005, |f| f.code.into()));
            }
            _ => {}
        }
    }
    ending
}

/// `TICKETS_FUZZ_CASES` hostile WebSocket frames, a few per socket on both
/// subprotocols (random text and binary frames, messages out of order or of
/// server-only types, deeply nested and mangled queries, wrong variables,
/// huge ids and payloads), never make the server close a socket with 1011 or
/// a code the README does not list, nor send a message that is not a JSON
/// object with a `type`, nor panic or die; it answers `{ __typename }`
/// afterwards.
#[tokio::test]
async fn thousands_of_hostile_websocket_frames_never_crash_the_server() {
    let fuzz = Fuzz::from_env();
    println!(
        "fuzz: TICKETS_FUZZ_SEED={} TICKETS_FUZZ_CASES={} (WebSocket frames)",
        fuzz.seed, fuzz.cases
    );
    let mut server = Server::start();
    let tokens = Tokens::new(&server);
    let mut rng = fuzz.rng(2);
    let mut problems = Problems::new(fuzz.seed);
    let mut closes: BTreeMap<u16, usize> = BTreeMap::new();
    let (mut sent, mut sockets, mut abrupt, mut panicked_before) = (0, 0, 0, 0);
    let started = Instant::now();
    while sent < fuzz.cases {
        let session = frames::session(&mut rng, &tokens);
        sockets += 1;
        let kinds: Vec<&str> = session.frames.iter().map(|(kind, _)| *kind).collect();
        let input = format!("{} frames {kinds:?}", session.protocol);
        let mut request = format!("ws://{}/graphql", server.address)
            .into_client_request()
            .expect("a WebSocket request");
        let headers = request.headers_mut();
        headers.insert(
            "Sec-WebSocket-Protocol",
            session.protocol.parse().expect("a header value"),
        );
        if let Some(token) = &session.header_token {
            headers.insert("Authorization", token.parse().expect("a header value"));
        }
        let socket =
            tokio::time::timeout(ANSWER_TIMEOUT, tokio_tungstenite::connect_async(request)).await;
        let socket = match socket {
            Ok(Ok((socket, _))) => socket,
            other => {
                assert_survived(&mut server, &fuzz, sent, &input).await;
                let why = other.map_or("timed out".to_string(), |r| format!("{:?}", r.err()));
                problems.add(sent, "upgrade", format!("{why} for {input}"));
                sent += session.frames.len();
                continue;
            }
        };
        let (mut sink, stream) = socket.split();
        // Read while writing: a server blocked on answers nobody reads would
        // stop reading frames too.
        let reader = tokio::spawn(read_to_end(stream));
        for (_, frame) in session.frames {
            sent += 1;
            let message = match frame {
                frames::Frame::Text(text) => Message::text(text),
                frames::Frame::Binary(bytes) => Message::binary(bytes),
                frames::Frame::Ping(bytes) => Message::Ping(bytes.into()),
            };
            // The server may have closed the socket already (4400, 1009, ...).
            if sink.send(message).await.is_err() {
                break;
            }
        }
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            })))
            .await;
        let ending = match tokio::time::timeout(ANSWER_TIMEOUT, reader).await {
            Ok(Ok(ending)) => ending,
            _ => {
                assert_survived(&mut server, &fuzz, sent, &input).await;
                problems.add(sent, "socket", format!("never ended: {input}"));
                continue;
            }
        };
        match ending.close {
            Some(code) => {
                *closes.entry(code).or_default() += 1;
                if !CLOSE_CODES.contains(&code) {
                    problems.add(sent, "socket", format!("closed with {code}: {input}"));
                }
                assert_alive(&mut server, &fuzz, sent, &input);
            }
            None => {
                abrupt += 1;
                assert_survived(&mut server, &fuzz, sent, &input).await;
                // A socket's task that panics drops the socket without a
                // close frame: say which input did it.
                let panicked = panics(&server);
                if panicked > panicked_before {
                    problems.add(sent, "socket", format!("the server panicked: {input}"));
                    panicked_before = panicked;
                }
            }
        }
        for garbled in ending.garbled {
            problems.add(sent, "socket", format!("sent {garbled}: {input}"));
        }
    }
    println!(
        "fuzz: {sent} WebSocket frames on {sockets} sockets in {:.1} s, closed with \
         {closes:?}, {abrupt} ended without a close frame",
        started.elapsed().as_secs_f64()
    );
    assert_still_serving(&mut server, &fuzz, &problems).await;
    problems.assert_none(&server);
}
