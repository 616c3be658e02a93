//! Browsers on other origins (issue 24, "Browsers on other origins"): CORS
//! for the listed origins, nothing for others, and WebSocket upgrades from a
//! page of another site closed with 4403.

use serde_json::json;
use tests::Server;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::Db;
use crate::ws_protocol::{closed, init_with, message, send, Socket, TRANSPORT};

crate::on_both_databases!(
    preflights_are_granted_to_listed_origins_only,
    sockets_from_other_sites_are_closed_with_4403,
);

const ALLOWED: &str = "https://helpdesk.example.com";
const REFUSED: &str = "https://evil.example";

async fn preflight(server: &Server, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, server.graphql_url())
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type",
        )
        .send()
        .await
        .expect("an answer to the preflight")
}

fn allowed_origin(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_string())
}

/// A preflight from a listed origin is answered for it (methods, headers);
/// one from another origin gets no grant, and neither does anyone on a
/// server started without `--cors-origin`.
async fn preflights_are_granted_to_listed_origins_only(db: Db) {
    let server = db.server_with(&[("TICKETS_CORS_ORIGINS", ALLOWED)]);
    let granted = preflight(&server, ALLOWED).await;
    assert!(granted.status().is_success(), "{}", granted.status());
    assert_eq!(allowed_origin(&granted).as_deref(), Some(ALLOWED));
    let headers = granted.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(headers.contains("authorization"), "{headers}");
    assert_eq!(allowed_origin(&preflight(&server, REFUSED).await), None);

    let token = server.token("sam", &["AGENT"], &["support"]);
    let post = reqwest::Client::new()
        .post(server.graphql_url())
        .header("Origin", ALLOWED)
        .bearer_auth(&token)
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed_origin(&post).as_deref(), Some(ALLOWED));

    let closed_server = Server::start();
    assert_eq!(
        allowed_origin(&preflight(&closed_server, ALLOWED).await),
        None
    );
}

async fn open_from(server: &Server, origin: &str) -> Socket {
    let mut request = format!("ws://{}/graphql", server.address)
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", TRANSPORT.parse().unwrap());
    headers.insert("Origin", origin.parse().unwrap());
    tokio_tungstenite::connect_async(request)
        .await
        .expect("WebSocket upgrade")
        .0
}

/// A page of another site cannot open a socket in its visitor's name (4403);
/// a listed origin and this server's own pages can.
async fn sockets_from_other_sites_are_closed_with_4403(db: Db) {
    let server = db.server_with(&[("TICKETS_CORS_ORIGINS", ALLOWED)]);
    let token = server.token("sam", &["AGENT"], &["support"]);
    let mut refused = open_from(&server, REFUSED).await;
    let (code, reason) = closed(&mut refused).await;
    assert_eq!(code, 4403, "{reason}");
    let own = format!("http://{}", server.address);
    for origin in [ALLOWED, own.as_str()] {
        let mut socket = open_from(&server, origin).await;
        send(&mut socket, init_with(&token)).await;
        let ack = message(&mut socket).await;
        assert_eq!(ack["type"], "connection_ack", "{origin}: {ack}");
    }
}
