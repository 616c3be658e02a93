//! Replays after `after` as a hostile client drives them (issue 22, item 4):
//! `ticketUpdated` reads its ticket's stream, not the log; a replay of the
//! whole log from further back than the floor is refused; and a user who opens
//! more replays at once than allowed is rate limited while others go on.
//!
//! Each server here is started on a log written by an earlier server, so its
//! fan-out holds none of those events in memory and every replay of them
//! reads the store.

use std::time::Duration;

use serde_json::{json, Value};
use tests::Server;

use crate::helpers::{create, ok, Client};
use crate::subscriptions::{connect, next_message, subscribe, Socket};

const TICKET_UPDATED: &str = "subscription($id: String!, $after: String) { \
    ticketUpdated(ticketId: $id, after: $after) { id position version } }";
const ALL_EVENTS: &str = "subscription($after: String) { \
    supportTicketEvents(after: $after) { id position } }";
const MINE: &str =
    "subscription($after: String) { myTicketUpdates(after: $after) { id position } }";

/// A fresh SQLite file that outlives the servers started on it.
fn sqlite_file() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("tickets.db").display());
    (dir, url)
}

/// The next message of operation `id` (other operations' are skipped): an
/// `error`, or a `next` whose payload is an event or errors.
async fn next_of(socket: &mut Socket, id: &str, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let message = next_message(socket, left).await?;
        if message["id"] == id {
            return Some(message);
        }
    }
}

/// The first error of a message, if it carries one.
fn error_of(message: &Value) -> Option<Value> {
    match message["type"].as_str() {
        Some("error") => Some(message["payload"][0].clone()),
        Some("next") => message["payload"]["errors"].get(0).cloned(),
        _ => None,
    }
}

/// The events of operation `id`, `field` of each `next`, until `wait` passes
/// without one; fails on an error.
async fn events_of(socket: &mut Socket, id: &str, field: &str, wait: Duration) -> Vec<Value> {
    let mut events = Vec::new();
    while let Some(message) = next_of(socket, id, wait).await {
        assert!(error_of(&message).is_none(), "unexpected error: {message}");
        assert_eq!(message["type"], "next", "{message}");
        events.push(message["payload"]["data"][field].clone());
    }
    events
}

/// A counter of `/metrics`, 0 when absent.
async fn metric(server: &Server, name: &str) -> Option<u64> {
    let text = reqwest::get(server.url("/metrics"))
        .await
        .expect("/metrics answers")
        .text()
        .await
        .expect("a body");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map(|value| value.trim().parse().expect("a number"))
}

/// `ticketUpdated` with `after` delivers exactly the missed events of its
/// ticket, from a log where other tickets' events far outnumber them, and
/// reads no more of the store than that ticket's stream: the replay's cost
/// follows the ticket, not the log.
#[tokio::test]
async fn a_ticket_updated_replay_reads_only_its_tickets_stream() {
    let (_dir, url) = sqlite_file();
    let first = Server::spawn(url.clone(), &[], None);
    let sam = Client::user(&first, "sam", &["AGENT"], &["support"]);
    let (id, created) = create(&sam, "Printer on fire", "support").await;
    let created_at = created["event"]["position"].as_str().unwrap().to_string();
    for n in 0..40 {
        create(&sam, &format!("Noise {n}"), "support").await;
    }
    let priority = "updateSupportTicketPriority(id: $id, priority: $p)";
    let mut missed = Vec::new();
    for p in ["LOW", "CRITICAL"] {
        let result = ok(sam
            .mutate(
                priority,
                "($id: String!, $p: TicketPriority!)",
                json!({ "id": id, "p": p }),
            )
            .await);
        missed.push(result["event"]["id"].clone());
        create(&sam, "More noise", "support").await;
    }
    first.kill();

    let server = Server::spawn(url, &[], None);
    let token = server.token("sam", &["AGENT"], &["support"]);
    let mut socket = connect(&server, &token).await;
    let read_before = metric(&server, "tickets_replay_events_read_total")
        .await
        .expect("the server counts the events its replays read");

    subscribe(
        &mut socket,
        "missed",
        TICKET_UPDATED,
        json!({ "id": id, "after": created_at }),
    )
    .await;
    let events = events_of(
        &mut socket,
        "missed",
        "ticketUpdated",
        Duration::from_millis(1500),
    )
    .await;
    let ids: Vec<Value> = events.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(ids, missed, "exactly the missed events: {events:?}");
    assert_eq!(
        events
            .iter()
            .map(|e| e["version"].clone())
            .collect::<Vec<_>>(),
        vec![json!(1), json!(2)]
    );

    subscribe(
        &mut socket,
        "all",
        TICKET_UPDATED,
        json!({ "id": id, "after": "0" }),
    )
    .await;
    let events = events_of(
        &mut socket,
        "all",
        "ticketUpdated",
        Duration::from_millis(1500),
    )
    .await;
    assert_eq!(events.len(), 3, "the whole ticket: {events:?}");

    let read = metric(&server, "tickets_replay_events_read_total")
        .await
        .unwrap()
        - read_before;
    assert!(
        read <= 6,
        "two replays of a 3-event stream read {read} events of a log of more than 40"
    );
}

/// A replay of the whole log (`supportTicketEvents`, `myTicketUpdates`) from
/// further behind the head than `--max-replay-events` is refused with
/// `REPLAY_TOO_OLD` before anything is read; the socket stays up, a replay
/// within the floor is served, and so is `ticketUpdated` from "0", whose
/// cost follows its ticket.
#[tokio::test]
async fn a_whole_log_replay_from_behind_the_floor_is_refused() {
    let (_dir, url) = sqlite_file();
    let first = Server::spawn(url.clone(), &[], None);
    let root = Client::user(&first, "root", &["ADMIN"], &[]);
    let (id, _) = create(&root, "The first ticket", "support").await;
    let mut positions = Vec::new();
    for n in 0..20 {
        let (_, result) = create(&root, &format!("Ticket {n}"), "support").await;
        positions.push(result["event"]["position"].as_str().unwrap().to_string());
    }
    first.kill();

    let server = Server::spawn(url, &[("TICKETS_MAX_REPLAY_EVENTS", "5")], None);
    let token = server.token("root", &["ADMIN"], &[]);
    let mut socket = connect(&server, &token).await;
    for (op, query) in [("all", ALL_EVENTS), ("mine", MINE)] {
        subscribe(&mut socket, op, query, json!({ "after": "0" })).await;
        let message = next_of(&mut socket, op, Duration::from_secs(10))
            .await
            .expect("an answer");
        let error = error_of(&message).unwrap_or_else(|| panic!("refused: {message}"));
        assert_eq!(error["extensions"]["code"], "REPLAY_TOO_OLD", "{error}");
        assert!(
            error["message"].as_str().unwrap().contains("queries"),
            "says how to recover: {error}"
        );
    }

    // Within the floor: the last two creations.
    let recent = &positions[positions.len() - 3];
    subscribe(
        &mut socket,
        "recent",
        ALL_EVENTS,
        json!({ "after": recent }),
    )
    .await;
    let events = events_of(
        &mut socket,
        "recent",
        "supportTicketEvents",
        Duration::from_millis(1500),
    )
    .await;
    let got: Vec<Value> = events.iter().map(|e| e["position"].clone()).collect();
    assert_eq!(got, vec![json!(positions[18]), json!(positions[19])]);

    subscribe(
        &mut socket,
        "ticket",
        TICKET_UPDATED,
        json!({ "id": id, "after": "0" }),
    )
    .await;
    let events = events_of(
        &mut socket,
        "ticket",
        "ticketUpdated",
        Duration::from_millis(1500),
    )
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
}

/// While the store does not answer, replays stay running: a user who opens
/// more at once than `--max-replays-per-user` gets `RATE_LIMITED` with
/// `retryAfterSeconds` for the extra one (the socket stays up) while another
/// user's replay starts; past `--max-replays` in total anyone's next replay is
/// refused. Once the store answers, the replays that ran deliver everything,
/// and a refused user may replay again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_beyond_the_bounds_are_rate_limited_while_others_proceed() {
    let schema = crate::helpers::fresh_schema("api_replays");
    let target = crate::helpers::postgres_url();
    let host = target
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("host:port in the URL")
        .to_string();
    let env = [("TICKETS_DATABASE_SCHEMA", schema.as_str())];
    let first = Server::spawn(target.clone(), &env, None);
    for user in ["alice", "bob", "carol"] {
        let client = Client::user(&first, user, &["REQUESTER"], &[]);
        create(&client, &format!("{user}'s ticket"), "support").await;
    }
    first.kill();

    let proxy = tests::proxy::StallingProxy::start(&host);
    let url = target.replacen(&host, proxy.address(), 1);
    let server = Server::spawn(
        url,
        &[
            ("TICKETS_DATABASE_SCHEMA", &schema),
            ("TICKETS_MAX_REPLAYS_PER_USER", "2"),
            ("TICKETS_MAX_REPLAYS", "3"),
        ],
        None,
    );
    let token = |user: &str| server.token(user, &["REQUESTER"], &[]);
    let mut alice = connect(&server, &token("alice")).await;
    let mut bob = connect(&server, &token("bob")).await;
    let mut carol = connect(&server, &token("carol")).await;

    proxy.stall();
    for op in ["a1", "a2"] {
        subscribe(&mut alice, op, MINE, json!({ "after": "0" })).await;
    }
    subscribe(&mut alice, "a3", MINE, json!({ "after": "0" })).await;
    let message = next_of(&mut alice, "a3", Duration::from_secs(5))
        .await
        .expect("the third replay is answered at once");
    let error = error_of(&message).unwrap_or_else(|| panic!("refused: {message}"));
    assert_eq!(error["extensions"]["code"], "RATE_LIMITED", "{error}");
    assert!(
        error["extensions"]["retryAfterSeconds"]
            .as_u64()
            .is_some_and(|s| s >= 1),
        "{error}"
    );

    subscribe(&mut bob, "b1", MINE, json!({ "after": "0" })).await;
    let bob_answer = next_of(&mut bob, "b1", Duration::from_millis(800)).await;
    assert!(bob_answer.is_none(), "bob's replay runs: {bob_answer:?}");

    subscribe(&mut carol, "c1", MINE, json!({ "after": "0" })).await;
    let message = next_of(&mut carol, "c1", Duration::from_secs(5))
        .await
        .expect("a replay past the total bound is answered at once");
    let error = error_of(&message).unwrap_or_else(|| panic!("refused: {message}"));
    assert_eq!(error["extensions"]["code"], "RATE_LIMITED", "{error}");

    proxy.resume();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let message = next_message(&mut alice, Duration::from_secs(30))
            .await
            .expect("alice's replays deliver");
        if message["id"] == "a3" {
            assert_eq!(message["type"], "complete", "{message}");
            continue;
        }
        assert!(error_of(&message).is_none(), "{message}");
        seen.push(message["id"].as_str().unwrap().to_string());
    }
    seen.sort();
    assert_eq!(seen, ["a1", "a2"]);
    let message = next_of(&mut bob, "b1", Duration::from_secs(30))
        .await
        .expect("bob's replay delivers");
    assert!(error_of(&message).is_none(), "{message}");

    // A replay gives its place back once it has read past its last event,
    // a moment after delivering it.
    let mut answer = None;
    for attempt in 0..20 {
        let id = format!("c{}", attempt + 2);
        subscribe(&mut carol, &id, MINE, json!({ "after": "0" })).await;
        let message = next_of(&mut carol, &id, Duration::from_secs(30))
            .await
            .expect("an answer");
        match error_of(&message) {
            Some(e) if e["extensions"]["code"] == "RATE_LIMITED" => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            _ => {
                answer = Some(message);
                break;
            }
        }
    }
    let message = answer.expect("carol may replay once the others are done");
    assert!(error_of(&message).is_none(), "{message}");
    assert_eq!(message["type"], "next", "{message}");
}
