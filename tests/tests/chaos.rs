//! Chaos: the server killed with SIGKILL at random moments while writers
//! create tickets and comment on them, on SQLite and on PostgreSQL. After
//! each restart, every writer retries what it was not told the outcome of,
//! with the same idempotency key, as a client should. Then:
//! - every acknowledged mutation is in the log exactly once (its key is in
//!   exactly one event's metadata), and so is every retried one;
//! - positions in the log strictly increase;
//! - the read models, once caught up, equal a clean rebuild from the log.
//!
//! `TICKETS_CHAOS_RUNS` sets the number of kills per backend (default 2, what
//! CI runs); `TICKETS_CHAOS_SEED` the seed of the kill times.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use tests::{tickets, Server};

const WRITERS: usize = 8;

fn runs() -> usize {
    std::env::var("TICKETS_CHAOS_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

fn seed() -> u64 {
    std::env::var("TICKETS_CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7)
}

/// One write a client asked for: what it is, and whether the server said
/// it was done.
#[derive(Debug, Clone)]
struct Write {
    query: String,
    variables: Value,
    acknowledged: bool,
}

/// Every write by idempotency key.
type Ledger = Arc<Mutex<HashMap<String, Write>>>;

struct Backend {
    database_url: String,
    env: Vec<(String, String)>,
}

impl Backend {
    fn start(&self) -> Server {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Server::spawn(self.database_url.clone(), &env, None)
    }

    fn cli(&self, args: &[&str]) -> String {
        let mut all: Vec<String> = Vec::new();
        if let Some((_, schema)) = self
            .env
            .iter()
            .find(|(k, _)| k == "TICKETS_DATABASE_SCHEMA")
        {
            all.extend(["--database-schema".to_string(), schema.clone()]);
        }
        all.extend(args.iter().map(|a| a.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        tests::stdout_ok(&tickets(&self.database_url, &all))
    }
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    vars: &Value,
) -> Option<Value> {
    let response = http
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": vars }))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// Whether a mutation's answer says it was done.
fn done(body: &Value) -> bool {
    body["data"]["r"]["success"] == true
}

const CREATE: &str = "mutation($r: String!, $k: String) { r: createSupportTicket(\
    input: {request: $r, queue: \"support\"}, idempotencyKey: $k) { success ticket { id } } }";
const COMMENT: &str =
    "mutation($id: String!, $c: String!, $k: String) { r: commentOnSupportTicket(\
    id: $id, comment: $c, idempotencyKey: $k) { success } }";

/// Writes until the server stops answering: a ticket, then comments on it,
/// each with a key of its own, recorded before it is sent.
async fn writer(server_url: String, token: String, name: String, ledger: Ledger) {
    let http = reqwest::Client::new();
    for n in 0.. {
        let key = format!("{name}-t{n}");
        let vars = json!({ "r": key, "k": key });
        ledger.lock().unwrap().insert(
            key.clone(),
            Write {
                query: CREATE.into(),
                variables: vars.clone(),
                acknowledged: false,
            },
        );
        let Some(body) = post(&http, &server_url, &token, CREATE, &vars).await else {
            return;
        };
        if !done(&body) {
            panic!("a create was refused: {body}");
        }
        ledger.lock().unwrap().get_mut(&key).unwrap().acknowledged = true;
        let id = body["data"]["r"]["ticket"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        for c in 0..3 {
            let key = format!("{name}-t{n}-c{c}");
            let vars = json!({ "id": id, "c": key, "k": key });
            ledger.lock().unwrap().insert(
                key.clone(),
                Write {
                    query: COMMENT.into(),
                    variables: vars.clone(),
                    acknowledged: false,
                },
            );
            let Some(body) = post(&http, &server_url, &token, COMMENT, &vars).await else {
                return;
            };
            assert!(done(&body), "a comment was refused: {body}");
            ledger.lock().unwrap().get_mut(&key).unwrap().acknowledged = true;
        }
    }
}

/// The whole log: (position, idempotency key) of each event.
async fn read_log(
    http: &reqwest::Client,
    server: &Server,
    token: &str,
) -> Vec<(u64, Option<String>)> {
    let mut events = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let body = post(
            http,
            &server.graphql_url(),
            token,
            "query($a: String) { eventLog(after: $a, first: 1000) { events { position metadata } nextAfter } }",
            &json!({ "a": after }),
        )
        .await
        .expect("the log reads");
        let page = body["data"]["eventLog"]["events"]
            .as_array()
            .expect("events")
            .clone();
        if page.is_empty() {
            return events;
        }
        for event in page {
            let position = event["position"]
                .as_str()
                .unwrap()
                .parse()
                .expect("a SQL position");
            let key = event["metadata"]["idempotencyKey"]
                .as_str()
                .map(str::to_string);
            events.push((position, key));
        }
        after = body["data"]["eventLog"]["nextAfter"]
            .as_str()
            .map(str::to_string);
    }
}

/// Every ticket as the read models list it: (id, version, comment count).
async fn read_models(
    http: &reqwest::Client,
    server: &Server,
    token: &str,
) -> Vec<(String, i64, usize)> {
    let mut tickets = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let body = post(
            http,
            &server.graphql_url(),
            token,
            "query($a: String) { supportTickets(first: 200, after: $a, filter: {includeDeleted: true}) { \
             edges { node { id version comments { comment } } } pageInfo { hasNextPage endCursor } } }",
            &json!({ "a": after }),
        )
        .await
        .expect("the list reads");
        let list = &body["data"]["supportTickets"];
        for edge in list["edges"].as_array().expect("edges") {
            let node = &edge["node"];
            tickets.push((
                node["id"].as_str().unwrap().to_string(),
                node["version"].as_i64().unwrap(),
                node["comments"].as_array().unwrap().len(),
            ));
        }
        if list["pageInfo"]["hasNextPage"] != true {
            return tickets;
        }
        after = list["pageInfo"]["endCursor"].as_str().map(str::to_string);
    }
}

/// Retries, with their keys, the writes whose answer was lost when the
/// server was killed, as a client would; how many there were.
async fn retry_unanswered(
    http: &reqwest::Client,
    server: &Server,
    token: &str,
    ledger: &Ledger,
) -> usize {
    let pending: Vec<(String, Write)> = ledger
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, w)| !w.acknowledged)
        .map(|(k, w)| (k.clone(), w.clone()))
        .collect();
    for (key, write) in &pending {
        let body = post(
            http,
            &server.graphql_url(),
            token,
            &write.query,
            &write.variables,
        )
        .await
        .expect("the restarted server answers");
        assert!(done(&body), "retrying {key}: {body}");
        ledger.lock().unwrap().get_mut(key).unwrap().acknowledged = true;
    }
    pending.len()
}

async fn chaos(backend: Backend) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed());
    let ledger: Ledger = Arc::default();
    let http = reqwest::Client::new();
    let mut retried = 0;
    for run in 0..runs() {
        let server = backend.start();
        let token = server.token("chaos-admin", &["ADMIN"], &[]);
        retried += retry_unanswered(&http, &server, &token, &ledger).await;
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                tokio::spawn(writer(
                    server.graphql_url(),
                    token.clone(),
                    format!("r{run}w{w}"),
                    ledger.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.gen_range(300..1500))).await;
        server.kill();
        for w in writers {
            w.await.expect("a writer ends when the server is gone");
        }
    }

    let server = backend.start();
    let token = server.token("chaos-admin", &["ADMIN"], &[]);
    retried += retry_unanswered(&http, &server, &token, &ledger).await;

    let log = read_log(&http, &server, &token).await;
    for pair in log.windows(2) {
        assert!(pair[0].0 < pair[1].0, "positions must increase: {pair:?}");
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (_, key) in &log {
        if let Some(key) = key {
            *seen.entry(key.as_str()).or_default() += 1;
        }
    }
    let ledger = ledger.lock().unwrap().clone();
    assert!(
        ledger.len() > WRITERS * runs(),
        "the writers wrote ({})",
        ledger.len()
    );
    for key in ledger.keys() {
        assert_eq!(
            seen.get(key.as_str()),
            Some(&1),
            "mutation {key}: once in the log"
        );
    }
    assert_eq!(
        seen.len(),
        ledger.len(),
        "no event the writers did not ask for"
    );

    // The projections catch up on what the last run wrote (a query waits at
    // most `--read-your-writes-ms` for them): read until they hold it all.
    let tickets = ledger.keys().filter(|k| !k.contains("-c")).count();
    let comments = ledger.len() - tickets;
    let deadline = Instant::now() + Duration::from_secs(60);
    let live = loop {
        let live = read_models(&http, &server, &token).await;
        let held = (live.len(), live.iter().map(|t| t.2).sum::<usize>());
        if held == (tickets, comments) {
            break live;
        }
        assert!(
            Instant::now() < deadline,
            "the read models hold {held:?} of {tickets} tickets and {comments} comments"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(server.terminate().code(), Some(0));

    backend.cli(&["projections", "rebuild"]);
    let server = backend.start();
    let rebuilt = read_models(&http, &server, &token).await;
    assert_eq!(rebuilt, live, "the read models equal a clean rebuild");
    println!(
        "chaos: {} kills, {} mutations acknowledged, {retried} of them retried after a kill, {} events",
        runs(),
        ledger.len(),
        log.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_writes_on_sqlite_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    chaos(Backend {
        database_url: format!("sqlite://{}", dir.path().join("chaos.db").display()),
        env: vec![],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_writes_on_postgres_loses_and_duplicates_nothing() {
    let url = std::env::var("TICKETS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!(
        "chaos_{}_{}",
        std::process::id(),
        tests::unique() % 1_000_000
    );
    chaos(Backend {
        database_url: url,
        env: vec![("TICKETS_DATABASE_SCHEMA".into(), schema)],
    })
    .await;
}
