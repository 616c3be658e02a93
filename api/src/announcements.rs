//! Publishing an announcement: decided by `domain::announcement` (ADMIN
//! only), recorded as the one event of its own `announcement-<id>` stream.
//!
//! A retry with the same idempotency key publishes nothing twice: the id is
//! derived from the publisher and the key, so the retry's append finds the
//! stream already there and answers with what the first call published.

use chrono::Utc;
use domain::announcement::{announcement_stream_name, Announcement, Draft};
use domain::{Actor, DomainError};
use store::{EventStore, ExpectedVersion, NewEvent, Position, StoreError};
use uuid::Uuid;

use crate::command_service::check_key_length;

/// Namespace of announcement ids derived from idempotency keys.
const NAMESPACE: Uuid = Uuid::from_u128(0x616e_6e6f_756e_6365_6d65_6e74_7300_0001);

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Refused(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Publishes `draft` as `actor`; returns the announcement and the log
/// position of its event.
#[tracing::instrument(name = "publish announcement", skip(store, draft), fields(user = %actor.user_id), err)]
pub async fn publish(
    store: &dyn EventStore,
    actor: &Actor,
    draft: Draft,
    idempotency_key: Option<&str>,
) -> Result<(Announcement, Position), PublishError> {
    check_key_length(idempotency_key)?;
    let id = match idempotency_key {
        Some(key) => Uuid::new_v5(&NAMESPACE, format!("{}/{key}", actor.user_id).as_bytes()),
        None => Uuid::new_v4(),
    };
    let announcement = Announcement::publish(actor, id, draft, Utc::now())?;
    let stream = announcement_stream_name(id);
    let encoded = domain::codec::announcement::encode(&announcement);
    let event = NewEvent {
        id: Uuid::new_v5(&NAMESPACE, id.as_bytes()),
        event_type: encoded.event_type.into(),
        schema_version: encoded.schema_version,
        data: encoded.data,
        metadata: serde_json::json!({}),
    };
    match store
        .append(&stream, ExpectedVersion::NoStream, vec![event])
        .await
    {
        Ok(appended) => Ok((announcement, appended.last_position)),
        // The key was used before: answer with what it published.
        Err(StoreError::Conflict { .. }) => {
            let events = store::read_whole_stream(store, &stream).await?;
            let first = events
                .first()
                .ok_or_else(|| StoreError::Corrupt(format!("{stream} has no event")))?;
            let published = domain::codec::announcement::decode(
                &first.event_type,
                first.schema_version,
                &first.data,
            )
            .map_err(|e| StoreError::Corrupt(format!("{stream}: {e}")))?;
            Ok((published, first.position))
        }
        Err(e) => Err(e.into()),
    }
}
