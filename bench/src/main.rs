//! # Layout
//! `tickets-bench`: one command produces every figure of issue 6.
//!
//! `cargo run --release -p bench -- <scenario|all> [--size tiny|full]
//! [--backend sqlite|postgres|both] [--no-record]`
//!
//! - `scenarios`: one module per scenario (`commands`, `rebuild`, `fanout`,
//!   `resume`), each returning the [`report::Row`]s it measured.
//! - `backend`: a fresh SQLite file or PostgreSQL schema per run.
//! - `generator`: a realistic event log, appended straight to the store.
//! - `server`: the real `tickets serve` as a child process (fan-out, resume).
//! - `ws_client`: a lean graphql-transport-ws client, one per socket.
//! - `population`: who subscribes to what, so who must receive which event.
//! - `driver`: mutations at a fixed rate, each response time kept.
//! - `report`: the printed table and the rows appended to `BENCHMARKS.md`.
//! - `machine`: cores, memory, CPU model and clock of the machine measured on,
//!   and the time of a reference workload, to tell hosts of one name apart.
//!
//! This process is the load generator, apart from the server it measures: it
//! raises its own open-file limit to the hard limit at start, opens sockets
//! gradually, and every server scenario runs under a deadline.
//!
//! `--size tiny` runs every scenario small, in seconds: a smoke run for CI
//! (with `--no-record`, so BENCHMARKS.md is left alone).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use clap::{Parser, ValueEnum};

mod backend;
mod driver;
mod generator;
mod machine;
mod population;
mod report;
mod scenarios;
mod server;
mod ws_client;

use backend::BackendChoice;
use report::Report;

/// jemalloc for every allocation of the process, the bundled SQLite's
/// included, as in the `tickets` binary whose library code it measures (see
/// the workspace's Cargo.toml).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Single-event commands, 1 and 16 writers: commands/s, p50/p99.
    Commands,
    /// Full rebuild of every projection from a large log: events/s.
    Rebuild,
    /// WebSocket fan-out from the real server: latency, deliveries/s, memory.
    Fanout,
    /// 1,000 clients drop and resume with `after`: catch-up time, no gaps.
    Resume,
    /// `bulkUpdateSupportTickets` on 500 tickets over HTTP: time per call.
    Bulk,
    /// Every scenario, one after the other.
    All,
}

/// How big a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Size {
    /// Seconds per scenario: proves each one runs (CI's smoke run).
    Tiny,
    /// The sizes of issue 6.
    Full,
}

#[derive(Debug, Parser)]
#[command(name = "tickets-bench", about = "The figures of issue 6, measured")]
struct Cli {
    scenario: Scenario,
    #[arg(long, value_enum, default_value = "full")]
    size: Size,
    /// Event-store backend(s) to measure.
    #[arg(long, value_enum, default_value = "both")]
    backend: BackendChoice,
    /// Print the rows only; leave BENCHMARKS.md as it is.
    #[arg(long)]
    no_record: bool,
    /// PostgreSQL server; every run makes (and drops) a fresh schema in it.
    #[arg(
        long,
        env = "TICKETS_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    /// Fan-out: socket counts to measure, e.g. `1000,5000,10000` (the default
    /// at full size; 20 at tiny size).
    #[arg(long, value_delimiter = ',')]
    sockets: Option<Vec<usize>>,
    /// Fan-out and resume: deliveries per second the driver's rate is sized
    /// for (default 10,000; tiny 100).
    #[arg(long)]
    deliveries_per_sec: Option<f64>,
    /// Fan-out: how long the driver sends mutations (default 20 s, tiny 3 s).
    #[arg(long)]
    drive_secs: Option<u64>,
    /// Each server scenario gives up after this long (default 600 s, tiny 120 s).
    #[arg(long)]
    deadline_secs: Option<u64>,
    /// The `tickets` binary to serve with; default: the one beside this
    /// binary, built first. Fan-out and resume run on SQLite unless
    /// `--backend postgres` is given.
    #[arg(long)]
    tickets_bin: Option<PathBuf>,
    /// Rebuild: events in the generated log (default 1,000,000; tiny 2,000),
    /// one ticket per 20 events.
    #[arg(long)]
    events: Option<usize>,
    /// Rebuild: one projection after the other, each reading the whole log,
    /// instead of all of them from one reading.
    #[arg(long)]
    one_at_a_time: bool,
}

/// What every scenario is told.
pub struct Settings {
    pub size: Size,
    pub postgres_url: String,
    pub sockets: Option<Vec<usize>>,
    pub deliveries_per_sec: f64,
    pub drive: Duration,
    pub deadline: Duration,
    pub tickets_bin: Option<PathBuf>,
    /// Rebuild: events in the generated log, if not the size's default.
    pub rebuild_events: Option<usize>,
    /// Rebuild: one projection after the other.
    pub rebuild_one_at_a_time: bool,
}

impl Settings {
    pub fn tiny(&self) -> bool {
        self.size == Size::Tiny
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Silent unless RUST_LOG asks (say `RUST_LOG=sqlx=warn` for the
    // statements slower than a second): the rows are the output.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

/// Up to 10,000 sockets (and the server, which inherits the limit) need more
/// descriptors than the usual soft limit of 1,024.
fn raise_open_file_limit() -> anyhow::Result<u64> {
    let (_, hard) = rlimit::Resource::NOFILE
        .get()
        .context("reading RLIMIT_NOFILE")?;
    rlimit::Resource::NOFILE
        .set(hard, hard)
        .context("raising RLIMIT_NOFILE")?;
    Ok(hard)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let report = Report::new(!cli.no_record);
    report.announce();
    let open_files = raise_open_file_limit()?;
    println!("open-file limit: {open_files}");
    let tiny = cli.size == Size::Tiny;
    let settings = Settings {
        size: cli.size,
        postgres_url: cli.postgres_url,
        sockets: cli.sockets,
        deliveries_per_sec: cli
            .deliveries_per_sec
            .unwrap_or(if tiny { 100.0 } else { 10_000.0 }),
        drive: Duration::from_secs(cli.drive_secs.unwrap_or(if tiny { 3 } else { 20 })),
        deadline: Duration::from_secs(cli.deadline_secs.unwrap_or(if tiny { 120 } else { 600 })),
        tickets_bin: cli.tickets_bin,
        rebuild_events: cli.events,
        rebuild_one_at_a_time: cli.one_at_a_time,
    };
    let backends = cli.backend.backends();
    let wanted = |s: Scenario| cli.scenario == s || cli.scenario == Scenario::All;
    let started = Instant::now();
    if wanted(Scenario::Commands) {
        for &backend in &backends {
            for row in scenarios::commands::run(&settings, backend).await? {
                report.emit(&row)?;
            }
        }
    }
    if wanted(Scenario::Rebuild) {
        for &backend in &backends {
            for row in scenarios::rebuild::run(&settings, backend).await? {
                report.emit(&row)?;
            }
        }
    }
    // The server scenarios measure the WebSocket side: SQLite unless told.
    let server_backend = if cli.backend == BackendChoice::Postgres {
        backend::Backend::Postgres
    } else {
        backend::Backend::Sqlite
    };
    if wanted(Scenario::Fanout) {
        for row in scenarios::fanout::run(&settings, server_backend).await? {
            report.emit(&row)?;
        }
    }
    if wanted(Scenario::Resume) {
        for row in scenarios::resume::run(&settings, server_backend).await? {
            report.emit(&row)?;
        }
    }
    if wanted(Scenario::Bulk) {
        for row in scenarios::bulk::run(&settings, server_backend).await? {
            report.emit(&row)?;
        }
    }
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
