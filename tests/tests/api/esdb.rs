//! The whole server configured with its event log on EventStoreDB. No server
//! can be installed here, so nothing listens at the address: what this proves
//! is that the configuration builds and serves, with the `eventstore` client,
//! sqlx and every other dependency in one process, without the rustls
//! crypto-provider panic that `eventstore` 4.0.0 raises when a provider was
//! installed before it.

use tests::Server;

/// `tickets serve` with `TICKETS_EVENT_STORE_URL=esdb://...` starts, answers
/// `/healthz`, logs no panic while its projections keep retrying the
/// unreachable log, and stops on SIGTERM.
#[tokio::test]
async fn a_server_with_an_esdb_event_log_starts_without_a_panic() {
    let server = Server::start_with(&[("TICKETS_EVENT_STORE_URL", "esdb://127.0.0.1:1?tls=false")]);
    let health = reqwest::get(server.url("/healthz"))
        .await
        .expect("healthz answers");
    assert!(health.status().is_success(), "{}", health.status());
    // Give the projection runners time to try the log (and fail) a few times.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let log = server.log();
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
    let _ = server.terminate();
}
