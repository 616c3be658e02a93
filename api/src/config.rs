//! Choosing a backend from the configured URL.

use std::sync::Arc;

use store::{EventStore, StoreError};

/// The embedded default: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://tickets.db";

/// Opens the event store named by `url`: `sqlite://path`, `sqlite::memory:` or
/// `postgres://...` (`postgresql://` too). Migrations are applied on open.
pub async fn open_store(url: &str) -> Result<Arc<dyn EventStore>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(store::sqlite::SqliteEventStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(store::postgres::PostgresEventStore::connect(url).await?))
    } else {
        Err(StoreError::Invalid(format!(
            "unsupported database URL '{}': use sqlite://FILE or postgres://...",
            redact(url)
        )))
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A password in a database URL never reaches a message.
    #[test]
    fn redact_hides_the_password_only() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://tickets.db"), "sqlite://tickets.db");
    }

    /// An unknown scheme is a clear error, not a panic or a silent default.
    #[tokio::test]
    async fn an_unknown_database_scheme_is_refused() {
        let err = open_store("mysql://u:pw@h/db").await.err().expect("refused");
        assert!(matches!(err, StoreError::Invalid(ref m) if m.contains("mysql://u:***@h/db")));
    }
}
