//! How an announcement is stored: `AnnouncementPublished`, schema 1, whose
//! payload is the [`Announcement`] itself (camelCase JSON).

use serde::Deserialize;
use serde_json::Value;

use super::{DecodeError, EncodedEvent};
use crate::announcement::Announcement;

/// The stored name of a published announcement.
pub const PUBLISHED: &str = "AnnouncementPublished";

/// The schema version [`encode`] writes.
pub const SCHEMA_VERSION: i32 = 1;

pub fn encode(announcement: &Announcement) -> EncodedEvent {
    EncodedEvent {
        event_type: PUBLISHED,
        schema_version: SCHEMA_VERSION,
        // Cannot fail: strings, enums, a uuid and a time.
        data: serde_json::to_value(announcement).unwrap_or(Value::Null),
    }
}

pub fn decode(
    event_type: &str,
    schema_version: i32,
    data: &Value,
) -> Result<Announcement, DecodeError> {
    if event_type != PUBLISHED {
        return Err(DecodeError::UnknownType(event_type.to_string()));
    }
    if schema_version != SCHEMA_VERSION {
        return Err(DecodeError::UnknownVersion {
            event_type: PUBLISHED.to_string(),
            version: schema_version,
        });
    }
    Announcement::deserialize(data).map_err(|e| DecodeError::BadPayload {
        event_type: PUBLISHED.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::Role;

    /// An announcement encodes under its stored name and decodes to itself.
    #[test]
    fn an_announcement_round_trips() {
        let announcement = Announcement {
            id: uuid::Uuid::from_u128(7),
            title: "Maintenance".into(),
            body: "Tonight".into(),
            roles: vec![Role::Agent],
            teams: vec!["billing".into()],
            published_by: "dave".into(),
            published_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        };
        let encoded = encode(&announcement);
        assert_eq!(encoded.event_type, "AnnouncementPublished");
        assert_eq!(
            decode(encoded.event_type, 1, &encoded.data),
            Ok(announcement)
        );
        assert!(decode("AnnouncementPublished", 2, &encoded.data).is_err());
    }
}
