//! Bounds on what one request may ask for: list arguments by their count,
//! strings by their bytes. Each is checked before any work and refused with
//! `INVALID` naming the bound; what a client sent is never echoed whole.

use crate::error::ApiError;

/// Ids in one list argument (`markNotificationsRead(ids)`, a subscription's
/// `ticketIds`).
pub const MAX_IDS: usize = 500;
/// Other list arguments of a filter (queues, tags).
pub const MAX_FILTER_ITEMS: usize = 100;
/// A `search` term, in bytes.
pub const MAX_SEARCH_BYTES: usize = 200;
/// A ticket id or reference argument, in bytes: longer names no ticket.
pub const MAX_TICKET_ID_BYTES: usize = 128;
/// What a message quotes of a client's value, in bytes.
const QUOTED_BYTES: usize = 64;

/// `Some(list)` has at most `max` items.
pub fn items<T>(field: &str, list: Option<&Vec<T>>, max: usize) -> Result<(), ApiError> {
    match list {
        Some(list) if list.len() > max => Err(ApiError::Invalid(format!(
            "{field} may hold at most {max} items (got {})",
            list.len()
        ))),
        _ => Ok(()),
    }
}

/// `Some(text)` has at most `max` bytes (UTF-8).
pub fn bytes(field: &str, text: Option<&str>, max: usize) -> Result<(), ApiError> {
    match text {
        Some(text) if text.len() > max => Err(ApiError::Invalid(format!(
            "{field} may be at most {max} bytes (got {})",
            text.len()
        ))),
        _ => Ok(()),
    }
}

/// `value` as a message may quote it: its first bytes, cut at a character
/// boundary, with `…` when something was left out.
pub fn quoted(value: &str) -> String {
    let start = prefix(value);
    if start.len() == value.len() {
        format!("{value:?}")
    } else {
        format!("{start:?}…")
    }
}

/// The first bytes of `value` that a message or a log line may carry, cut at
/// a character boundary.
pub fn prefix(value: &str) -> &str {
    let mut end = value.len().min(QUOTED_BYTES);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

impl From<projections::QueryError> for ApiError {
    /// A bad cursor is the client's mistake (`INVALID`); anything else is
    /// internal.
    fn from(e: projections::QueryError) -> Self {
        match e {
            projections::QueryError::InvalidCursor(cursor) => {
                ApiError::Invalid(format!("{} is not a cursor of this list", quoted(&cursor)))
            }
            projections::QueryError::Database(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lists and strings within their bound pass; one more item or byte is
    /// INVALID naming the bound; a multi-byte text counts its bytes.
    #[test]
    fn bounds_count_items_and_bytes() {
        assert!(items("ids", Some(&vec![0; 500]), MAX_IDS).is_ok());
        let over = items("ids", Some(&vec![0; 501]), MAX_IDS).unwrap_err();
        assert_eq!(over.code(), "INVALID");
        assert!(over.to_string().contains("at most 500"), "{over}");
        assert!(items::<u8>("ids", None, MAX_IDS).is_ok());
        assert!(bytes("search", Some(&"é".repeat(100)), 200).is_ok());
        assert!(bytes("search", Some(&"é".repeat(101)), 200).is_err());
    }

    /// A long value is quoted by its first 64 bytes, never cut inside a
    /// character.
    #[test]
    fn long_values_are_quoted_in_part() {
        assert_eq!(quoted("abc"), "\"abc\"");
        let long = "ü".repeat(1000);
        let q = quoted(&long);
        assert!(q.len() < 80 && q.ends_with('…'), "{q}");
    }
}
