//! Issue 6, scenario 1: single-event commands through the full command path
//! (`CommandService::execute`: load the stream, decide, append with the loaded
//! version; the service keeps each ticket's state, so after the first command
//! on a ticket it decides on that) with 1 and 16 concurrent writers, each on tickets of
//! its own, on a durable store. Reports commands/s over the whole run and
//! p50/p99 per-command latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use api::command_service::{CommandRequest, CommandService};
use chrono::Utc;
use domain::{Actor, Command, Role, TicketPriority};
use hdrhistogram::Histogram;
use tokio::sync::Barrier;
use uuid::Uuid;

use crate::backend::{Backend, Fresh};
use crate::report::{ms, thousands, Row};
use crate::Settings;

/// One run's shape.
struct Shape {
    writers: usize,
    commands_per_writer: usize,
    tickets_per_writer: usize,
}

pub async fn run(settings: &Settings, backend: Backend) -> anyhow::Result<Vec<Row>> {
    let shapes = if settings.tiny() {
        vec![
            Shape {
                writers: 1,
                commands_per_writer: 100,
                tickets_per_writer: 4,
            },
            Shape {
                writers: 16,
                commands_per_writer: 8,
                tickets_per_writer: 2,
            },
        ]
    } else {
        vec![
            Shape {
                writers: 1,
                commands_per_writer: 3_000,
                tickets_per_writer: 32,
            },
            Shape {
                writers: 16,
                commands_per_writer: 1_500,
                tickets_per_writer: 32,
            },
        ]
    };
    let mut rows = Vec::new();
    for shape in shapes {
        let fresh = Fresh::open(backend, &settings.postgres_url).await?;
        let outcome = measure(&fresh, &shape).await;
        fresh.close().await?;
        let m = outcome?;
        let target = match (backend, shape.writers) {
            (Backend::Sqlite, 16) => Some(10_000.0),
            (Backend::Postgres, 16) => Some(5_000.0),
            _ => None,
        };
        let total = shape.writers * shape.commands_per_writer;
        rows.push(Row {
            scenario: "commands".into(),
            backend: backend.to_string(),
            settings: format!(
                "{} writer(s), {} commands, {} tickets each",
                shape.writers,
                thousands(total as f64),
                shape.tickets_per_writer
            ),
            result: format!(
                "{} cmd/s, p50 {}, p99 {}, max {}",
                thousands(m.per_second),
                ms(m.latency.value_at_quantile(0.5)),
                ms(m.latency.value_at_quantile(0.99)),
                ms(m.latency.max())
            ),
            target: target.map_or_else(
                || "none (reference)".into(),
                |t| format!(">= {} cmd/s", thousands(t)),
            ),
            met: target
                .filter(|_| !settings.tiny())
                .map(|t| m.per_second >= t),
        });
    }
    Ok(rows)
}

struct Measured {
    per_second: f64,
    latency: Histogram<u64>,
}

async fn measure(fresh: &Fresh, shape: &Shape) -> anyhow::Result<Measured> {
    let service = CommandService::new(fresh.log.clone());
    // Setup, not timed: every writer's tickets, created through the same path.
    let admin = Actor::new("bench-admin", vec![Role::Admin], vec![]);
    let mut tickets = Vec::with_capacity(shape.writers);
    for w in 0..shape.writers {
        let mut mine = Vec::with_capacity(shape.tickets_per_writer);
        for t in 0..shape.tickets_per_writer {
            let created = service
                .create(
                    admin.clone(),
                    format!("Writer {w} ticket {t}"),
                    Some("Created by the benchmark".into()),
                    TicketPriority::Medium,
                    "support".into(),
                    vec![],
                    None,
                    Utc::now(),
                )
                .await
                .context("creating a ticket for the benchmark")?;
            mine.push(created.ticket.id);
        }
        tickets.push(mine);
    }
    let head_before = fresh.log.head().await?;

    let barrier = Arc::new(Barrier::new(shape.writers + 1));
    let mut tasks = Vec::with_capacity(shape.writers);
    for (w, mine) in tickets.into_iter().enumerate() {
        let service = service.clone();
        let barrier = barrier.clone();
        let commands = shape.commands_per_writer;
        tasks.push(tokio::spawn(async move {
            writer(service, w, mine, commands, barrier).await
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let mut latency = new_histogram()?;
    for task in tasks {
        latency.add(task.await.context("writer task")??)?;
    }
    let took = started.elapsed();

    // Honesty check: every command appended exactly one event, durably.
    let head_after = fresh.log.head().await?;
    let total = (shape.writers * shape.commands_per_writer) as u64;
    if head_after.commit - head_before.commit != total {
        bail!(
            "expected {total} new events in the log, found {}",
            head_after.commit - head_before.commit
        );
    }
    Ok(Measured {
        per_second: total as f64 / took.as_secs_f64(),
        latency,
    })
}

/// One writer: alternates a priority change (always to a different priority)
/// and a public comment over its own tickets, one command at a time.
async fn writer(
    service: CommandService,
    w: usize,
    tickets: Vec<Uuid>,
    commands: usize,
    barrier: Arc<Barrier>,
) -> anyhow::Result<Histogram<u64>> {
    let actor = Actor::new(
        format!("bench-agent-{w}"),
        vec![Role::Agent],
        vec!["support".into()],
    );
    let mut latency = new_histogram()?;
    barrier.wait().await;
    for i in 0..commands {
        let ticket = tickets[i % tickets.len()];
        let round = i / tickets.len();
        let command = match round % 4 {
            // Medium -> High -> Low -> High...: each one a real change.
            0 => Command::ChangePriority {
                priority: TicketPriority::High,
            },
            2 => Command::ChangePriority {
                priority: TicketPriority::Low,
            },
            _ => Command::Comment {
                comment_id: Uuid::new_v4(),
                body: format!("Update {round} from writer {w}: still investigating"),
                internal: false,
            },
        };
        let started = Instant::now();
        let outcome = service
            .execute(CommandRequest::new(ticket, command, actor.clone()))
            .await
            .with_context(|| format!("writer {w}, command {i}"))?;
        record(&mut latency, started.elapsed())?;
        if outcome.events.len() != 1 {
            bail!(
                "writer {w}, command {i} appended {} events, not 1",
                outcome.events.len()
            );
        }
    }
    Ok(latency)
}

/// Microseconds from 1 µs to 10 minutes, 3 significant digits.
pub fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 600_000_000, 3).context("histogram bounds")
}

/// Records `took` in microseconds (saturating at the histogram's top).
pub fn record(histogram: &mut Histogram<u64>, took: Duration) -> anyhow::Result<()> {
    let micros = (took.as_micros() as u64).clamp(1, histogram.high());
    histogram.record(micros).context("recording a latency")
}
