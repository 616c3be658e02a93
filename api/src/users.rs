//! Known users. auth.md: a profile is recorded from the token's claims the first
//! time a user is seen and whenever it changes; only a known AGENT or ADMIN can be
//! assigned a ticket. Profiles are events too (`user-<id>` streams), so the log
//! stays the one source of truth.

use std::sync::Arc;

use domain::Role;
use serde::{Deserialize, Serialize};
use store::{EventStore, ExpectedVersion, NewEvent, StoreError};
use uuid::Uuid;

const PROFILE_RECORDED: &str = "UserProfileRecorded";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserProfile {
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub roles: Vec<Role>,
    pub teams: Vec<String>,
}

impl UserProfile {
    pub fn actor(&self) -> domain::Actor {
        domain::Actor {
            user_id: self.id.clone(),
            roles: self.roles.clone(),
            teams: self.teams.clone(),
        }
    }
}

pub fn user_stream(id: &str) -> String {
    format!("user-{id}")
}

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
        let events = store::read_whole_stream(&*self.store, &user_stream(id)).await?;
        let Some(last) = events.last() else {
            return Ok(None);
        };
        let profile = serde_json::from_value(last.data.clone())
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
        let data = serde_json::to_value(profile)
            .map_err(|e| StoreError::Invalid(format!("user profile: {e}")))?;
        let event = NewEvent {
            id: Uuid::new_v4(),
            event_type: PROFILE_RECORDED.into(),
            schema_version: 1,
            data,
            metadata: serde_json::json!({}),
        };
        match self
            .store
            .append(&user_stream(&profile.id), expected, vec![event])
            .await
        {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
