//! How much one ticket may hold. Text fields are bounded in bytes
//! (`validate`); these caps bound how many of each item a ticket collects,
//! so a ticket's state, and every copy of it the server keeps (the fan-out's
//! recent events, a history step), is bounded in bytes too.

use crate::error::DomainError;

/// Per-ticket caps. A command that would pass one is `Invalid`, naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketLimits {
    pub comments: usize,
    pub attachments: usize,
    pub watchers: usize,
    pub relations: usize,
    pub tags: usize,
}

impl Default for TicketLimits {
    fn default() -> Self {
        TicketLimits {
            comments: 500,
            attachments: 100,
            watchers: 100,
            relations: 100,
            tags: 50,
        }
    }
}

impl TicketLimits {
    /// `Ok` while a ticket holding `held` items of `what` may take one more.
    pub(crate) fn room_for(what: &str, held: usize, cap: usize) -> Result<(), DomainError> {
        Self::at_most(what, held.saturating_add(1), cap)
    }

    /// `Ok` when a ticket may hold `count` items of `what`.
    pub(crate) fn at_most(what: &str, count: usize, cap: usize) -> Result<(), DomainError> {
        if count > cap {
            return Err(DomainError::Invalid(format!(
                "a ticket may have at most {cap} {what}"
            )));
        }
        Ok(())
    }
}
