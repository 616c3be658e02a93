//! The HTTP side: `POST /graphql`, `GET /graphql` (GraphiQL, or the WebSocket
//! of [`crate::ws`] when the request asks to upgrade), GraphiQL's embedded
//! assets, the reference web client of [`crate::web`] at `/`, `/healthz`,
//! `/readyz`, `/metrics`.
//!
//! A client's mistake is never a 500: an oversize body is a 413, a body that is
//! not a GraphQL request or a query nested too deep to parse safely a 400, all
//! with a GraphQL-shaped error and a code.

use async_graphql_axum::GraphQLResponse;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use tower_http::trace::TraceLayer;
use tracing::Instrument;

use crate::error::client_error;
use crate::graphql::{bounds, Authentication};
use crate::metrics::Metrics;
use crate::requests::{graphql_request, over_anonymous_budget, rate_limited, Peer};
use crate::state::AppState;

/// The public routes; `/readyz` and `/metrics` too unless `--ops-listen`
/// serves them on an address of their own ([`ops_router`]).
pub fn router(state: AppState) -> Router {
    let limit = state.ctx.settings.max_body_bytes;
    let mut routes = Router::new()
        .route("/graphql", post(graphql_post).get(graphql_get))
        .route("/graphql/stream", post(crate::sse::stream))
        .route(
            &format!("{}/{{file}}", crate::graphiql::ASSETS),
            get(crate::graphiql::asset),
        )
        .route("/healthz", get(healthz))
        .merge(crate::web::router(state.ctx.development));
    if state.ctx.settings.ops_listen.is_none() {
        routes = routes
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics));
    }
    if let Some(cors) = crate::origins::Origins::new(&state.ctx.settings.cors_origins).cors() {
        routes = routes.layer(cors);
    }
    routes
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), count_request))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The operators' routes on `--ops-listen`: health, readiness, metrics.
pub fn ops_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn count_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    Metrics::inc(&state.ctx.metrics.http_requests);
    next.run(request).await
}

async fn graphql_post(
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
    Metrics::inc(&state.ctx.metrics.graphql_requests);
    // The timeout covers everything that may wait on the database: recording
    // the caller's profile as well as executing the request.
    let timeout = state.ctx.settings.request_timeout;
    let work = async {
        let auth = state.ctx.authenticate(authorization).await;
        if auth.is_err() {
            over_anonymous_budget(&state, &peer)?;
        }
        let user = auth.as_ref().map(|v| v.id()).unwrap_or_default();
        let operation = request.operation_name.as_deref().unwrap_or_default();
        // What the client chose is logged only in part.
        let span = tracing::info_span!(
            "graphql",
            user = %bounds::prefix(user),
            operation = %bounds::prefix(operation)
        );
        let request = request.data(Authentication(auth));
        Ok(state.schema.execute(request).instrument(span).await)
    };
    let response = match tokio::time::timeout(timeout, work).await {
        Ok(Ok(response)) => Some(response),
        Ok(Err(limited)) => return rate_limited(limited),
        Err(_) => None,
    };
    let Some(response) = response else {
        Metrics::inc(&state.ctx.metrics.graphql_errors);
        tracing::warn!("a request stopped at its timeout");
        return client_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "TIMEOUT",
            format!(
                "the request ran longer than {} s and was stopped; a mutation may or may not \
                 have been applied: retry it with the same idempotencyKey",
                timeout.as_secs()
            ),
        );
    };
    if response.is_err() {
        Metrics::inc(&state.ctx.metrics.graphql_errors);
    }
    let unavailable = response.errors.iter().any(|e| {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .is_some_and(|code| *code == async_graphql::Value::from("UNAVAILABLE"))
    });
    let mut answer = GraphQLResponse::from(response).into_response();
    // The database is out of reach: a 503 with Retry-After, as for any
    // temporarily unavailable HTTP service, besides the error's own
    // `retryAfterSeconds`.
    if unavailable {
        *answer.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        answer.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(crate::error::RETRY_AFTER_SECONDS),
        );
    }
    answer
}

async fn graphql_get(State(state): State<AppState>, peer: Peer, request: Request) -> Response {
    let upgrade = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if upgrade {
        // A WebSocket carries no token until its `connection_init`: upgrades
        // spend the address's budget.
        if let Err(limited) = over_anonymous_budget(&state, &peer) {
            return rate_limited(limited);
        }
        return crate::ws::upgrade(state, request).await;
    }
    crate::graphiql::page()
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database answers and every projection runs within
/// `--ready-max-lag` of the log's head (see [`crate::readiness`]); 503 with
/// the same JSON body, naming what keeps the node out, otherwise.
async fn readyz(State(state): State<AppState>) -> Response {
    let max_lag = state.ctx.settings.ready_max_lag;
    let verdict = crate::readiness::check(&*state.ctx.store, &state.ctx.read_db, max_lag).await;
    let status = if verdict.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body: Value = serde_json::to_value(&verdict).unwrap_or_default();
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let head = state.ctx.store.head().await.ok();
    let projections = projections::status(&state.ctx.read_db)
        .await
        .map(crate::readiness::with_served)
        .unwrap_or_default();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.ctx.metrics.render(
            head,
            &projections,
            state.ctx.hub.as_ref().map(fanout::Hub::replay_stats),
        ),
    )
        .into_response()
}
