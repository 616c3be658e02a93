//! Known users. auth.md: a profile is recorded from the token's claims the first
//! time a user is seen and whenever it changes; only a known AGENT or ADMIN can be
//! assigned a ticket. Profiles are events too (`user-<id>` streams), so the log
//! stays the one source of truth.

use std::sync::Arc;

use domain::codec::user::{self, UserEvent};
use domain::notify::{NotificationPreferences, PreferencesChange};
use domain::DomainError;
use store::{EventStore, ExpectedVersion, NewEvent, Position, StoreError};
use uuid::Uuid;

/// A user's stream folded (see [`UserDirectory`]).
#[derive(Default)]
struct UserStream {
    version: Option<u64>,
    profile: Option<UserProfile>,
    preferences: NotificationPreferences,
}

/// Why preferences were not set.
#[derive(Debug, thiserror::Error)]
pub enum PreferencesError {
    #[error(transparent)]
    Invalid(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

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
        Ok(self.fold(id).await?.profile)
    }

    /// The user's stream folded: its version, the last profile and the last
    /// notification preferences recorded.
    async fn fold(&self, id: &str) -> Result<UserStream, StoreError> {
        let events = store::read_whole_stream(&*self.store, &domain::user_stream_name(id)).await?;
        let mut folded = UserStream::default();
        for event in &events {
            folded.version = Some(event.version);
            match user::decode(&event.event_type, event.schema_version, &event.data)
                .map_err(|e| StoreError::Corrupt(format!("user event {}: {e}", event.id)))?
            {
                UserEvent::ProfileRecorded(profile) => folded.profile = Some(profile),
                UserEvent::PreferencesSet(preferences) => folded.preferences = preferences,
            }
        }
        Ok(folded)
    }

    /// The user's notification preferences as recorded in their stream.
    pub async fn preferences(&self, id: &str) -> Result<NotificationPreferences, StoreError> {
        Ok(self.fold(id).await?.preferences)
    }

    /// Applies `change` to the user's notification preferences and records
    /// the result as a `NotificationPreferencesSet` event of their stream
    /// (nothing when it changes nothing). Returns the preferences and the
    /// position of the event, if one was appended. A concurrent change of
    /// the stream is retried on the new state.
    #[tracing::instrument(name = "set notification preferences", skip(self, change), err)]
    pub async fn set_preferences(
        &self,
        id: &str,
        change: PreferencesChange,
    ) -> Result<(NotificationPreferences, Option<Position>), PreferencesError> {
        for _ in 0..5 {
            let folded = self.fold(id).await?;
            let next = folded.preferences.changed(change.clone())?;
            if next == folded.preferences {
                return Ok((next, None));
            }
            match self
                .append(id, &folded, user::encode_preferences(&next))
                .await
            {
                Ok(appended) => return Ok((next, Some(appended.last_position))),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(PreferencesError::Store(StoreError::Unavailable(
            "the user's stream kept changing; try again".into(),
        )))
    }

    /// Appends one user event to `id`'s stream, expecting it as `folded`
    /// read it (a conflict means it changed since).
    async fn append(
        &self,
        id: &str,
        folded: &UserStream,
        encoded: domain::EncodedEvent,
    ) -> Result<store::AppendResult, StoreError> {
        let expected = match folded.version {
            Some(version) => ExpectedVersion::Exact(version),
            None => ExpectedVersion::NoStream,
        };
        let event = NewEvent {
            id: Uuid::new_v4(),
            event_type: encoded.event_type.into(),
            schema_version: encoded.schema_version,
            data: encoded.data,
            metadata: serde_json::json!({}),
        };
        self.store
            .append(&domain::user_stream_name(id), expected, vec![event])
            .await
    }

    /// Records `profile` unless it is what is already recorded. Returns whether an
    /// event was appended. A concurrent recording of the same user wins quietly.
    #[tracing::instrument(name = "record user", skip_all, fields(user = %profile.id), err)]
    pub async fn record(&self, profile: &UserProfile) -> Result<bool, StoreError> {
        let current = self.fold(&profile.id).await?;
        if current.profile.as_ref() == Some(profile) {
            return Ok(false);
        }
        match self
            .append(&profile.id, &current, user::encode(profile))
            .await
        {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
