//! Issue 6, scenario 4: 1,000 subscribed clients drop their sockets together
//! while mutations continue, then all reconnect at once, each resuming with
//! `after` = the last position it saw. Measures the time until every client
//! has caught up to the head of the log as it stood when they reconnected,
//! and checks the whole run for gaps and duplicates.

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
use crate::driver;
use crate::population::Population;
use crate::report::{ms, thousands, Row};
use crate::scenarios::commands::{new_histogram, record};
use crate::scenarios::fanout::{admin, create_tickets, Tally};
use crate::server::{tickets_bin, ServerProcess};
use crate::ws_client::{self, ClientLog, Subscription};
use crate::Settings;

/// Deliveries may trail the last mutation this long before missing ones are gaps.
const DRAIN: Duration = Duration::from_secs(15);

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
    let met = (!settings.tiny()).then_some(
        m.tally.missed == 0
            && m.tally.duplicated == 0
            && m.tally.unexpected == 0
            && m.failures == 0,
    );
    Ok(vec![Row {
        scenario: "resume".into(),
        backend: backend.to_string(),
        settings: format!(
            "{sockets} sockets (same mix as fanout), {:.1} mutations/s throughout; {} s connected, {} s all disconnected, all reconnect at once with `after`, then {} s more",
            m.rate,
            m.phase.as_secs(),
            m.phase.as_secs(),
            m.phase.as_secs()
        ),
        result: format!(
            "all caught up {} after reconnecting (per client p50 {}, p99 {}); {} events missed while away, replayed; gaps {}, duplicated {}, unexpected {}; lagged {} (resumed); {} deliveries of {} mutations; {} connect failures, {} mutation failures",
            ms(m.catch_up.max()),
            ms(m.catch_up.value_at_quantile(0.5)),
            ms(m.catch_up.value_at_quantile(0.99)),
            thousands(m.backlog as f64),
            m.tally.missed,
            m.tally.duplicated,
            m.tally.unexpected,
            m.tally.lagged,
            thousands(m.tally.deliveries as f64),
            thousands(m.mutations as f64),
            m.failures,
            m.mutation_failures
        ),
        target: "zero gaps and duplicates; time to catch up reported".into(),
        met,
    }])
}

struct Measured {
    rate: f64,
    phase: Duration,
    catch_up: hdrhistogram::Histogram<u64>,
    backlog: u64,
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

    let delivered = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let drop_all = CancellationToken::new();
    let reconnect = Arc::new(Notify::new());
    let end = CancellationToken::new();
    let mut tasks = Vec::with_capacity(sockets);
    for spec in &population.clients {
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
    journal.print_failures();
    let connected = vec![true; sockets];
    let mut expected = 0;
    for m in &journal.mutations {
        expected += population
            .clients
            .iter()
            .filter(|c| c.expects(m, &population.tickets))
            .count() as u64;
    }
    let until = Instant::now() + DRAIN;
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    end.cancel();

    let mut logs = Vec::with_capacity(sockets);
    let mut catch_up = new_histogram()?;
    let mut backlog = 0u64;
    let by_id: HashMap<Uuid, &driver::Mutation> =
        journal.mutations.iter().map(|m| (m.event_id, m)).collect();
    for task in tasks {
        let resumed = task.await.context("client task")??;
        // Caught up: the resumed socket is subscribed and every event it had
        // to receive up to `head` has arrived.
        let mut caught_up = resumed.resubscribed;
        for (i, (id, arrived)) in resumed.log.received.iter().enumerate() {
            if let Some(m) = by_id.get(id) {
                if m.position <= head && i >= resumed.before_drop {
                    backlog += 1;
                    caught_up = caught_up.max(*arrived);
                }
            }
        }
        record(
            &mut catch_up,
            caught_up.saturating_duration_since(reconnected_at),
        )?;
        logs.push(resumed.log);
    }
    let tally = Tally::of(&population, &logs, &journal.mutations, &connected)?;
    Ok(Measured {
        rate,
        phase,
        catch_up,
        backlog,
        tally,
        mutations: journal.mutations.len(),
        failures,
        mutation_failures: journal.failures.len(),
    })
}
