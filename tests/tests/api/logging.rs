//! What the server logs: an expected, resolved conflict is not an error.

use futures::future::join_all;
use serde_json::json;
use tests::Server;

use crate::helpers::{create, ok, refused, Client};

/// The lines of the server's log at ERROR level.
fn error_lines(server: &Server) -> Vec<String> {
    server
        .log()
        .lines()
        .filter(|line| line.contains("ERROR"))
        .map(str::to_string)
        .collect()
}

/// A new user's first requests racing each other (each records the user's
/// profile), comments racing on one ticket (retried inside the server), and
/// a client's stale `expectedVersion` (answered CONFLICT): every request gets
/// its answer, and none of it is logged as an error.
#[tokio::test]
async fn expected_conflicts_are_resolved_and_not_logged_as_errors() {
    let server = Server::start();
    let token = server.token("newcomer", &["AGENT"], &["support"]);
    let firsts = join_all((0..8).map(|i| {
        let client = Client::new(&server, Some(token.clone()));
        async move {
            client
                .mutate(
                    "createSupportTicket(input: {request: $r})",
                    "($r: String!)",
                    json!({ "r": format!("first request {i}") }),
                )
                .await
        }
    }))
    .await;
    for first in &firsts {
        ok(first.clone());
    }

    let agent = Client::new(&server, Some(token));
    let (id, _) = create(&agent, "Racing comments", "support").await;
    let comments = join_all((0..8).map(|i| {
        let agent = &agent;
        let id = id.clone();
        async move {
            agent
                .mutate(
                    "commentOnSupportTicket(id: $id, comment: $c)",
                    "($id: String!, $c: String!)",
                    json!({ "id": id, "c": format!("comment {i}") }),
                )
                .await
        }
    }))
    .await;
    for comment in comments {
        ok(comment);
    }
    let stale = agent
        .mutate(
            "addSupportTicketTag(id: $id, tag: \"late\", expectedVersion: 0)",
            "($id: String!)",
            json!({ "id": id }),
        )
        .await;
    refused(&stale, "CONFLICT");

    let errors = error_lines(&server);
    assert!(
        errors.is_empty(),
        "logged as errors:\n{}",
        errors.join("\n")
    );
}
