//! The one error type of the domain. Each variant says how a caller should
//! treat it; [`DomainError::code`] is the stable `errorCode` of the contract.

/// Why a command was refused. Nothing is appended in every case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The ticket does not exist, or the actor may not even know it exists.
    /// Callers answer `NOT_FOUND` in both cases so that existence never leaks.
    #[error("ticket not found")]
    NotFound,
    /// The actor sees the ticket but their role does not allow this command.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The input breaks a business rule (length, format, workflow...). The
    /// message is safe to show to the user.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The ticket was deleted; it accepts no further command.
    #[error("the ticket has been deleted")]
    Deleted,
    /// A `Create` targeted an id that already has a history. Reported as
    /// `CONFLICT`, like a stale expected version in the store, because both
    /// mean "someone else got there first".
    #[error("the ticket already exists")]
    AlreadyExists,
}

impl DomainError {
    /// The stable code of the contract's `errorCode` / `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::NotFound => "NOT_FOUND",
            DomainError::Forbidden(_) => "FORBIDDEN",
            DomainError::Invalid(_) => "INVALID",
            DomainError::Deleted => "DELETED",
            DomainError::AlreadyExists => "CONFLICT",
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> DomainError {
        DomainError::Invalid(message.into())
    }

    pub fn forbidden(message: impl Into<String>) -> DomainError {
        DomainError::Forbidden(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_a_code_of_the_contract() {
        let codes: Vec<_> = [
            DomainError::NotFound,
            DomainError::Forbidden("x".into()),
            DomainError::Invalid("x".into()),
            DomainError::Deleted,
            DomainError::AlreadyExists,
        ]
        .iter()
        .map(DomainError::code)
        .collect();
        assert_eq!(
            codes,
            ["NOT_FOUND", "FORBIDDEN", "INVALID", "DELETED", "CONFLICT"]
        );
    }

    #[test]
    fn an_error_displays_a_human_message() {
        assert_eq!(
            DomainError::Invalid("the request is empty".into()).to_string(),
            "invalid: the request is empty"
        );
    }
}
