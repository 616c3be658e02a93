//! How user events are stored, as [`super`] does for ticket events: a stable
//! type name, a schema version and a JSON payload. A `user-<id>` stream holds
//! `UserProfileRecorded`, whose payload is the [`UserProfile`] itself, and
//! `NotificationPreferencesSet`, whose payload is the user's whole
//! [`NotificationPreferences`] after the change.
//!
//! Schema 1 is the only one so far. A payload's `roles` and `teams` may be
//! missing (read as none): every reader of profiles has always accepted that
//! shape, so stored events keep decoding everywhere.

use serde::Deserialize;
use serde_json::Value;

use super::{DecodeError, EncodedEvent};
use crate::actor::Role;
use crate::notify::NotificationPreferences;
use crate::user::UserProfile;

/// The stored name of a recorded profile.
pub const PROFILE_RECORDED: &str = "UserProfileRecorded";

/// The stored name of a change of notification preferences.
pub const PREFERENCES_SET: &str = "NotificationPreferencesSet";

/// The schema version [`encode`] and [`encode_preferences`] write.
pub const SCHEMA_VERSION: i32 = 1;

/// A user event as decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserEvent {
    ProfileRecorded(UserProfile),
    PreferencesSet(NotificationPreferences),
}

/// Whether a stored event of a `user-<id>` stream is one of [`UserEvent`].
pub fn is_user_event(event_type: &str) -> bool {
    event_type == PROFILE_RECORDED || event_type == PREFERENCES_SET
}

pub fn encode_preferences(preferences: &NotificationPreferences) -> EncodedEvent {
    EncodedEvent {
        event_type: PREFERENCES_SET,
        schema_version: SCHEMA_VERSION,
        // Cannot fail: lists of enums and strings.
        data: serde_json::to_value(preferences).unwrap_or(Value::Null),
    }
}

pub fn encode(profile: &UserProfile) -> EncodedEvent {
    EncodedEvent {
        event_type: PROFILE_RECORDED,
        schema_version: SCHEMA_VERSION,
        // Cannot fail: a profile is strings and enums.
        data: serde_json::to_value(profile).unwrap_or(Value::Null),
    }
}

pub fn decode(
    event_type: &str,
    schema_version: i32,
    data: &Value,
) -> Result<UserEvent, DecodeError> {
    if !is_user_event(event_type) {
        return Err(DecodeError::UnknownType(event_type.to_string()));
    }
    if schema_version != SCHEMA_VERSION {
        return Err(DecodeError::UnknownVersion {
            event_type: event_type.to_string(),
            version: schema_version,
        });
    }
    let bad = |e: serde_json::Error| DecodeError::BadPayload {
        event_type: event_type.to_string(),
        reason: e.to_string(),
    };
    if event_type == PREFERENCES_SET {
        return Ok(UserEvent::PreferencesSet(
            NotificationPreferences::deserialize(data).map_err(bad)?,
        ));
    }
    let stored = V1::deserialize(data).map_err(bad)?;
    Ok(UserEvent::ProfileRecorded(UserProfile {
        id: stored.id,
        first_name: stored.first_name,
        last_name: stored.last_name,
        email: stored.email,
        roles: stored.roles,
        teams: stored.teams,
    }))
}

/// The stored shape of schema 1.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V1 {
    id: String,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    roles: Vec<Role>,
    #[serde(default)]
    teams: Vec<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn profile() -> UserProfile {
        UserProfile {
            id: "alice".into(),
            first_name: Some("Alice".into()),
            last_name: None,
            email: Some("alice@example.com".into()),
            roles: vec![Role::Agent],
            teams: vec!["billing".into()],
        }
    }

    /// A profile encodes under its stored name and schema version and decodes
    /// to itself.
    #[test]
    fn a_recorded_profile_round_trips() {
        let encoded = encode(&profile());
        assert_eq!(encoded.event_type, "UserProfileRecorded");
        assert_eq!(encoded.schema_version, 1);
        assert_eq!(
            decode(encoded.event_type, encoded.schema_version, &encoded.data),
            Ok(UserEvent::ProfileRecorded(profile()))
        );
    }

    /// The payload is the profile's camelCase JSON, as stored events hold it.
    #[test]
    fn a_stored_profile_of_schema_1_decodes() {
        let stored = json!({
            "id": "alice", "firstName": "Alice", "lastName": null,
            "email": "alice@example.com", "roles": ["AGENT"], "teams": ["billing"],
        });
        assert_eq!(
            decode("UserProfileRecorded", 1, &stored),
            Ok(UserEvent::ProfileRecorded(profile()))
        );
    }

    /// A profile stored with only its id (and perhaps roles and teams) reads
    /// the missing fields as none.
    #[test]
    fn missing_optional_fields_of_a_stored_profile_read_as_none() {
        let Ok(UserEvent::ProfileRecorded(decoded)) =
            decode("UserProfileRecorded", 1, &json!({"id": "bob"}))
        else {
            panic!("not a profile");
        };
        assert_eq!(decoded.id, "bob");
        assert_eq!((decoded.first_name, decoded.email), (None, None));
        assert!(decoded.roles.is_empty() && decoded.teams.is_empty());
    }

    /// Preferences encode under their stored name and decode to themselves;
    /// a stored payload with lists left out reads them as empty.
    #[test]
    fn notification_preferences_round_trip() {
        let preferences = NotificationPreferences {
            muted_event_types: vec![crate::TicketEventType::TagAdded],
            muted_reasons: vec![crate::notify::Reason::Queue],
            muted_queues: vec!["billing".into()],
        };
        let encoded = encode_preferences(&preferences);
        assert_eq!(encoded.event_type, "NotificationPreferencesSet");
        assert_eq!(
            decode(encoded.event_type, 1, &encoded.data),
            Ok(UserEvent::PreferencesSet(preferences))
        );
        assert_eq!(
            decode(
                "NotificationPreferencesSet",
                1,
                &json!({"mutedReasons": ["WATCHING"]})
            ),
            Ok(UserEvent::PreferencesSet(NotificationPreferences {
                muted_reasons: vec![crate::notify::Reason::Watching],
                ..Default::default()
            }))
        );
    }

    /// Another event type, an unknown schema version or a payload without an
    /// id is an error, never a guess.
    #[test]
    fn an_unknown_type_version_or_payload_does_not_decode() {
        let data = encode(&profile()).data;
        assert!(matches!(
            decode("UserDeleted", 1, &data),
            Err(DecodeError::UnknownType(_))
        ));
        assert!(matches!(
            decode("UserProfileRecorded", 2, &data),
            Err(DecodeError::UnknownVersion { version: 2, .. })
        ));
        assert!(matches!(
            decode("UserProfileRecorded", 1, &json!({"roles": []})),
            Err(DecodeError::BadPayload { .. })
        ));
    }
}
