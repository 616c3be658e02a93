//! What every GraphQL entry point over HTTP (`POST /graphql`,
//! `POST /graphql/stream`, and the WebSocket upgrade) checks before it
//! executes anything: the body (size, shape, nesting), the client's
//! address, and the anonymous budget.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::client_error;
use crate::rate_limits::Limited;
use crate::state::AppState;

/// The GraphQL request in a POST body, or the client error it gets: a body
/// over the size limit (413, and the connection closed), one that is not a
/// GraphQL request, or a query nested too deep to parse safely (400).
pub(crate) fn graphql_request(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> Result<async_graphql::Request, Box<Response>> {
    let bytes = match body {
        Ok(bytes) => bytes,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let limit = state.ctx.settings.max_body_bytes;
            let mut response = client_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                format!("the request body is larger than {limit} bytes"),
            );
            // The rest of the body is left unread on the connection, so the
            // server closes it after this answer; saying so keeps a client
            // that pools connections from sending its next request into it.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Err(Box::new(response));
        }
        Err(rejection) => {
            return Err(Box::new(client_error(
                rejection.status(),
                "BAD_REQUEST",
                rejection.body_text(),
            )))
        }
    };
    let request: async_graphql::Request = match serde_json::from_slice(&bytes) {
        Ok(request) => request,
        Err(e) => {
            return Err(Box::new(client_error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                format!("the body is not a GraphQL request (JSON with a \"query\"): {e}"),
            )))
        }
    };
    // Before anything parses the query: a deeply nested one would overflow
    // the parser's stack (see `crate::nesting`).
    if let Err(too_deep) = crate::nesting::check(&request.query) {
        tracing::info!("query refused before parsing: {too_deep}");
        return Err(Box::new(client_error(
            StatusCode::BAD_REQUEST,
            crate::nesting::QUERY_TOO_DEEP,
            too_deep.to_string(),
        )));
    }
    Ok(request)
}

/// Spends one of the client address's anonymous budget (see
/// `crate::rate_limits`); a request whose address is unknown is not limited.
pub(crate) fn over_anonymous_budget(state: &AppState, peer: &Peer) -> Result<(), Limited> {
    match peer.0 {
        Some(address) => state.ctx.rates.anonymous(address),
        None => Ok(()),
    }
}

/// The client's address, when the server was started with it
/// (`ConnectInfo`); `None` when a router is driven without a socket.
pub(crate) struct Peer(Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip());
        Ok(Peer(address))
    }
}

/// 429 with `Retry-After`, and the GraphQL error `RATE_LIMITED` with
/// `retryAfterSeconds`.
pub(crate) fn rate_limited(limited: Limited) -> Response {
    let body = serde_json::json!({ "errors": [{
        "message": limited.message("requests from this address without a valid token"),
        "extensions": { "code": "RATE_LIMITED", "retryAfterSeconds": limited.retry_after_seconds }
    }] });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(limited.retry_after_seconds),
    );
    response
}
