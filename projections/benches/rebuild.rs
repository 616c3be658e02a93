//! How fast the tickets projection (tickets, child tables, activity) rebuilds
//! from scratch.
//!
//! `cargo bench -p projections --bench rebuild -- [EVENTS]` builds a log of
//! EVENTS events (default 200,000), 20 per ticket, in a fresh SQLite file, and
//! in a fresh PostgreSQL schema too when `TICKETS_BENCH_POSTGRES_URL` is set;
//! then times one full rebuild of each and prints events per second.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use domain::{Actor, Command, Role, Ticket, TicketPriority, TicketStatus};
use projections::{ReadDb, Runner, TicketsProjection};
use store::{EventStore, ExpectedVersion, NewEvent, PostgresEventStore, SqliteEventStore};
use uuid::Uuid;

const EVENTS_PER_TICKET: usize = 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let events: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let tickets = events.div_ceil(EVENTS_PER_TICKET);

    let dir = std::env::temp_dir().join(format!("rebuild-bench-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let sqlite = SqliteEventStore::connect(&url).await?;
    let db = ReadDb::sqlite_store(&sqlite);
    bench("SQLite", Arc::new(sqlite.clone()), db, tickets).await?;
    sqlite.close().await;
    std::fs::remove_dir_all(&dir)?;

    if let Ok(url) = std::env::var("TICKETS_BENCH_POSTGRES_URL") {
        let schema = format!("bench_{}", Uuid::new_v4().simple());
        let pg = PostgresEventStore::connect_with_schema(&url, &schema).await?;
        let db = ReadDb::postgres_store(&pg);
        let outcome = bench("PostgreSQL", Arc::new(pg.clone()), db, tickets).await;
        pg.close().await;
        let admin = sqlx::PgPool::connect(&url).await?;
        sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(&admin)
            .await?;
        outcome?;
    }
    Ok(())
}

async fn bench(
    label: &str,
    store: Arc<dyn EventStore>,
    db: ReadDb,
    tickets: usize,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut appended = 0;
    for n in 0..tickets {
        appended += append_ticket(&*store, n).await?;
    }
    println!(
        "{label}: appended {appended} events over {tickets} tickets in {:.1?}",
        started.elapsed()
    );
    let started = Instant::now();
    Runner::new(store, db)
        .catch_up(Arc::new(TicketsProjection))
        .await?;
    let took = started.elapsed();
    println!(
        "{label}: rebuilt tickets + activity from {appended} events in {took:.1?}: {:.0} events/s",
        appended as f64 / took.as_secs_f64()
    );
    Ok(())
}

/// One ticket's life in one append: created, then worked on.
async fn append_ticket(store: &dyn EventStore, n: usize) -> anyhow::Result<usize> {
    let id = Uuid::new_v4();
    let admin = Actor::new("admin-1", vec![Role::Admin], vec![]);
    let agent = Actor::new("agent-1", vec![Role::Agent], vec!["network".into()]);
    let mut at: DateTime<Utc> =
        DateTime::from_timestamp(1_700_000_000 + n as i64 * 60, 0).unwrap_or_default();
    let mut state: Option<Ticket> = None;
    let mut events = vec![];
    for step in 0..EVENTS_PER_TICKET {
        let command = match step {
            0 => Command::Create {
                ticket_id: id,
                reference: format!("TCK-{n:07}"),
                request: format!("Request {n}"),
                description: Some("The VPN drops every hour".into()),
                priority: TicketPriority::Medium,
                queue: "network".into(),
                tags: vec!["vpn".into()],
            },
            1 => Command::Assign {
                assignee_id: "agent-1".into(),
                assignee_roles: Some(vec![Role::Agent]),
            },
            s if s % 4 == 0 => Command::ChangeStatus {
                status: [TicketStatus::InProgress, TicketStatus::OnHold][s / 4 % 2],
                comment: None,
            },
            s if s % 4 == 1 => Command::AddTag {
                tag: format!("t{s}"),
            },
            s if s % 4 == 2 => Command::Watch {
                user_id: format!("user-{s}"),
            },
            s => Command::Comment {
                comment_id: Uuid::new_v4(),
                body: format!("Comment {s}"),
                internal: false,
            },
        };
        let actor = if step == 0 { &admin } else { &agent };
        at += Duration::seconds(30);
        let decided = domain::decide(state.as_ref(), &command, actor, at)
            .map_err(|e| anyhow::anyhow!("step {step}: {e}"))?;
        state = decided.iter().fold(state, domain::evolve);
        events.extend(decided.iter().map(|e| {
            let encoded = domain::encode(e);
            NewEvent {
                id: Uuid::new_v4(),
                event_type: encoded.event_type.into(),
                schema_version: encoded.schema_version,
                data: encoded.data,
                metadata: serde_json::json!({}),
            }
        }));
    }
    let count = events.len();
    store
        .append(&domain::stream_name(id), ExpectedVersion::NoStream, events)
        .await?;
    Ok(count)
}
