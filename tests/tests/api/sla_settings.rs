//! SLA targets are configured at start-up (`TICKETS_SLA_TARGETS`,
//! `TICKETS_SLA_WARNING_PERCENT`); a mistake stops the server before it
//! serves, with a message naming it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tests::{tickets_bin, Server};

/// Runs `tickets serve` with `env`, expecting it to exit on its own within
/// 20 s; returns its standard error.
fn serve_refused(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tickets.db").display());
    let mut command = Command::new(tickets_bin());
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TICKETS_DATABASE_URL", url)
        .env_remove("TICKETS_PRODUCTION")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("start tickets serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server started with {env:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    assert!(!status.success(), "{status}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// An unknown priority, a malformed duration or a percentage over 100 stops
/// the server at start-up, naming what is wrong; valid targets start it.
#[tokio::test]
async fn bad_sla_settings_stop_the_server_at_start_up_with_the_reason() {
    let unknown = serve_refused(&[("TICKETS_SLA_TARGETS", "URGENT=1h/4h")]);
    assert!(
        unknown.contains("URGENT") && unknown.contains("CRITICAL"),
        "{unknown}"
    );
    let malformed = serve_refused(&[("TICKETS_SLA_TARGETS", "HIGH=4 hours/1d")]);
    assert!(malformed.contains("4 hours"), "{malformed}");
    let percent = serve_refused(&[("TICKETS_SLA_WARNING_PERCENT", "150")]);
    assert!(percent.contains("150"), "{percent}");

    let mut server = Server::start_with(&[
        ("TICKETS_SLA_TARGETS", "CRITICAL=30m/2h,LOW=2d/10d/4h"),
        ("TICKETS_SLA_WARNING_PERCENT", "10"),
    ]);
    assert!(server.is_running());
}
