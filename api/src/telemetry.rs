//! Logging: `tracing` to standard error, plain text or JSON lines
//! (`TICKETS_LOG_FORMAT=json`), filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// `default_level` applies when `RUST_LOG` is not set.
pub fn init(json: bool, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
