//! `tickets`: parse the command line, set up logging, run.

use clap::Parser;

/// jemalloc for every allocation of the process, the bundled SQLite's
/// included (see the workspace's Cargo.toml).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = api::cli::Cli::parse();
    let level = if cli.serves() { "info" } else { "warn" };
    api::telemetry::init(cli.log_format.eq_ignore_ascii_case("json"), level);
    api::cli::run(cli).await
}
