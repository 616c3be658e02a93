//! Authentication (auth.md): every operation needs a valid token.

use serde_json::json;
use tests::Server;

use crate::helpers::{error_code, log_len, Client};

/// A missing, badly signed, malformed or expired token is answered with
/// `UNAUTHENTICATED` and appends nothing, for queries and mutations alike.
#[tokio::test]
async fn a_bad_token_is_unauthenticated_and_appends_nothing() {
    let server = Server::start();
    let root = Client::user(&server, "root", &["ADMIN"], &[]);
    let before = log_len(&root).await;
    let expiring = server.token_for("eve", &["ADMIN"], &[], "1s");
    let forged = {
        // Same claims, signed with another secret.
        let mut parts: Vec<String> = expiring.split('.').map(str::to_string).collect();
        parts[2] = "c2lnbmVkLXdpdGgtc29tZXRoaW5nLWVsc2U".into();
        parts.join(".")
    };
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let create = "mutation { createSupportTicket(input: {request: \"sneaky\"}) { success } }";
    for token in [
        None,
        Some("not-a-jwt".to_string()),
        Some(forged),
        Some(expiring),
    ] {
        let label = format!("{token:?}");
        let client = Client::new(&server, token);
        let body = client.post(create, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{label}: {body}");
        assert!(body["data"].is_null(), "{label}: {body}");
        let body = client
            .post("{ me { id } supportTickets { totalCount } }", json!({}))
            .await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{label}: {body}");
    }
    assert_eq!(log_len(&root).await, before);
}

/// `me` is the caller as their token describes them; roles default to REQUESTER.
#[tokio::test]
async fn me_is_the_caller_from_the_token() {
    let server = Server::start();
    let sam = Client::user(&server, "sam", &["AGENT"], &["support", "billing"]);
    let me = sam.data("{ me { id roles teams } }", json!({})).await;
    assert_eq!(
        me["me"],
        json!({ "id": "sam", "roles": ["AGENT"], "teams": ["support", "billing"] })
    );
    let anne = Client::user(&server, "anne", &[], &[]);
    let me = anne.data("{ me { roles } }", json!({})).await;
    assert_eq!(me["me"]["roles"], json!(["REQUESTER"]));
}

/// In production mode the server refuses to start without a secret.
#[test]
fn production_mode_without_a_secret_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(tests::tickets_bin())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env(
            "TICKETS_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("t.db").display()),
        )
        .env("TICKETS_PRODUCTION", "1")
        .env_remove("TICKETS_JWT_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TICKETS_JWT_SECRET"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `tickets serve` on `listen` with `secret` (none: unset): the port it
/// printed if it serves (it is then stopped), or the output of a run that
/// stopped without serving.
fn serve_on(listen: &str, secret: Option<&str>) -> Result<String, std::process::Output> {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(tests::tickets_bin());
    command
        .args(["serve", "--listen", listen])
        .env(
            "TICKETS_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("t.db").display()),
        )
        .env_remove("TICKETS_PRODUCTION")
        .env_remove("TICKETS_JWT_SECRET")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(secret) = secret {
        command.env("TICKETS_JWT_SECRET", secret);
    }
    let mut child = command.spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    if let Some(address) = first.trim().strip_prefix("listening on http://") {
        let port = address.rsplit(':').next().unwrap().to_string();
        let _ = child.kill();
        let _ = child.wait();
        return Ok(port);
    }
    Err(child.wait_with_output().unwrap())
}

/// auth.md, "Next round": off loopback there is no development mode. A
/// server asked to listen on every interface without a secret, or with one
/// shorter than 32 bytes, refuses to start (before binding anything) with one
/// line naming the address and what to set; with a 32-byte secret it serves.
#[test]
fn off_loopback_the_server_refuses_to_start_without_a_long_secret() {
    for secret in [None, Some("short-secret")] {
        let refused = serve_on("0.0.0.0:0", secret).expect_err("refuses to start");
        let line = tests::one_error_line(&refused);
        assert!(line.contains("0.0.0.0:0"), "{line}");
        assert!(line.contains("TICKETS_JWT_SECRET"), "{line}");
        assert!(line.contains("32 bytes"), "{line}");
    }
    let port = serve_on("0.0.0.0:0", Some("a-secret-of-exactly-32-bytes-ok!")).expect("serves");
    assert_ne!(port, "0");
    assert!(
        serve_on("127.0.0.1:0", None).is_ok(),
        "development mode on loopback"
    );
}

/// A token whose `nbf` (not before) lies ahead is refused as not valid yet;
/// the same claims with an `nbf` in the past are accepted.
#[tokio::test]
async fn a_token_is_refused_before_its_not_before_time() {
    let server = Server::start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let token = |nbf: i64| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &json!({ "sub": "nina", "exp": now + 600, "nbf": nbf, "roles": ["AGENT"] }),
            &jsonwebtoken::EncodingKey::from_secret(tests::TEST_SECRET.as_bytes()),
        )
        .unwrap()
    };
    let early = Client::new(&server, Some(token(now + 300)));
    let body = early.post("{ me { id } }", json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    assert!(body.to_string().contains("not valid yet"), "{body}");
    let ready = Client::new(&server, Some(token(now - 5)));
    assert_eq!(
        ready.data("{ me { id } }", json!({})).await["me"]["id"],
        "nina"
    );
}

/// Without a secret the server runs in development mode, says so loudly at
/// WARN (as JSON lines with `TICKETS_LOG_FORMAT=json`), and accepts tokens
/// minted with the development secret.
#[tokio::test]
async fn development_mode_is_logged_loudly_and_works() {
    let server = Server::start_with(&[("TICKETS_JWT_SECRET", ""), ("TICKETS_LOG_FORMAT", "json")]);
    let sam = Client::user(&server, "sam", &["AGENT"], &["support"]);
    assert_eq!(
        sam.data("{ me { id } }", json!({})).await["me"]["id"],
        "sam"
    );
    let log = server.log();
    let warning = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["level"] == "WARN" && line.to_string().contains("DEVELOPMENT MODE"));
    assert!(
        warning.is_some(),
        "no JSON WARN line about development mode in:\n{log}"
    );
}
