//! [`ApiError`]: the one error type of the GraphQL layer. Every variant becomes a
//! GraphQL error with a stable `extensions.code`; an internal failure is logged
//! with its detail and answered with a generic message.

use async_graphql::ErrorExtensions;

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
    /// A part of the contract this server does not serve yet (`NOT_IMPLEMENTED`).
    #[error("{0} is not implemented yet")]
    NotImplemented(&'static str),
    /// The store, the database or a bug (`INTERNAL`). Logged, never shown.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => "UNAUTHENTICATED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::Invalid(_) => "INVALID",
            ApiError::NotImplemented(_) => "NOT_IMPLEMENTED",
            ApiError::Internal(_) => "INTERNAL",
        }
    }

    /// An internal failure: the detail goes to the log of the current span.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        let detail = detail.to_string();
        tracing::error!(error = %detail, "internal error");
        ApiError::Internal(detail)
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::internal(e)
    }
}

impl From<projections::ProjectionError> for ApiError {
    fn from(e: projections::ProjectionError) -> Self {
        ApiError::internal(e)
    }
}

impl From<projections::QueryError> for ApiError {
    /// A bad cursor is the client's mistake (`INVALID`); anything else is
    /// internal.
    fn from(e: projections::QueryError) -> Self {
        match e {
            projections::QueryError::InvalidCursor(cursor) => ApiError::Invalid(format!(
                "{} is not a cursor of this list",
                crate::graphql::bounds::quoted(&cursor)
            )),
            other => ApiError::internal(other),
        }
    }
}

impl From<CommandError> for ApiError {
    /// Only for paths where a command error is not a mutation result.
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Store(e) => ApiError::internal(e),
            other => ApiError::Invalid(other.to_string()),
        }
    }
}

impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        let code = self.code();
        async_graphql::Error::new(self.to_string()).extend_with(|_, e| e.set("code", code))
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        e.extend()
    }
}
