//! Issue 6, scenario 4: 1,000 subscribed clients drop their sockets together
//! while mutations continue, then all reconnect at once, each resuming with
//! `after` = the last position it saw. Measures how long each client takes to
//! catch up to the head of the log as it stood when they reconnected, and
//! checks every client's deliveries once it has reached the final head.
//!
//! A missing delivery is only a gap when the client provably went past it:
//! the server delivers a subscription in log order, so an expected event
//! below the last position a client received will never come (a *hole*). An
//! expected event above it may still be on its way: the run waits (bounded by
//! [`catch_up_limit`]) until every client has received as many deliveries as
//! it expects, and whatever is still missing then is reported apart as *in
//! flight at the deadline*, not as a gap. (The wait counts deliveries, so a
//! duplicate can end it early; duplicates are reported on their own.)
//!
//! [`verdict`] judges each client's log: holes, in flight, duplicates,
//! unexpected deliveries, and when it caught up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use store::Position;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::backend::Backend;
use crate::driver::{self, Mutation};
use crate::population::Population;
use crate::report::{ms, thousands, Row};
use crate::scenarios::commands::new_histogram;
use crate::scenarios::fanout::{admin, create_tickets, Tally};
use crate::server::{tickets_bin, ServerProcess};
use crate::ws_client::{self, ClientLog, Subscription};
use crate::Settings;

mod verdict;

use verdict::{judge, Verdict};

/// How long after the driver stops the clients may take to reach the final
/// head before what is still missing counts as in flight at the deadline:
/// generous, since a machine loaded by other work catches up far more
/// slowly, and well inside the scenario's own deadline (600 s, tiny 120 s),
/// so a slow run still reports.
fn catch_up_limit(settings: &Settings) -> Duration {
    Duration::from_secs(if settings.tiny() { 60 } else { 300 })
}
/// How often the wait for the final head says how far the clients are.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

pub async fn run(settings: &Settings, backend: Backend) -> anyhow::Result<Vec<Row>> {
    let sockets = if settings.tiny() { 20 } else { 1_000 };
    let bin = tickets_bin(settings.tickets_bin.as_deref())?;
    let server = ServerProcess::start(&bin, backend, &settings.postgres_url).await?;
    println!(
        "  resume: {sockets} sockets, server pid {} on {}",
        server.pid, server.address
    );
    let outcome = tokio::time::timeout(settings.deadline, measure(settings, &server, sockets))
        .await
        .unwrap_or_else(|_| bail!("resume passed its deadline of {:?}", settings.deadline));
    server.stop().await?;
    let m = outcome?;
    let v = &m.verdict;
    let met = (!settings.tiny()).then_some(
        v.holes == 0
            && v.in_flight == 0
            && v.duplicated == 0
            && v.unexpected == 0
            && m.failures == 0,
    );
    let all_caught_up = match v.caught_up.len() {
        n if n == sockets => ms(v.caught_up.iter().max().copied().unwrap_or(0)),
        n => format!("never ({} of {sockets} clients did)", n),
    };
    let at_final_head = match v.at_final_head {
        Some(t) => format!("{} after the last mutation's response", ms(t)),
        None => format!("not within {} s", catch_up_limit(settings).as_secs()),
    };
    Ok(vec![Row {
        scenario: "resume".into(),
        backend: backend.to_string(),
        settings: format!(
            "{sockets} sockets (same mix as fanout), {:.1} mutations/s throughout; {} s connected, {} s all disconnected, all reconnect at once with `after`, then {} s more; then up to {} s for every client to reach the final head",
            m.rate,
            m.phase.as_secs(),
            m.phase.as_secs(),
            m.phase.as_secs(),
            catch_up_limit(settings).as_secs()
        ),
        result: format!(
            "all caught up to the reconnect head {all_caught_up} after reconnecting (per client p50 {}, p99 {}, max {}); all at the final head {at_final_head}; {} events up to the reconnect head delivered after reconnecting; holes {}, in flight at the deadline {}, duplicated {}, unexpected {}; lagged {} (resumed); {} deliveries of {} mutations; {} connect failures, {} mutation failures, {} socket problems",
            ms(quantile(&v.caught_up, 0.5)),
            ms(quantile(&v.caught_up, 0.99)),
            ms(quantile(&v.caught_up, 1.0)),
            thousands(v.backlog as f64),
            v.holes,
            v.in_flight,
            v.duplicated,
            v.unexpected,
            m.tally.lagged,
            thousands(m.tally.deliveries as f64),
            thousands(m.mutations as f64),
            m.failures,
            m.mutation_failures,
            m.tally.problems
        ),
        target: "zero holes and duplicates, nothing left in flight; time to catch up reported".into(),
        met,
    }])
}

/// `q` of the (microsecond) values, 0 for none.
fn quantile(values: &[u64], q: f64) -> u64 {
    let mut histogram = match new_histogram() {
        Ok(h) => h,
        Err(_) => return 0,
    };
    for &v in values {
        let _ = histogram.record(v.clamp(1, histogram.high()));
    }
    histogram.value_at_quantile(q)
}

struct Measured {
    rate: f64,
    phase: Duration,
    verdict: Verdict,
    tally: Tally,
    mutations: usize,
    failures: usize,
    mutation_failures: usize,
}

/// A client's two sessions: the one it drops and the one it resumes with.
struct Resumed {
    log: ClientLog,
    /// When the resumed socket was acknowledged and subscribed.
    resubscribed: Instant,
    /// Deliveries received before the drop.
    before_drop: usize,
}

async fn measure(
    settings: &Settings,
    server: &ServerProcess,
    sockets: usize,
) -> anyhow::Result<Measured> {
    let phase = if settings.tiny() {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    };
    let mut population = Population::plan(sockets);
    let http = reqwest::Client::new();
    let cursor = create_tickets(server, &http, &mut population.tickets).await?;

    // Deliveries per client, so the wait below knows who is still behind.
    let delivered: Vec<Arc<AtomicU64>> = (0..sockets).map(|_| Arc::default()).collect();
    let ready = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let drop_all = CancellationToken::new();
    let reconnect = Arc::new(Notify::new());
    let end = CancellationToken::new();
    let mut tasks = Vec::with_capacity(sockets);
    for (spec, delivered) in population.clients.iter().zip(&delivered) {
        let token = server.token(&spec.user, spec.roles(), spec.teams())?;
        let spec = spec.clone();
        let address = server.address.clone();
        let cursor = cursor.clone();
        let (delivered, ready, failed, drop_all, reconnect, end) = (
            delivered.clone(),
            ready.clone(),
            failed.clone(),
            drop_all.clone(),
            reconnect.clone(),
            end.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let session = |after: String| {
                let (query, variables) = spec.subscription(&after);
                let (address, token) = (address.clone(), token.clone());
                async move {
                    let mut socket = ws_client::connect(&address, &token).await?;
                    let subscription = Subscription::new(query, variables);
                    subscription.start(&mut socket).await?;
                    anyhow::Ok((socket, subscription))
                }
            };
            let first = session(cursor.clone()).await;
            let (mut socket, mut subscription) = match first {
                Ok(opened) => opened,
                Err(e) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
            };
            ready.fetch_add(1, Ordering::Relaxed);
            let mut log = ClientLog::default();
            // Registered before the drop, so the one notify_waiters reaches it.
            let woken = reconnect.notified();
            ws_client::listen(
                &mut socket,
                &mut subscription,
                &mut log,
                &drop_all,
                &delivered,
            )
            .await;
            drop(socket); // no close frame: the connection just goes away
            let before_drop = log.received.len();
            woken.await;
            let after = log.last_position.clone().unwrap_or(cursor);
            let (mut socket, mut subscription) = session(after).await.context("resuming")?;
            let resubscribed = Instant::now();
            ws_client::listen(&mut socket, &mut subscription, &mut log, &end, &delivered).await;
            let _ = socket.close(None).await;
            anyhow::Ok(Resumed {
                log,
                resubscribed,
                before_drop,
            })
        }));
    }
    while ready.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < sockets {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failures = failed.load(Ordering::Relaxed);
    if failures > 0 {
        bail!("{failures} of {sockets} sockets failed to connect");
    }

    let driving = driver::Running::start(
        admin(server, &http)?,
        &population,
        settings.deliveries_per_sec,
    );
    let rate = driving.rate;
    tokio::time::sleep(phase).await;
    drop_all.cancel();
    tokio::time::sleep(phase).await;
    // The head as the clients come back: every event up to it is committed.
    let head = driver::lock(&driving.journal)
        .mutations
        .iter()
        .map(|m| m.position)
        .max()
        .unwrap_or(Position::START);
    let reconnected_at = Instant::now();
    reconnect.notify_waiters();
    tokio::time::sleep(phase).await;
    let journal = driving.stop().await?;
    let stopped_at = Instant::now();
    journal.print_failures();

    // Wait for every client to have as many deliveries as it expects (the
    // final head), or the limit.
    let expected: Vec<u64> = population
        .clients
        .iter()
        .map(|c| {
            journal
                .mutations
                .iter()
                .filter(|m| c.expects(m, &population.tickets))
                .count() as u64
        })
        .collect();
    let behind = || {
        expected
            .iter()
            .zip(&delivered)
            .filter(|(e, d)| d.load(Ordering::Relaxed) < **e)
            .count()
    };
    let until = stopped_at + catch_up_limit(settings);
    let mut said = Instant::now();
    while behind() > 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if said.elapsed() >= PROGRESS_EVERY {
            said = Instant::now();
            let outstanding: u64 = expected
                .iter()
                .zip(&delivered)
                .map(|(e, d)| e.saturating_sub(d.load(Ordering::Relaxed)))
                .sum();
            println!(
                "  resume: {:.0} s after the driver stopped, {} of {sockets} clients behind the final head, {} deliveries outstanding",
                stopped_at.elapsed().as_secs_f64(),
                behind(),
                thousands(outstanding as f64)
            );
        }
    }
    end.cancel();

    let by_id: HashMap<Uuid, &Mutation> =
        journal.mutations.iter().map(|m| (m.event_id, m)).collect();
    let mut verdict = Verdict::default();
    let mut logs = Vec::with_capacity(sockets);
    for (spec, task) in population.clients.iter().zip(tasks) {
        let resumed = task.await.context("client task")??;
        let wanted: Vec<&Mutation> = journal
            .mutations
            .iter()
            .filter(|m| spec.expects(m, &population.tickets))
            .collect();
        let judged = judge(&wanted, &resumed, &by_id, head);
        verdict.add(&judged, reconnected_at, stopped_at);
        logs.push(resumed.log);
    }
    let connected = vec![true; sockets];
    let tally = Tally::of(&population, &logs, &journal.mutations, &connected)?;
    Ok(Measured {
        rate,
        phase,
        verdict,
        tally,
        mutations: journal.mutations.len(),
        failures,
        mutation_failures: journal.failures.len(),
    })
}
