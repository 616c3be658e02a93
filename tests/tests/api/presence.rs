//! Presence (issue 24, "Presence and collision warnings"): `setTicketPresence`,
//! `ticketPresence` and `ticketPresenceChanged`, on SQLite and on PostgreSQL,
//! over HTTP and WebSocket, and across two nodes on one PostgreSQL database.

use std::time::Duration;

use serde_json::{json, Value};
use tests::Server;

use crate::helpers::{create, error_code, Client};
use crate::subscriptions::{connect, next_message, subscribe, Socket};

const SET: &str =
    "mutation($t: String!, $s: PresenceState!) { setTicketPresence(ticketId: $t, state: $s) }";
const GET: &str =
    "query($t: String!) { ticketPresence(ticketId: $t) { user { id roles } state since } }";
const CHANGED: &str = "subscription($t: String!) { ticketPresenceChanged(ticketId: $t) \
    { user { id roles } state since } }";

/// Longest a test waits for one message before it fails.
const WAIT: Duration = Duration::from_secs(20);

/// Off: a server's pings would restart the wait for a push, so a push that
/// never comes would hang the test instead of failing it.
const NO_KEEPALIVE: (&str, &str) = ("TICKETS_WS_KEEPALIVE_MS", "0");

/// An hour: only the socket's end can remove an entry within a test.
const NO_EXPIRY: (&str, &str) = ("TICKETS_PRESENCE_TTL_MS", "3600000");

#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

fn postgres_url() -> String {
    std::env::var("TICKETS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn fresh_schema() -> String {
    format!(
        "presence_test_{}_{}",
        std::process::id(),
        tests::unique() % 1_000_000
    )
}

impl Backend {
    /// A server on a fresh database of this kind, with `env`.
    fn start(self, env: &[(&str, &str)]) -> Server {
        let mut env = env.to_vec();
        env.push(NO_KEEPALIVE);
        match self {
            Backend::Sqlite => Server::start_with(&env),
            Backend::Postgres => {
                let schema = fresh_schema();
                env.push(("TICKETS_DATABASE_SCHEMA", &schema));
                Server::spawn(postgres_url(), &env, None)
            }
        }
    }
}

/// Generates one test per backend from an `async fn(Backend)` body.
macro_rules! on_both {
    ($(#[$doc:meta])* $body:ident => $sqlite:ident, $postgres:ident) => {
        $(#[$doc])*
        #[tokio::test]
        async fn $sqlite() {
            $body(Backend::Sqlite).await
        }

        $(#[$doc])*
        #[tokio::test]
        async fn $postgres() {
            $body(Backend::Postgres).await
        }
    };
}

/// The users of these tests: two agents of `support`, an agent of
/// `billing` and a requester.
struct Cast {
    ada: Client,
    bob: Client,
    kim: Client,
    rey: Client,
}

fn cast(server: &Server) -> Cast {
    Cast {
        ada: Client::user(server, "ada", &["AGENT"], &["support"]),
        bob: Client::user(server, "bob", &["AGENT"], &["support"]),
        kim: Client::user(server, "kim", &["AGENT"], &["billing"]),
        rey: Client::user(server, "rey", &["REQUESTER"], &[]),
    }
}

async fn set(client: &Client, ticket: &str, state: &str) -> Value {
    client.post(SET, json!({ "t": ticket, "s": state })).await
}

/// `ticketPresence` as (user, state) pairs.
async fn present(client: &Client, ticket: &str) -> Vec<(String, String)> {
    let data = client.data(GET, json!({ "t": ticket })).await;
    pairs(&data["ticketPresence"])
}

fn pairs(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(|e| {
            (
                e["user"]["id"].as_str().unwrap().to_string(),
                e["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn entry(user: &str, state: &str) -> (String, String) {
    (user.to_string(), state.to_string())
}

/// Subscribes to `ticketPresenceChanged(ticket)` as operation `id` and
/// returns its first push (the list as it stands).
async fn watch(socket: &mut Socket, id: &str, ticket: &str) -> Vec<(String, String)> {
    subscribe(socket, id, CHANGED, json!({ "t": ticket })).await;
    next_push(socket, id).await
}

/// The next list pushed on operation `id`.
async fn next_push(socket: &mut Socket, id: &str) -> Vec<(String, String)> {
    let message = next_message(socket, WAIT)
        .await
        .unwrap_or_else(|| panic!("a push on {id} within {WAIT:?}"));
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(message["id"], id, "{message}");
    assert!(message["payload"]["errors"].is_null(), "{message}");
    pairs(&message["payload"]["data"]["ticketPresenceChanged"])
}

/// Sends `setTicketPresence` over `socket` as operation `id` and waits for
/// its answer.
async fn set_over(socket: &mut Socket, id: &str, ticket: &str, state: &str) {
    subscribe(socket, id, SET, json!({ "t": ticket, "s": state })).await;
    let message = next_message(socket, WAIT).await.expect("an answer");
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(
        message["payload"]["data"]["setTicketPresence"], true,
        "{message}"
    );
    let done = next_message(socket, WAIT).await.expect("complete");
    assert_eq!(done["type"], "complete", "{done}");
}

async fn seen_and_pushed(backend: Backend) {
    let server = backend.start(&[]);
    let Cast { ada, bob, .. } = cast(&server);
    let (ticket, _) = create(&ada, "Printer on fire", "support").await;
    let mut socket = connect(&server, &server.token("bob", &["AGENT"], &["support"])).await;
    assert_eq!(watch(&mut socket, "p", &ticket).await, vec![]);

    let answer = set(&ada, &ticket, "VIEWING").await;
    assert_eq!(answer["data"]["setTicketPresence"], true, "{answer}");
    assert_eq!(
        next_push(&mut socket, "p").await,
        vec![entry("ada", "VIEWING")]
    );
    let data = bob.data(GET, json!({ "t": ticket })).await;
    let seen = &data["ticketPresence"][0];
    assert_eq!(seen["user"], json!({ "id": "ada", "roles": ["AGENT"] }));
    assert!(
        seen["since"].as_str().is_some_and(|s| !s.is_empty()),
        "{data}"
    );

    set(&ada, &ticket, "TYPING").await;
    assert_eq!(
        next_push(&mut socket, "p").await,
        vec![entry("ada", "TYPING")]
    );
    // Bob is present too; the list is the whole list.
    set(&bob, &ticket, "VIEWING").await;
    let both = next_push(&mut socket, "p").await;
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(both.contains(&entry("ada", "TYPING")), "{both:?}");
    assert!(both.contains(&entry("bob", "VIEWING")), "{both:?}");
}

on_both!(
    /// One agent's presence is seen by another agent's `ticketPresence` and
    /// pushed, as the whole list, to their `ticketPresenceChanged`.
    seen_and_pushed =>
    an_agents_presence_is_seen_and_pushed_to_another_agent_on_sqlite,
    an_agents_presence_is_seen_and_pushed_to_another_agent_on_postgres
);

async fn requester_forbidden(backend: Backend) {
    let server = backend.start(&[]);
    let Cast { ada, rey, .. } = cast(&server);
    let (ticket, _) = create(&rey, "My own ticket", "support").await;
    set(&ada, &ticket, "VIEWING").await;
    assert_eq!(
        error_code(&set(&rey, &ticket, "VIEWING").await),
        "FORBIDDEN"
    );
    let asked = rey.post(GET, json!({ "t": ticket })).await;
    assert_eq!(error_code(&asked), "FORBIDDEN", "{asked}");
    let mut socket = connect(&server, &server.token("rey", &["REQUESTER"], &[])).await;
    subscribe(&mut socket, "p", CHANGED, json!({ "t": ticket })).await;
    let refused = next_message(&mut socket, WAIT).await.expect("an answer");
    let codes = refused.to_string();
    assert!(codes.contains("FORBIDDEN"), "{refused}");
    assert_eq!(present(&ada, &ticket).await, vec![entry("ada", "VIEWING")]);
}

on_both!(
    /// A REQUESTER gets FORBIDDEN from all three operations, even on their
    /// own ticket, and sets nothing.
    requester_forbidden =>
    a_requester_gets_forbidden_on_sqlite,
    a_requester_gets_forbidden_on_postgres
);

async fn invisible_is_missing(backend: Backend) {
    let server = backend.start(&[]);
    let Cast { ada, kim, .. } = cast(&server);
    let (hidden, _) = create(&kim, "Billing only", "billing").await;
    let missing = "00000000-0000-4000-8000-000000000000";
    let on_hidden = set(&ada, &hidden, "VIEWING").await;
    let on_missing = set(&ada, missing, "VIEWING").await;
    assert_eq!(error_code(&on_hidden), "NOT_FOUND", "{on_hidden}");
    assert_eq!(error_code(&on_missing), "NOT_FOUND", "{on_missing}");
    // The same words, but for the id each names.
    let hidden_message = on_hidden["errors"][0]["message"].as_str().unwrap();
    let missing_message = on_missing["errors"][0]["message"].as_str().unwrap();
    assert_eq!(
        hidden_message.replace(&hidden, "ID"),
        missing_message.replace(missing, "ID")
    );
    let asked = ada.post(GET, json!({ "t": hidden })).await;
    assert_eq!(error_code(&asked), "NOT_FOUND", "{asked}");
    assert!(present(&kim, &hidden).await.is_empty(), "nothing was set");
}

on_both!(
    /// A ticket the caller may not see answers NOT_FOUND, in the same words
    /// as a ticket that does not exist, and nothing is set on it.
    invisible_is_missing =>
    an_invisible_ticket_answers_not_found_like_a_missing_one_on_sqlite,
    an_invisible_ticket_answers_not_found_like_a_missing_one_on_postgres
);

async fn left_removes(backend: Backend) {
    let server = backend.start(&[]);
    let Cast { ada, bob, .. } = cast(&server);
    let (ticket, _) = create(&ada, "Leaving", "support").await;
    let mut socket = connect(&server, &server.token("bob", &["AGENT"], &["support"])).await;
    watch(&mut socket, "p", &ticket).await;
    set(&ada, &ticket, "TYPING").await;
    assert_eq!(
        next_push(&mut socket, "p").await,
        vec![entry("ada", "TYPING")]
    );
    let answer = set(&ada, &ticket, "LEFT").await;
    assert_eq!(answer["data"]["setTicketPresence"], true, "{answer}");
    assert_eq!(next_push(&mut socket, "p").await, vec![]);
    assert!(present(&bob, &ticket).await.is_empty());
}

on_both!(
    /// LEFT removes the caller's entry at once, and the empty list is pushed.
    left_removes =>
    left_removes_the_entry_at_once_on_sqlite,
    left_removes_the_entry_at_once_on_postgres
);

async fn killed_socket(backend: Backend) {
    let server = backend.start(&[NO_EXPIRY]);
    let Cast { ada, bob, .. } = cast(&server);
    let (ticket, _) = create(&ada, "Tab closed", "support").await;
    let mut watcher = connect(&server, &server.token("bob", &["AGENT"], &["support"])).await;
    watch(&mut watcher, "p", &ticket).await;

    let mut ada_socket = connect(&server, &server.token("ada", &["AGENT"], &["support"])).await;
    set_over(&mut ada_socket, "s", &ticket, "TYPING").await;
    assert_eq!(
        next_push(&mut watcher, "p").await,
        vec![entry("ada", "TYPING")]
    );
    // Gone without a close frame, as when a laptop's lid shuts.
    drop(ada_socket);
    assert_eq!(next_push(&mut watcher, "p").await, vec![]);
    assert!(present(&bob, &ticket).await.is_empty());
}

on_both!(
    /// Killing (dropping without a close frame) the socket that set a
    /// presence removes the entry and pushes the new list.
    killed_socket =>
    killing_the_socket_that_set_presence_removes_it_on_sqlite,
    killing_the_socket_that_set_presence_removes_it_on_postgres
);

async fn expires(backend: Backend) {
    let server = backend.start(&[("TICKETS_PRESENCE_TTL_MS", "500")]);
    let Cast { ada, bob, .. } = cast(&server);
    let (ticket, _) = create(&ada, "Walked away", "support").await;
    let mut socket = connect(&server, &server.token("bob", &["AGENT"], &["support"])).await;
    watch(&mut socket, "p", &ticket).await;
    set(&ada, &ticket, "VIEWING").await;
    assert_eq!(
        next_push(&mut socket, "p").await,
        vec![entry("ada", "VIEWING")]
    );
    // No refresh: the entry expires on its own, and that is pushed too.
    assert_eq!(next_push(&mut socket, "p").await, vec![]);
    assert!(present(&bob, &ticket).await.is_empty());
}

on_both!(
    /// An entry set over HTTP and never refreshed ends after the time to live
    /// (shortened here with `TICKETS_PRESENCE_TTL_MS`), and the empty list is
    /// pushed.
    expires =>
    an_entry_expires_after_its_time_to_live_on_sqlite,
    an_entry_expires_after_its_time_to_live_on_postgres
);

async fn capped(backend: Backend) {
    let server = backend.start(&[
        ("TICKETS_PRESENCE_MAX_PER_TICKET", "1"),
        ("TICKETS_PRESENCE_MAX_PER_USER", "1"),
    ]);
    let Cast { ada, bob, .. } = cast(&server);
    let (first, _) = create(&ada, "One", "support").await;
    let (second, _) = create(&ada, "Two", "support").await;
    assert_eq!(
        set(&ada, &first, "VIEWING").await["data"]["setTicketPresence"],
        true
    );
    let crowded = set(&bob, &first, "VIEWING").await;
    assert_eq!(error_code(&crowded), "TOO_MANY_PRESENT", "{crowded}");
    let busy = set(&ada, &second, "VIEWING").await;
    assert_eq!(error_code(&busy), "TOO_MANY_PRESENT", "{busy}");
    // Those present may still change what they do.
    assert_eq!(
        set(&ada, &first, "TYPING").await["data"]["setTicketPresence"],
        true
    );
    assert_eq!(present(&bob, &first).await, vec![entry("ada", "TYPING")]);
    assert!(present(&bob, &second).await.is_empty());
}

on_both!(
    /// Past the caps (users per ticket, tickets per user) a new entry is
    /// refused with TOO_MANY_PRESENT and nothing is set; a refresh of an
    /// entry already there is not refused.
    capped =>
    the_caps_refuse_new_entries_with_a_clear_code_on_sqlite,
    the_caps_refuse_new_entries_with_a_clear_code_on_postgres
);

/// A flood of `setTicketPresence` is held to the caller's mutation budget:
/// past it, RATE_LIMITED with `retryAfterSeconds`.
#[tokio::test]
async fn set_ticket_presence_spends_the_mutation_budget() {
    let server = Server::start_with(&[("TICKETS_RATE_MUTATIONS_PER_MINUTE", "10")]);
    let Cast { ada, .. } = cast(&server);
    let (ticket, _) = create(&ada, "Flooded", "support").await;
    let limited = set(&ada, &ticket, "VIEWING").await;
    assert_eq!(error_code(&limited), "RATE_LIMITED", "{limited}");
    assert!(
        limited["errors"][0]["extensions"]["retryAfterSeconds"].as_u64() >= Some(1),
        "{limited}"
    );
}

/// Two nodes on one PostgreSQL database: a presence set over a socket on
/// node A is pushed to a subscriber on node B and seen by B's query; when
/// that socket is killed, B pushes the empty list.
#[tokio::test]
async fn presence_is_seen_across_two_nodes_on_one_postgres() {
    let schema = fresh_schema();
    let env = [
        ("TICKETS_DATABASE_SCHEMA", schema.as_str()),
        NO_KEEPALIVE,
        NO_EXPIRY,
    ];
    let a = Server::spawn(postgres_url(), &env, None);
    let b = Server::spawn(postgres_url(), &env, None);
    let ada_a = Client::user(&a, "ada", &["AGENT"], &["support"]);
    let bob_b = Client::user(&b, "bob", &["AGENT"], &["support"]);
    let (ticket, _) = create(&ada_a, "Seen from both nodes", "support").await;
    let mut watcher = connect(&b, &b.token("bob", &["AGENT"], &["support"])).await;
    assert_eq!(watch(&mut watcher, "p", &ticket).await, vec![]);

    let mut ada_socket = connect(&a, &a.token("ada", &["AGENT"], &["support"])).await;
    set_over(&mut ada_socket, "s", &ticket, "VIEWING").await;
    assert_eq!(
        next_push(&mut watcher, "p").await,
        vec![entry("ada", "VIEWING")]
    );
    assert_eq!(
        present(&bob_b, &ticket).await,
        vec![entry("ada", "VIEWING")]
    );

    drop(ada_socket);
    assert_eq!(next_push(&mut watcher, "p").await, vec![]);
    assert!(present(&bob_b, &ticket).await.is_empty());
}

/// `ticketPresenceChanged` is served over Server-Sent Events too
/// (`/graphql/stream`), through the same schema.
#[tokio::test]
async fn presence_changes_are_pushed_over_server_sent_events() {
    let server = Server::start();
    let Cast { ada, .. } = cast(&server);
    let (ticket, _) = create(&ada, "Behind a proxy", "support").await;
    let mut stream = reqwest::Client::new()
        .post(server.url("/graphql/stream"))
        .bearer_auth(server.token("bob", &["AGENT"], &["support"]))
        .header("Accept", "text/event-stream")
        .json(&json!({ "query": CHANGED, "variables": { "t": ticket } }))
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(stream.status(), 200);
    assert_eq!(next_sse(&mut stream).await, vec![]);
    set(&ada, &ticket, "TYPING").await;
    assert_eq!(next_sse(&mut stream).await, vec![entry("ada", "TYPING")]);
}

/// The next `next` event's list on an event stream.
async fn next_sse(response: &mut reqwest::Response) -> Vec<(String, String)> {
    let mut text = String::new();
    loop {
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let kind = block
                .lines()
                .find_map(|l| l.strip_prefix("event:"))
                .map(str::trim);
            if kind != Some("next") {
                continue;
            }
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            let value: Value = serde_json::from_str(&data).expect("JSON data");
            return pairs(&value["data"]["ticketPresenceChanged"]);
        }
        let chunk = tokio::time::timeout(WAIT, response.chunk())
            .await
            .expect("an event in time")
            .expect("the stream reads")
            .expect("the stream is open");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

/// A subscriber who may no longer see the ticket (it moved to another
/// team's queue) is told NOT_FOUND at the next change, and hears no more.
#[tokio::test]
async fn a_subscriber_who_may_no_longer_see_the_ticket_hears_not_found() {
    let server = Backend::Sqlite.start(&[]);
    let Cast { ada, .. } = cast(&server);
    let root = Client::user(&server, "root", &["ADMIN"], &[]);
    let (ticket, _) = create(&ada, "Wrong queue", "support").await;
    let mut socket = connect(&server, &server.token("bob", &["AGENT"], &["support"])).await;
    watch(&mut socket, "p", &ticket).await;
    crate::helpers::ok(
        root.mutate(
            "moveSupportTicket(id: $id, queue: \"billing\")",
            "($id: String!)",
            json!({ "id": ticket }),
        )
        .await,
    );
    set(&root, &ticket, "VIEWING").await;
    let message = next_message(&mut socket, WAIT).await.expect("an answer");
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{message}"
    );
    assert!(
        !message.to_string().contains("root"),
        "nothing of the list: {message}"
    );
    let done = next_message(&mut socket, WAIT).await.expect("complete");
    assert_eq!(done["type"], "complete", "{done}");
}
