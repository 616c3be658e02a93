//! The reference web client's routes: the page and its embedded assets at
//! `/`, GraphiQL still at `/graphql`, and the development sign-in
//! (`/dev/users`, `/dev/token`), which exists in development mode only.

use serde_json::{json, Value};
use tests::Server;

use crate::helpers::{introduce, Client};

async fn get(server: &Server, path: &str) -> reqwest::Response {
    reqwest::get(server.url(path))
        .await
        .expect("the server answers")
}

fn content_type(response: &reqwest::Response) -> String {
    response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string()
}

/// `/` is the client's page, its modules and the vendored graphql-ws client
/// come from the binary, an unknown file is a 404, and GraphiQL keeps
/// `/graphql`.
#[tokio::test]
async fn the_client_and_its_assets_are_served_from_the_binary() {
    let server = Server::start();
    let page = get(&server, "/").await;
    assert_eq!(page.status(), 200);
    assert!(content_type(&page).starts_with("text/html"));
    assert!(page.text().await.unwrap().contains("/app/main.js"));
    for path in ["/app/main.js", "/app/board.js", "/app/graphql-ws/client.js"] {
        let asset = get(&server, path).await;
        assert_eq!(asset.status(), 200, "{path}");
        assert!(
            content_type(&asset).starts_with("text/javascript"),
            "{path}"
        );
    }
    // client.js imports its shared chunk by a relative path: it is there.
    let client = get(&server, "/app/graphql-ws/client.js")
        .await
        .text()
        .await
        .unwrap();
    let chunk = client
        .split("from './")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("an import of the shared chunk");
    assert_eq!(
        get(&server, &format!("/app/graphql-ws/{chunk}"))
            .await
            .status(),
        200
    );
    assert_eq!(get(&server, "/app/graphql-ws/LICENSE").await.status(), 200);
    assert_eq!(get(&server, "/app/nothing.js").await.status(), 404);
    let graphiql = get(&server, "/graphql").await;
    assert_eq!(graphiql.status(), 200);
    assert!(graphiql.text().await.unwrap().contains("GraphiQL"));
}

/// In development mode `/dev/users` lists the recorded users and
/// `/dev/token` mints a working token for one, with their roles and teams;
/// an unknown user is a 404 and a malformed body a 400.
#[tokio::test]
async fn development_mode_lists_the_users_and_mints_a_token_for_one() {
    let server = Server::start_with(&[("TICKETS_JWT_SECRET", "")]);
    introduce(&Client::new(
        &server,
        Some(server.token("kim", &["AGENT"], &["support"])),
    ))
    .await;
    let users: Value = get(&server, "/dev/users").await.json().await.unwrap();
    let kim = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == "kim")
        .unwrap_or_else(|| panic!("kim is listed: {users}"));
    assert_eq!(kim["roles"], json!(["AGENT"]));

    let http = reqwest::Client::new();
    let minted: Value = http
        .post(server.url("/dev/token"))
        .json(&json!({ "user": "kim" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = minted["token"].as_str().expect("a token").to_string();
    let me = Client::new(&server, Some(token))
        .data("{ me { id roles teams } }", json!({}))
        .await;
    assert_eq!(
        me["me"],
        json!({ "id": "kim", "roles": ["AGENT"], "teams": ["support"] })
    );

    let unknown = http
        .post(server.url("/dev/token"))
        .json(&json!({ "user": "nobody" }))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND");
    let malformed = http
        .post(server.url("/dev/token"))
        .header("Content-Type", "application/json")
        .body("{\"who\": 1")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "INVALID");
}

/// With a configured secret, and in production mode, the development
/// sign-in does not exist: both routes answer 404, while the page still
/// loads (and offers only the token field).
#[tokio::test]
async fn the_development_sign_in_does_not_exist_with_a_secret_or_in_production_mode() {
    let long_secret = "a-production-secret-of-at-least-32-bytes-long";
    for env in [
        vec![],
        vec![
            ("TICKETS_PRODUCTION", "1"),
            ("TICKETS_JWT_SECRET", long_secret),
        ],
    ] {
        let server = Server::start_with(&env);
        introduce(&Client::user(&server, "kim", &["AGENT"], &["support"])).await;
        assert_eq!(get(&server, "/dev/users").await.status(), 404, "{env:?}");
        let minted = reqwest::Client::new()
            .post(server.url("/dev/token"))
            .json(&json!({ "user": "kim" }))
            .send()
            .await
            .unwrap();
        assert_eq!(minted.status(), 404, "{env:?}");
        assert_eq!(get(&server, "/").await.status(), 200, "{env:?}");
    }
}
