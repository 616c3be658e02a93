//! What the server puts in its answers, whichever subprotocol: error codes of
//! its own refusals, which results are request errors, close reasons.

use async_graphql::{ErrorExtensionValues, Response, ServerError};

/// Close reasons are at most 123 bytes (RFC 6455, section 5.5).
const MAX_REASON_BYTES: usize = 123;

/// `extensions.code` of an operation refused by the per-socket limit.
pub const TOO_MANY_OPERATIONS: &str = "TOO_MANY_SUBSCRIPTIONS";

/// `extensions.code` of a `connection_init` refused by the per-user limit
/// (legacy `connection_error`).
pub const TOO_MANY_SOCKETS: &str = "TOO_MANY_SOCKETS";

/// A response that failed before execution: no data, and no error belongs to
/// a field (parse, validation and limit errors have no path).
pub(super) fn is_request_error(response: &Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// A GraphQL error with a stable `extensions.code`.
pub(super) fn coded_error(message: impl Into<String>, code: &str) -> ServerError {
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    let mut error = ServerError::new(message, None);
    error.extensions = Some(extensions);
    error
}

/// `reason` cut to what a close frame may carry, on a character boundary.
pub(super) fn close_reason(mut reason: String) -> String {
    if reason.len() > MAX_REASON_BYTES {
        let mut end = MAX_REASON_BYTES;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Close reasons never exceed the frame's limit, even mid-character.
    #[test]
    fn close_reasons_fit_in_a_close_frame() {
        let long = "é".repeat(100);
        let cut = close_reason(long);
        assert!(cut.len() <= MAX_REASON_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(close_reason("short".into()), "short");
    }

    /// Only a response without data whose errors have no path is a request
    /// error; a field's error is an execution result.
    #[test]
    fn request_errors_are_told_from_field_errors() {
        let request = Response::from_errors(vec![ServerError::new("bad", None)]);
        assert!(is_request_error(&request));
        let mut field = ServerError::new("no", None);
        field.path = vec![async_graphql::PathSegment::Field("x".into())];
        assert!(!is_request_error(&Response::from_errors(vec![field])));
        assert!(!is_request_error(&Response::new(
            async_graphql::Value::Null
        )));
    }
}
