//! `tickets`: parse the command line, set up logging, run; a failure is one
//! `error: ...` line on standard error and exit status 1.

use std::process::ExitCode;

/// jemalloc for every allocation of the process, the bundled SQLite's
/// included (see the workspace's Cargo.toml).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = api::cli::Cli::parse_args();
    let level = if cli.serves() { "info" } else { "warn" };
    api::telemetry::init(cli.log_format, level);
    match api::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}`: the whole chain of causes on one line.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
