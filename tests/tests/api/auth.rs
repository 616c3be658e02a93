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
