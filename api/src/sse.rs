//! GraphQL subscriptions over Server-Sent Events, for networks whose proxies
//! drop WebSockets: `POST /graphql/stream` in the "distinct connections"
//! mode of the graphql-sse protocol (its PROTOCOL.md). The body is a GraphQL
//! request; the answer is `text/event-stream`, one `next` event per result
//! (`data`: the execution result as JSON) and a `complete` event at the end.
//! The operation runs through the same schema as over HTTP and WebSocket, so
//! authentication, visibility, `after` resume and `LAGGED` are the same, as
//! are the limits: the nesting check, and the caller's budget of operations
//! (or the address's, without a valid token). The stream ends with the
//! operation, when the client goes away, or at shutdown.

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, StreamExt};

use crate::graphql::Authentication;
use crate::metrics::Metrics;
use crate::requests::{graphql_request, over_anonymous_budget, rate_limited, Peer};
use crate::state::AppState;

pub(crate) async fn stream(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = match graphql_request(&state, body) {
        Ok(request) => request,
        Err(refused) => return *refused,
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let auth = state.ctx.authenticate(authorization).await;
    let budget = match &auth {
        Ok(viewer) => state.ctx.rates.operation(viewer.id()),
        Err(_) => over_anonymous_budget(&state, &peer),
    };
    if let Err(limited) = budget {
        return rate_limited(limited);
    }
    Metrics::inc(&state.ctx.metrics.graphql_requests);
    let results = state
        .schema
        .execute_stream(request.data(Authentication(auth)))
        .map(|result| {
            let event = Event::default()
                .event("next")
                .json_data(&result)
                .unwrap_or_else(|_| Event::default().event("next").data("{}"));
            Ok::<_, Infallible>(event)
        });
    let complete = stream::once(async { Ok(Event::default().event("complete").data("")) });
    let shutdown = state.ctx.shutdown.clone().cancelled_owned();
    let events = results.chain(complete).take_until(shutdown);
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
