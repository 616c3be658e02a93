//! User input made safe to record: trimmed, within its length limits, tags
//! normalised. Lengths count bytes of UTF-8, not characters: what a limit
//! bounds is the memory and storage every copy of the text takes (a
//! character is up to four bytes).
//!
//! Every function returns the value to store, or `DomainError::Invalid` with a
//! message fit for the user.

use crate::error::DomainError;

pub const MAX_REQUEST: usize = 200;
pub const MAX_DESCRIPTION: usize = 20_000;
pub const MAX_QUEUE: usize = 64;
pub const MAX_REFERENCE: usize = 64;
pub const MAX_TAG: usize = 50;
pub const MAX_COMMENT: usize = 10_000;
pub const MAX_ATTACHMENT_NAME: usize = 255;
pub const MAX_URL: usize = 2048;
pub const MAX_MIME_TYPE: usize = 255;
pub const MAX_REASON: usize = 1_000;
pub const MAX_USER_ID: usize = 128;

/// Trims `value` and checks it has `1..=max` bytes.
fn required(field: &str, value: &str, max: usize) -> Result<String, DomainError> {
    let value = value.trim();
    match value.len() {
        0 => Err(DomainError::Invalid(format!("{field} must not be empty"))),
        n if n > max => Err(DomainError::Invalid(format!(
            "{field} must be at most {max} bytes of UTF-8 (got {n})"
        ))),
        _ => Ok(value.to_string()),
    }
}

/// Trims `value`; blank means "none". At most `max` bytes.
fn optional(field: &str, value: &str, max: usize) -> Result<Option<String>, DomainError> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    required(field, value, max).map(Some)
}

pub fn request(value: &str) -> Result<String, DomainError> {
    required("request", value, MAX_REQUEST)
}

pub fn description(value: &str) -> Result<Option<String>, DomainError> {
    optional("description", value, MAX_DESCRIPTION)
}

pub fn queue(value: &str) -> Result<String, DomainError> {
    required("queue", value, MAX_QUEUE)
}

pub fn reference(value: &str) -> Result<String, DomainError> {
    required("reference", value, MAX_REFERENCE)
}

pub fn comment(value: &str) -> Result<String, DomainError> {
    required("comment", value, MAX_COMMENT)
}

pub fn user_id(value: &str) -> Result<String, DomainError> {
    required("user id", value, MAX_USER_ID)
}

pub fn reason(value: Option<&str>) -> Result<Option<String>, DomainError> {
    value.map_or(Ok(None), |value| optional("reason", value, MAX_REASON))
}

/// Lower-cased, trimmed, inner whitespace collapsed to one `-`, so "Needs
/// Triage" and "needs-triage" are the same tag; then only `[a-z0-9-_.:]`.
pub fn tag(value: &str) -> Result<String, DomainError> {
    let normalised = value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-")
        .to_lowercase();
    let tag = required("tag", &normalised, MAX_TAG)?;
    if let Some(bad) = tag
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.:".contains(*c)))
    {
        return Err(DomainError::Invalid(format!(
            "tag {tag:?} may only contain a-z, 0-9, '-', '_', '.' and ':' (found {bad:?})"
        )));
    }
    Ok(tag)
}

/// Normalised, sorted, without duplicates (how many a ticket may hold is
/// `TicketLimits::tags`).
pub fn tags(values: &[String]) -> Result<Vec<String>, DomainError> {
    let mut tags = values
        .iter()
        .map(|value| tag(value))
        .collect::<Result<Vec<_>, _>>()?;
    tags.sort();
    tags.dedup();
    Ok(tags)
}

/// An attachment's fields, ready to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidAttachment {
    pub name: String,
    pub url: String,
    pub mime_type: Option<String>,
    pub size: Option<i64>,
}

/// Only web links and paths on our own server: no `javascript:` or `file:`
/// URLs that a browser would act on when a user clicks the attachment.
pub fn attachment(
    name: &str,
    url: &str,
    mime_type: Option<&str>,
    size: Option<i64>,
) -> Result<ValidAttachment, DomainError> {
    let name = required("attachment name", name, MAX_ATTACHMENT_NAME)?;
    let url = required("attachment url", url, MAX_URL)?;
    if !["http://", "https://", "/"]
        .iter()
        .any(|prefix| url.starts_with(prefix))
    {
        return Err(DomainError::invalid(
            "attachment url must start with http://, https:// or /",
        ));
    }
    let mime_type = mime_type.map_or(Ok(None), |m| optional("mime type", m, MAX_MIME_TYPE))?;
    if size.is_some_and(|size| size < 0) {
        return Err(DomainError::invalid("attachment size must not be negative"));
    }
    Ok(ValidAttachment {
        name,
        url,
        mime_type,
        size,
    })
}
