//! [`ApiError`]: the one error type of the GraphQL layer. Every variant becomes a
//! GraphQL error with a stable `extensions.code`; an internal failure is logged
//! with its detail and answered with a generic message.

use async_graphql::ErrorExtensions;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::auth::AuthError;
use crate::command_service::CommandError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No valid token (`UNAUTHENTICATED`): the client must log in again.
    #[error(transparent)]
    Unauthenticated(#[from] AuthError),
    /// The caller may not use this operation (`FORBIDDEN`).
    #[error("{0}")]
    Forbidden(String),
    /// The input cannot be used as given (`INVALID`).
    #[error("{0}")]
    Invalid(String),
    /// No such thing, or one the caller may not see: both read the same
    /// (`NOT_FOUND`).
    #[error("{0}")]
    NotFound(String),
    /// A presence entry past a cap (`TOO_MANY_PRESENT`): per ticket or per
    /// user; nothing was set.
    #[error("{0}")]
    TooManyPresent(String),
    /// A part of the contract this server does not serve yet (`NOT_IMPLEMENTED`).
    #[error("{0} is not implemented yet")]
    NotImplemented(&'static str),
    /// The database or the event store did not answer (`UNAVAILABLE`, with
    /// `retryAfterSeconds`): nothing is known to have been written, and a
    /// mutation retried with the same `idempotencyKey` is applied at most
    /// once. Logged with its detail.
    #[error("the database is not answering; retry in {RETRY_AFTER_SECONDS} s (a mutation with the same idempotencyKey is safe to retry)")]
    Unavailable(String),
    /// The caller is over a rate limit (`RATE_LIMITED`, with
    /// `retryAfterSeconds`); nothing was done.
    #[error("too many requests; retry in {} s", .0.retry_after_seconds)]
    RateLimited(crate::rate_limits::Limited),
    /// The store, the database or a bug (`INTERNAL`). Logged, never shown.
    #[error("internal error")]
    Internal(String),
}

/// What an `UNAVAILABLE` answer tells a client to wait before retrying.
pub const RETRY_AFTER_SECONDS: u64 = 1;

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => "UNAUTHENTICATED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::Invalid(_) => "INVALID",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::TooManyPresent(_) => "TOO_MANY_PRESENT",
            ApiError::NotImplemented(_) => "NOT_IMPLEMENTED",
            ApiError::Unavailable(_) => "UNAVAILABLE",
            ApiError::RateLimited(_) => "RATE_LIMITED",
            ApiError::Internal(_) => "INTERNAL",
        }
    }

    /// An internal failure: the detail goes to the log of the current span.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        let detail = detail.to_string();
        tracing::error!(error = %detail, "internal error");
        ApiError::Internal(detail)
    }

    /// The database is out of reach: the detail goes to the log at warn.
    pub fn unavailable(detail: impl std::fmt::Display) -> ApiError {
        let detail = detail.to_string();
        tracing::warn!(error = %detail, "the database is not answering");
        ApiError::Unavailable(detail)
    }
}

/// Whether a database error means the database is out of reach (a refused
/// or cut connection, a pool that timed out, a server shutting down) rather
/// than a bug.
fn unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // SQLSTATE classes 08 (connection exception) and 57 (operator
        // intervention: shutdown, restart).
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57")),
        _ => false,
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> Self {
        match e {
            store::StoreError::Unavailable(_) => ApiError::unavailable(e),
            other => ApiError::internal(other),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if unreachable(&e) {
            ApiError::unavailable(e)
        } else {
            ApiError::internal(e)
        }
    }
}

impl From<projections::ProjectionError> for ApiError {
    fn from(e: projections::ProjectionError) -> Self {
        match e {
            projections::ProjectionError::Database(e) => e.into(),
            projections::ProjectionError::Store(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<CommandError> for ApiError {
    /// Only for paths where a command error is not a mutation result.
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Store(e) => e.into(),
            other => ApiError::Invalid(other.to_string()),
        }
    }
}

impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        let code = self.code();
        let retry = match self {
            ApiError::Unavailable(_) => Some(RETRY_AFTER_SECONDS),
            ApiError::RateLimited(limited) => Some(limited.retry_after_seconds),
            _ => None,
        };
        async_graphql::Error::new(self.to_string()).extend_with(|_, e| {
            e.set("code", code);
            if let Some(seconds) = retry {
                e.set("retryAfterSeconds", seconds);
            }
        })
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        e.extend()
    }
}

/// A GraphQL-shaped error response for a request that never reached
/// execution (HTTP or a WebSocket upgrade).
pub(crate) fn client_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message.into(), "extensions": { "code": code } }]
    });
    (status, Json(body)).into_response()
}
