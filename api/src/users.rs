//! Known users. auth.md: a profile is recorded from the token's claims the first
//! time a user is seen and whenever it changes; only a known AGENT or ADMIN can be
//! assigned a ticket. Profiles are events too (`user-<id>` streams), so the log
//! stays the one source of truth.

use std::sync::Arc;

use domain::codec::user::{self, UserEvent};
use store::{EventStore, ExpectedVersion, NewEvent, StoreError};
use uuid::Uuid;

pub use domain::UserProfile;

#[derive(Clone)]
pub struct UserDirectory {
    store: Arc<dyn EventStore>,
}

impl UserDirectory {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        UserDirectory { store }
    }

    /// The latest recorded profile of `id`.
    #[tracing::instrument(name = "look up user", skip(self), err)]
    pub async fn lookup(&self, id: &str) -> Result<Option<UserProfile>, StoreError> {
        Ok(self.latest(id).await?.map(|(_, p)| p))
    }

    async fn latest(&self, id: &str) -> Result<Option<(u64, UserProfile)>, StoreError> {
        let events = store::read_whole_stream(&*self.store, &domain::user_stream_name(id)).await?;
        let Some(last) = events.last() else {
            return Ok(None);
        };
        let UserEvent::ProfileRecorded(profile) =
            user::decode(&last.event_type, last.schema_version, &last.data)
                .map_err(|e| StoreError::Corrupt(format!("user profile event {}: {e}", last.id)))?;
        Ok(Some((last.version, profile)))
    }

    /// Records `profile` unless it is what is already recorded. Returns whether an
    /// event was appended. A concurrent recording of the same user wins quietly.
    #[tracing::instrument(name = "record user", skip_all, fields(user = %profile.id), err)]
    pub async fn record(&self, profile: &UserProfile) -> Result<bool, StoreError> {
        let current = self.latest(&profile.id).await?;
        let expected = match &current {
            Some((_, known)) if known == profile => return Ok(false),
            Some((version, _)) => ExpectedVersion::Exact(*version),
            None => ExpectedVersion::NoStream,
        };
        let encoded = user::encode(profile);
        let event = NewEvent {
            id: Uuid::new_v4(),
            event_type: encoded.event_type.into(),
            schema_version: encoded.schema_version,
            data: encoded.data,
            metadata: serde_json::json!({}),
        };
        match self
            .store
            .append(
                &domain::user_stream_name(&profile.id),
                expected,
                vec![event],
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
