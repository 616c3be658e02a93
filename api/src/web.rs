//! The reference web client at `GET /`: plain ES modules from `api/web/`
//! and the graphql-ws client library from `api/vendor/graphql-ws/` (pinned,
//! with its licence and `update.sh`), all embedded in the binary, so the page
//! needs no Node to build or run and no network at run time.
//!
//! In development mode only (no `TICKETS_JWT_SECRET`, which the secret rule
//! allows on loopback addresses only) the page may offer a one-click sign-in:
//! `GET /dev/users` lists the recorded users and `POST /dev/token` mints a
//! token for one of them. In any other mode these routes are not routed at
//! all, so they answer 404 like any unknown path.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Claims;
use crate::error::client_error;
use crate::state::AppState;

/// Where the client's own files are served.
pub const APP: &str = "/app";

/// Where the vendored graphql-ws files are served; `client.js` imports its
/// shared chunk by a relative path, so both live in this one folder.
pub const GRAPHQL_WS: &str = "/app/graphql-ws";

/// How many users the development sign-in lists at most.
const DEV_USERS: i64 = 500;

/// How long a token minted by the development sign-in lasts.
const DEV_TOKEN_HOURS: i64 = 8;

/// One embedded file: name, content type, bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

macro_rules! file {
    ($folder:literal, $name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("../", $folder, "/", $name)),
        }
    };
}

static INDEX: &[u8] = include_bytes!("../web/index.html");

static APP_FILES: &[Asset] = &[
    file!("web", "app.css", CSS),
    file!("web", "main.js", JS),
    file!("web", "api.js", JS),
    file!("web", "dom.js", JS),
    file!("web", "signin.js", JS),
    file!("web", "board.js", JS),
    file!("web", "ticket.js", JS),
    file!("web", "requester.js", JS),
    file!("web", "notifications.js", JS),
];

static VENDOR_FILES: &[Asset] = &[
    file!("vendor/graphql-ws", "client.js", JS),
    file!("vendor/graphql-ws", "common-CGW11Fyb.js", JS),
    file!("vendor/graphql-ws", "LICENSE", TEXT),
];

/// The client's routes; the development sign-in's only when `development`.
pub fn router(development: bool) -> Router<AppState> {
    let routes = Router::new()
        .route("/", get(index))
        .route(&format!("{APP}/{{file}}"), get(app_file))
        .route(&format!("{GRAPHQL_WS}/{{file}}"), get(vendor_file));
    if development {
        routes
            .route("/dev/users", get(dev_users))
            .route("/dev/token", post(dev_token))
    } else {
        routes
    }
}

async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, HTML),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX,
    )
        .into_response()
}

async fn app_file(Path(name): Path<String>) -> Response {
    // The client's files change with the binary: the browser revalidates.
    serve(APP_FILES, &name, "no-cache")
}

async fn vendor_file(Path(name): Path<String>) -> Response {
    serve(VENDOR_FILES, &name, "public, max-age=86400")
}

fn serve(files: &[Asset], name: &str, cache: &'static str) -> Response {
    match files.iter().find(|f| f.name == name) {
        Some(file) => (
            [
                (header::CONTENT_TYPE, file.content_type),
                (header::CACHE_CONTROL, cache),
            ],
            file.bytes,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, TEXT)],
            "no such file",
        )
            .into_response(),
    }
}

/// `GET /dev/users`: the users the read model knows (those `tickets demo`
/// recorded, and anybody who has called the server), staff first.
async fn dev_users(State(state): State<AppState>) -> Response {
    users_read_model_at_head(&state).await;
    match projections::users::list_users(&state.ctx.read_db, DEV_USERS).await {
        Ok(mut users) => {
            // Staff first (admins, then agents), then requesters, each by id.
            users.sort_by_key(|u| {
                let rank = if u.roles.contains(&domain::Role::Admin) {
                    0
                } else if u.roles.contains(&domain::Role::Agent) {
                    1
                } else {
                    2
                };
                (rank, u.id.clone())
            });
            let users: Vec<_> = users
                .iter()
                .map(|u| {
                    json!({
                        "id": u.id, "firstName": u.first_name, "lastName": u.last_name,
                        "roles": u.roles, "teams": u.teams,
                    })
                })
                .collect();
            Json(json!({ "users": users })).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "listing users for the development sign-in");
            client_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "the users read model did not answer; try again",
            )
        }
    }
}

/// Waits, as the GraphQL queries of read models do (bounded by
/// `--read-your-writes-ms`), until the users read model has applied the log
/// as of now: a user who just called the server is listed.
async fn users_read_model_at_head(state: &AppState) {
    projections::freshness::wait_for_log_head(
        &*state.ctx.store,
        &state.ctx.read_db,
        projections::users::NAME,
        None,
        state.ctx.read_your_writes_timeout(),
    )
    .await;
}

#[derive(Deserialize)]
struct TokenRequest {
    user: String,
}

/// `POST /dev/token` with `{"user": "<id>"}`: a token for that recorded
/// user, with their roles, teams and names, signed with the development
/// secret. An unknown user is a 404, a malformed body a 400.
async fn dev_token(
    State(state): State<AppState>,
    body: Result<Json<TokenRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(request)) = body else {
        return client_error(
            StatusCode::BAD_REQUEST,
            "INVALID",
            "expected a JSON body {\"user\": \"<user id>\"}",
        );
    };
    users_read_model_at_head(&state).await;
    let profile = match projections::users::find_user(&state.ctx.read_db, &request.user).await {
        Ok(Some(profile)) => profile,
        Ok(None) => {
            return client_error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "no such user in the users read model",
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "looking up a user for the development sign-in");
            return client_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "the users read model did not answer; try again",
            );
        }
    };
    let claims = Claims {
        sub: profile.id,
        exp: (chrono::Utc::now() + chrono::Duration::hours(DEV_TOKEN_HOURS)).timestamp(),
        roles: profile.roles,
        teams: profile.teams,
        given_name: profile.first_name,
        family_name: profile.last_name,
        email: profile.email,
    };
    match state.ctx.keys.mint(&claims) {
        Ok(token) => Json(json!({ "token": token })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "minting a development token");
            client_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "the token could not be signed",
            )
        }
    }
}
