//! Issue 6, scenario 3: the real server over loopback with 1,000, 5,000 and
//! 10,000 WebSocket clients on a realistic mix of subscriptions
//! ([`crate::population`]), a driver sending mutations at a fixed rate sized
//! for the target deliveries per second, and for every delivery the time from
//! the mutation's response to its arrival. Counts missed, duplicated and
//! unexpected deliveries exactly, and the server's memory per idle socket.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use domain::Role;
use hdrhistogram::Histogram;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::backend::Backend;
use crate::driver::{self, GraphqlClient, Journal, Mutation};
use crate::population::{ClientSpec, Population, TicketSpec};
use crate::report::{ms, thousands, Row};
use crate::scenarios::commands::{new_histogram, record};
use crate::server::{tickets_bin, ServerProcess};
use crate::ws_client::{self, ClientLog, Subscription};
use crate::Settings;

/// Sockets opened per step, and the step: the gradual opening of the issue.
pub const OPEN_BATCH: usize = 500;
pub const OPEN_EVERY: Duration = Duration::from_millis(100);
/// How long deliveries may trail the last mutation before the missing ones
/// count as missed.
const DRAIN: Duration = Duration::from_secs(15);

pub async fn run(settings: &Settings, backend: Backend) -> anyhow::Result<Vec<Row>> {
    let counts = match (&settings.sockets, settings.tiny()) {
        (Some(counts), _) => counts.clone(),
        (None, true) => vec![20],
        (None, false) => vec![1_000, 5_000, 10_000],
    };
    let mut rows = Vec::new();
    for sockets in counts {
        rows.push(one(settings, backend, sockets).await?);
    }
    Ok(rows)
}

async fn one(settings: &Settings, backend: Backend, sockets: usize) -> anyhow::Result<Row> {
    let bin = tickets_bin(settings.tickets_bin.as_deref())?;
    let server = ServerProcess::start(&bin, backend, &settings.postgres_url).await?;
    println!(
        "  fanout: {sockets} sockets, server pid {} on {}",
        server.pid, server.address
    );
    let outcome = tokio::time::timeout(settings.deadline, measure(settings, &server, sockets))
        .await
        .unwrap_or_else(|_| {
            bail!(
                "fan-out with {sockets} sockets passed its deadline of {:?}",
                settings.deadline
            )
        });
    server.stop().await?;
    let m = outcome?;
    // Which build served: a debug server's figures are no figures.
    let served_by = bin.display().to_string();
    let full_target = !settings.tiny() && sockets >= 10_000;
    let kb_per_socket = m.rss_per_socket_bytes / 1000.0;
    let met = full_target.then(|| {
        m.latency.value_at_quantile(0.99) < 50_000
            && m.deliveries_per_sec >= 0.9 * settings.deliveries_per_sec
            && kb_per_socket < 30.0
            && m.missed == 0
            && m.duplicated == 0
            && m.connect_failures == 0
    });
    Ok(Row {
        scenario: "fanout".into(),
        backend: backend.to_string(),
        settings: format!(
            "{} sockets (60% myTicketUpdates, 30% teamTicketUpdates, 10% supportTicketEvents filtered), {} tickets, {:.1} mutations/s for {} s (aimed at {} deliveries/s), opened {OPEN_BATCH} per {} ms; server {served_by}",
            thousands(sockets as f64),
            m.tickets,
            m.rate,
            settings.drive.as_secs(),
            thousands(settings.deliveries_per_sec),
            OPEN_EVERY.as_millis()
        ),
        result: format!(
            "p50 {}, p99 {}, max {}; {} deliveries/s ({} deliveries of {} mutations, {} before the response); missed {}, duplicated {}, unexpected {}; {:.1} KB/idle socket (RSS {:.0} -> {:.0} MiB); lagged {} (resumed); {} connect failures, {} mutation failures, {} socket problems",
            ms(m.latency.value_at_quantile(0.5)),
            ms(m.latency.value_at_quantile(0.99)),
            ms(m.latency.max()),
            thousands(m.deliveries_per_sec),
            thousands(m.deliveries as f64),
            thousands(m.mutations as f64),
            m.early,
            m.missed,
            m.duplicated,
            m.unexpected,
            kb_per_socket,
            m.rss_before_kib as f64 / 1024.0,
            m.rss_after_kib as f64 / 1024.0,
            m.lagged,
            m.connect_failures,
            m.mutation_failures,
            m.problems
        ),
        target: "10,000 sockets: p99 < 50 ms at 10,000 deliveries/s, < 30 KB/idle socket, none missed or duplicated".into(),
        met,
    })
}

pub struct Measured {
    pub tickets: usize,
    pub rate: f64,
    pub latency: Histogram<u64>,
    pub deliveries: u64,
    pub deliveries_per_sec: f64,
    pub mutations: usize,
    pub early: u64,
    pub missed: u64,
    pub duplicated: u64,
    pub unexpected: u64,
    /// `LAGGED` completions, each resubscribed from its position.
    pub lagged: u64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub rss_per_socket_bytes: f64,
    pub connect_failures: usize,
    pub mutation_failures: usize,
    pub problems: usize,
}

async fn measure(
    settings: &Settings,
    server: &ServerProcess,
    sockets: usize,
) -> anyhow::Result<Measured> {
    let mut population = Population::plan(sockets);
    let http = reqwest::Client::new();
    let cursor = create_tickets(server, &http, &mut population.tickets).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before_kib = server.rss_kib()?;

    let fleet = Fleet::open(server, &population.clients, &cursor).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after_kib = server.rss_kib()?;
    let connected = sockets - fleet.failures;
    let rss_per_socket_bytes =
        (rss_after_kib.saturating_sub(rss_before_kib) * 1024) as f64 / connected.max(1) as f64;

    let driving = driver::Running::start(
        admin(server, &http)?,
        &population,
        settings.deliveries_per_sec,
    );
    let rate = driving.rate;
    let drive_started = Instant::now();
    tokio::time::sleep(settings.drive).await;
    let journal = driving.stop().await?;
    let expected = fleet.expected_total(&population, &journal);
    fleet.drain(expected).await;
    let (connected, failures) = (fleet.connected.clone(), fleet.failures);
    let logs = fleet.close().await;

    journal.print_failures();
    let tally = Tally::of(&population, &logs, &journal.mutations, &connected)?;
    let window = tally.last_arrival.map_or(settings.drive, |last| {
        last.saturating_duration_since(drive_started)
    });
    Ok(Measured {
        tickets: population.tickets.len(),
        rate,
        deliveries_per_sec: tally.deliveries as f64 / window.as_secs_f64().max(0.001),
        latency: tally.latency,
        deliveries: tally.deliveries,
        mutations: journal.mutations.len(),
        early: tally.early,
        missed: tally.missed,
        duplicated: tally.duplicated,
        unexpected: tally.unexpected,
        lagged: tally.lagged,
        rss_before_kib,
        rss_after_kib,
        rss_per_socket_bytes,
        connect_failures: failures,
        mutation_failures: journal.failures.len(),
        problems: tally.problems,
    })
}

/// The driver's client: an admin.
pub fn admin(server: &ServerProcess, http: &reqwest::Client) -> anyhow::Result<GraphqlClient> {
    Ok(GraphqlClient::new(
        http.clone(),
        server.graphql_url(),
        server.token("bench-driver", vec![Role::Admin], vec![])?,
    ))
}

/// Creates every ticket as its requester (a few at a time) and returns the
/// cursor of the last creation: subscribing after it replays nothing and
/// misses nothing, so no subscription can lose an event to a late start.
pub async fn create_tickets(
    server: &ServerProcess,
    http: &reqwest::Client,
    tickets: &mut [TicketSpec],
) -> anyhow::Result<String> {
    use futures::{stream, StreamExt, TryStreamExt};
    const CREATE: &str = "mutation($r: String!, $q: String) { r: createSupportTicket(input: {request: $r, queue: $q, priority: MEDIUM}) { success errorCode error ticket { id } event { position } } }";
    let created: Vec<(String, store::Position)> = stream::iter(tickets.iter().enumerate())
        .map(|(n, t)| {
            let client = GraphqlClient::new(
                http.clone(),
                server.graphql_url(),
                server.token(&t.creator, vec![Role::Requester], vec![]).unwrap_or_default(),
            );
            let queue = t.queue;
            async move {
                let r = client
                    .mutate(CREATE, serde_json::json!({ "r": format!("Ticket {n}: laptop will not boot"), "q": queue }))
                    .await?;
                let id = r["ticket"]["id"].as_str().context("ticket id")?.to_string();
                let position = r["event"]["position"]
                    .as_str()
                    .context("event position")?
                    .parse::<store::Position>()
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                anyhow::Ok((id, position))
            }
        })
        .buffered(8)
        .try_collect()
        .await?;
    let mut last = store::Position::START;
    for (ticket, (id, position)) in tickets.iter_mut().zip(created) {
        ticket.id = id;
        last = last.max(position);
    }
    Ok(last.to_cursor())
}

/// Every client socket, each on a task of its own.
pub struct Fleet {
    tasks: Vec<Option<JoinHandle<anyhow::Result<ClientLog>>>>,
    /// Which clients completed the handshake and subscribed.
    pub connected: Vec<bool>,
    pub failures: usize,
    pub delivered: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl Fleet {
    /// Opens a socket per client, [`OPEN_BATCH`] every [`OPEN_EVERY`], each
    /// subscribed after `cursor`; returns once every one is subscribed or
    /// has failed.
    pub async fn open(
        server: &ServerProcess,
        clients: &[ClientSpec],
        cursor: &str,
    ) -> anyhow::Result<Fleet> {
        let started = Instant::now();
        let delivered = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let ready = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let ok_flags: Arc<Vec<std::sync::atomic::AtomicBool>> =
            Arc::new((0..clients.len()).map(|_| Default::default()).collect());
        let mut tasks = Vec::with_capacity(clients.len());
        for (batch_no, batch) in clients.chunks(OPEN_BATCH).enumerate() {
            if batch_no > 0 {
                tokio::time::sleep(OPEN_EVERY).await;
            }
            for (j, spec) in batch.iter().enumerate() {
                let i = batch_no * OPEN_BATCH + j;
                let token = server.token(&spec.user, spec.roles(), spec.teams())?;
                let (query, variables) = spec.subscription(cursor);
                let address = server.address.clone();
                let (delivered, stop, ready, failed, ok_flags) = (
                    delivered.clone(),
                    stop.clone(),
                    ready.clone(),
                    failed.clone(),
                    ok_flags.clone(),
                );
                tasks.push(Some(tokio::spawn(async move {
                    let opened = async {
                        let mut socket = ws_client::connect(&address, &token).await?;
                        let subscription = Subscription::new(query, variables);
                        subscription.start(&mut socket).await?;
                        anyhow::Ok((socket, subscription))
                    }
                    .await;
                    let (mut socket, mut subscription) = match opened {
                        Ok(opened) => opened,
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            return Err(e);
                        }
                    };
                    ok_flags[i].store(true, Ordering::Relaxed);
                    ready.fetch_add(1, Ordering::Relaxed);
                    let mut log = ClientLog::default();
                    ws_client::listen(&mut socket, &mut subscription, &mut log, &stop, &delivered)
                        .await;
                    let _ = socket.close(None).await;
                    Ok(log)
                })));
            }
        }
        while ready.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < clients.len() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let failures = failed.load(Ordering::Relaxed);
        println!(
            "  opened {} sockets in {:.1} s ({failures} failed)",
            clients.len() - failures,
            started.elapsed().as_secs_f64()
        );
        let connected = ok_flags.iter().map(|f| f.load(Ordering::Relaxed)).collect();
        Ok(Fleet {
            tasks,
            connected,
            failures,
            delivered,
            stop,
        })
    }

    /// Deliveries the connected clients must receive for `journal`.
    pub fn expected_total(&self, population: &Population, journal: &Journal) -> u64 {
        let mut total = 0;
        for m in &journal.mutations {
            for (c, spec) in population.clients.iter().enumerate() {
                if self.connected[c] && spec.expects(m, &population.tickets) {
                    total += 1;
                }
            }
        }
        total
    }

    /// Waits until `expected` deliveries have arrived, or [`DRAIN`].
    pub async fn drain(&self, expected: u64) {
        let until = Instant::now() + DRAIN;
        while self.delivered.load(Ordering::Relaxed) < expected && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops every client and collects its log (failed clients log nothing).
    pub async fn close(mut self) -> Vec<ClientLog> {
        self.stop.cancel();
        let mut logs = Vec::with_capacity(self.tasks.len());
        for task in &mut self.tasks {
            let log = match task.take() {
                Some(task) => match task.await {
                    Ok(Ok(log)) => log,
                    Ok(Err(e)) => ClientLog {
                        problems: vec![format!("{e:#}")],
                        ..ClientLog::default()
                    },
                    Err(e) => ClientLog {
                        problems: vec![format!("client task: {e}")],
                        ..ClientLog::default()
                    },
                },
                None => ClientLog::default(),
            };
            logs.push(log);
        }
        logs
    }
}

/// Every delivery checked against what each client had to receive.
pub struct Tally {
    pub latency: Histogram<u64>,
    pub deliveries: u64,
    /// Deliveries that arrived before the driver had the mutation's response.
    pub early: u64,
    pub missed: u64,
    pub duplicated: u64,
    pub unexpected: u64,
    /// `LAGGED` completions the clients resubscribed after; their
    /// deliveries are in the counts above like any other (a duplicate across
    /// the resubscription is a duplicate).
    pub lagged: u64,
    pub problems: usize,
    pub last_arrival: Option<Instant>,
}

impl Tally {
    pub fn of(
        population: &Population,
        logs: &[ClientLog],
        mutations: &[Mutation],
        connected: &[bool],
    ) -> anyhow::Result<Tally> {
        let by_id: HashMap<Uuid, &Mutation> = mutations.iter().map(|m| (m.event_id, m)).collect();
        let mut tally = Tally {
            latency: new_histogram()?,
            deliveries: 0,
            early: 0,
            missed: 0,
            duplicated: 0,
            unexpected: 0,
            lagged: 0,
            problems: 0,
            last_arrival: None,
        };
        for (c, (spec, log)) in population.clients.iter().zip(logs).enumerate() {
            if !connected[c] {
                continue;
            }
            tally.problems += log.problems.len();
            tally.lagged += log.lags;
            let mut seen: HashMap<Uuid, u32> = HashMap::with_capacity(log.received.len());
            for (id, arrived) in &log.received {
                *seen.entry(*id).or_default() += 1;
                tally.deliveries += 1;
                tally.last_arrival = tally.last_arrival.max(Some(*arrived));
                match by_id.get(id) {
                    Some(m) if spec.expects(m, &population.tickets) => {
                        if *arrived < m.responded {
                            tally.early += 1;
                        }
                        record(
                            &mut tally.latency,
                            arrived.saturating_duration_since(m.responded),
                        )?;
                    }
                    _ => tally.unexpected += 1,
                }
            }
            for m in mutations {
                if spec.expects(m, &population.tickets) {
                    match seen.get(&m.event_id) {
                        None => tally.missed += 1,
                        Some(&n) if n > 1 => tally.duplicated += u64::from(n - 1),
                        Some(_) => {}
                    }
                }
            }
        }
        if tally.problems > 0 {
            let sample: Vec<&String> = logs.iter().flat_map(|l| &l.problems).take(3).collect();
            println!("  socket problems, e.g.: {sample:?}");
        }
        Ok(tally)
    }
}
