//! Client mistakes get clear errors, never a 500, and the server stays up.

use serde_json::{json, Value};
use tests::Server;

use crate::helpers::{error_code, Client};

/// Malformed JSON, an unknown field, an oversize body and a too-deep query are
/// each answered with a clear error; health, readiness and metrics still answer.
#[tokio::test]
async fn client_mistakes_get_clear_errors_and_the_server_stays_up() {
    let mut server = Server::start_with(&[
        ("TICKETS_MAX_BODY_BYTES", "4096"),
        ("TICKETS_MAX_QUERY_DEPTH", "5"),
    ]);
    let token = server.token("sam", &["AGENT"], &["support"]);
    let http = reqwest::Client::new();
    let post = |body: String| {
        http.post(server.graphql_url())
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };

    let malformed = post("{\"query\": ".into()).await.unwrap();
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_REQUEST", "{body}");

    let huge = json!({ "query": format!("{{ me {{ id }} }} #{}", "x".repeat(10_000)) }).to_string();
    let oversize = post(huge).await.unwrap();
    assert_eq!(oversize.status(), 413);
    let body: Value = oversize.json().await.unwrap();
    assert_eq!(error_code(&body), "PAYLOAD_TOO_LARGE", "{body}");

    let client = Client::new(&server, Some(token.clone()));
    let unknown = client.post("{ me { id shoeSize } }", json!({})).await;
    let message = unknown["errors"][0]["message"].as_str().unwrap_or("");
    assert!(message.contains("shoeSize"), "{unknown}");

    let deep = "{ supportTickets { edges { node { relatedTickets { relatedTickets { relatedTickets { id } } } } } } }";
    let too_deep = client.post(deep, json!({})).await;
    let message = too_deep["errors"][0]["message"]
        .as_str()
        .unwrap_or("")
        .to_lowercase();
    assert!(message.contains("deep"), "{too_deep}");

    let bad_id = client
        .post(
            "mutation { markNotificationsRead(ids: [\"x\"]) }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&bad_id), "INVALID", "{bad_id}");

    assert!(server.is_running());
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let metrics = http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("tickets_http_requests_total"), "{metrics}");
    assert!(
        metrics.contains("tickets_projection_lag{projection=\"tickets\"}"),
        "{metrics}"
    );
    let me = client.data("{ me { id } }", json!({})).await;
    assert_eq!(me["me"]["id"], "sam");
}

/// SIGTERM stops the server cleanly (exit status 0).
#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    let server = Server::start();
    let client = Client::user(&server, "sam", &["AGENT"], &["support"]);
    client.data("{ me { id } }", json!({})).await;
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
}

/// Every list and string argument has a bound: over it, the answer is
/// INVALID naming the bound, nothing is written, and no message quotes more
/// than a little of what the client sent.
#[tokio::test]
async fn oversized_arguments_are_refused_naming_their_bound() {
    let server = Server::start();
    let client = Client::user(&server, "sam", &["AGENT"], &["support"]);
    let admin = Client::user(&server, "root", &["ADMIN"], &[]);
    // Both users' profiles are recorded on their first request.
    client.data("{ me { id } }", json!({})).await;
    let before = crate::helpers::log_len(&admin).await;

    let ids: Vec<String> = (0..501).map(|i| format!("id-{i}")).collect();
    let body = client
        .post(
            "mutation($ids: [String!]!) { markNotificationsRead(ids: $ids) }",
            json!({ "ids": ids }),
        )
        .await;
    assert_eq!(error_code(&body), "INVALID", "{body}");
    assert!(body.to_string().contains("at most 500"), "{body}");

    let list = "query($f: SupportTicketFilter, $a: String) { supportTickets(filter: $f, after: $a) { totalCount } }";
    for (filter, bound) in [
        (json!({ "search": "x".repeat(201) }), "at most 200 bytes"),
        (json!({ "search": "é".repeat(101) }), "at most 200 bytes"),
        (json!({ "tags": vec!["t"; 101] }), "at most 100"),
        (json!({ "queues": vec!["q"; 101] }), "at most 100"),
    ] {
        let body = client.post(list, json!({ "f": filter })).await;
        assert_eq!(error_code(&body), "INVALID", "{body}");
        assert!(body.to_string().contains(bound), "{bound}: {body}");
    }
    let garbage = "z".repeat(10_000);
    let body = client.post(list, json!({ "a": garbage })).await;
    assert_eq!(error_code(&body), "INVALID", "{body}");
    assert!(
        body.to_string().len() < 500,
        "the cursor is not echoed whole: {body}"
    );

    let key = "k".repeat(201);
    let created = client
        .mutate(
            "createSupportTicket(input: {request: \"x\"}, idempotencyKey: $k)",
            "($k: String)",
            json!({ "k": key }),
        )
        .await;
    crate::helpers::refused(&created, "INVALID");
    assert!(
        created.to_string().contains("at most 200 bytes"),
        "{created}"
    );

    let long_id = "TCK-".to_string() + &"9".repeat(10_000);
    let found = client
        .data(
            "query($id: String!) { supportTicket(id: $id) { id } }",
            json!({ "id": long_id }),
        )
        .await;
    assert!(found["supportTicket"].is_null(), "{found}");

    assert_eq!(
        crate::helpers::log_len(&admin).await,
        before,
        "nothing written"
    );
}

/// After a body over `TICKETS_MAX_BODY_BYTES` gets its 413, the server says
/// it will close the connection (`Connection: close`), so a client that
/// pools connections sends its next request on a fresh one and gets an
/// answer, every time.
#[tokio::test]
async fn a_pooling_client_is_answered_after_a_body_too_large() {
    let server = Server::start_with(&[("TICKETS_MAX_BODY_BYTES", "4096")]);
    let http = reqwest::Client::new();
    let huge = json!({ "query": "{ __typename }", "variables": { "x": "x".repeat(100_000) } });
    for round in 0..20 {
        let oversize = http
            .post(server.graphql_url())
            .json(&huge)
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: no answer to the oversize body: {e:?}"));
        assert_eq!(oversize.status(), 413);
        assert_eq!(
            oversize
                .headers()
                .get("connection")
                .and_then(|v| v.to_str().ok()),
            Some("close"),
            "round {round}"
        );
        let _ = oversize.bytes().await;
        let next = http
            .post(server.graphql_url())
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: no answer after the 413: {e:?}"));
        assert_eq!(next.status(), 200, "round {round}");
    }
}
