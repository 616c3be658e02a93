//! The mutation driver: comments and priority changes, as an admin, at a fixed
//! rate over HTTP, each mutation's event id, position and response time kept so
//! every delivery can be matched to the mutation that caused it.

use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use store::Position;
use tokio::sync::Semaphore;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::population::Population;

/// Mutations in flight at most; past that the driver falls behind its rate
/// (and says so) rather than piling requests on a struggling server.
const MAX_IN_FLIGHT: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Comment,
    Priority,
}

/// One mutation that appended one event.
#[derive(Debug, Clone)]
pub struct Mutation {
    pub event_id: Uuid,
    pub position: Position,
    /// Index into the population's tickets.
    pub ticket: usize,
    pub kind: Kind,
    /// Whether the ticket was HIGH or CRITICAL right after the event.
    pub urgent_after: bool,
    /// When the driver had the mutation's response.
    pub responded: Instant,
}

/// Everything the driver did, shared with whoever watches it run.
#[derive(Default)]
pub struct Journal {
    pub mutations: Vec<Mutation>,
    pub failures: Vec<String>,
    /// Mutations sent (answered or not).
    pub sent: u64,
}

pub type SharedJournal = Arc<Mutex<Journal>>;

impl Journal {
    /// Says what went wrong with a few of the failed mutations, if any.
    pub fn print_failures(&self) {
        if !self.failures.is_empty() {
            println!(
                "  {} mutations failed, e.g.: {:?}",
                self.failures.len(),
                &self.failures[..self.failures.len().min(3)]
            );
        }
    }
}

pub fn lock(journal: &SharedJournal) -> std::sync::MutexGuard<'_, Journal> {
    journal.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A GraphQL client for one user.
#[derive(Clone)]
pub struct GraphqlClient {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl GraphqlClient {
    pub fn new(http: reqwest::Client, url: String, token: String) -> GraphqlClient {
        GraphqlClient { http, url, token }
    }

    /// `data.r` of a mutation aliased `r`, which must succeed.
    pub async fn mutate(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let body: Value = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if let Some(errors) = body.get("errors") {
            bail!("GraphQL errors: {errors}");
        }
        let result = body["data"]["r"].clone();
        if result["success"] != true {
            bail!("mutation refused: {result}");
        }
        Ok(result)
    }
}

const COMMENT: &str = "mutation($id: String!, $c: String!) { r: commentOnSupportTicket(id: $id, comment: $c) { success errorCode error event { id position } ticket { priority } } }";
const PRIORITY: &str = "mutation($id: String!, $p: TicketPriority!) { r: updateSupportTicketPriority(id: $id, priority: $p) { success errorCode error event { id position } ticket { priority } } }";

/// A driver sending mutations in the background over every ticket of a
/// population, at the rate that gives `deliveries_per_sec` on average.
pub struct Running {
    pub journal: SharedJournal,
    /// Mutations per second.
    pub rate: f64,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn start(
        client: GraphqlClient,
        population: &Population,
        deliveries_per_sec: f64,
    ) -> Running {
        let rate = deliveries_per_sec / population.mean_fanout();
        let journal = SharedJournal::default();
        let stop = CancellationToken::new();
        let task = tokio::spawn(drive(
            client,
            Arc::new(population.tickets.iter().map(|t| t.id.clone()).collect()),
            rate,
            journal.clone(),
            stop.clone(),
        ));
        Running {
            journal,
            rate,
            stop,
            task,
        }
    }

    /// Stops sending and waits until every mutation sent has been answered;
    /// returns what was sent.
    pub async fn stop(self) -> anyhow::Result<Journal> {
        self.stop.cancel();
        self.task.await.context("driver task")?;
        let journal = std::mem::take(&mut *lock(&self.journal));
        Ok(journal)
    }
}

/// Sends mutation after mutation at `per_second` until `stop`, round-robin
/// over `tickets` (ids): on each ticket a priority change (HIGH, then LOW,
/// then HIGH...: always a change), then a comment, and so on. Returns when
/// every mutation sent has been answered.
pub async fn drive(
    client: GraphqlClient,
    tickets: Arc<Vec<String>>,
    per_second: f64,
    journal: SharedJournal,
    stop: CancellationToken,
) {
    let period = Duration::from_secs_f64(1.0 / per_second.max(0.1));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    let mut k = 0usize;
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let ticket = k % tickets.len();
        let round = k / tickets.len();
        k += 1;
        let (kind, query, variables) = match round % 4 {
            0 | 2 => (
                Kind::Priority,
                PRIORITY,
                json!({ "id": tickets[ticket], "p": if round.is_multiple_of(4) { "HIGH" } else { "LOW" } }),
            ),
            _ => (
                Kind::Comment,
                COMMENT,
                json!({ "id": tickets[ticket], "c": format!("Round {round}: we are on it.") }),
            ),
        };
        lock(&journal).sent += 1;
        let client = client.clone();
        let journal = journal.clone();
        tasks.spawn(async move {
            let outcome = client.mutate(query, variables).await;
            let responded = Instant::now();
            drop(permit);
            let recorded = outcome.and_then(|r| {
                if r["event"].is_null() {
                    bail!("no event: the command changed nothing (a concurrent one on the same ticket got there first)");
                }
                Ok(Mutation {
                    event_id: Uuid::parse_str(r["event"]["id"].as_str().unwrap_or_default())
                        .context("event id")?,
                    position: Position::from_str(
                        r["event"]["position"].as_str().unwrap_or_default(),
                    )
                    .map_err(|e| anyhow!("{e}"))?,
                    ticket,
                    kind,
                    urgent_after: matches!(
                        r["ticket"]["priority"].as_str(),
                        Some("HIGH" | "CRITICAL")
                    ),
                    responded,
                })
            });
            let mut journal = lock(&journal);
            match recorded {
                Ok(m) => journal.mutations.push(m),
                Err(e) => journal.failures.push(format!("{e:#}")),
            }
        });
        // Reap finished tasks as we go, so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}
