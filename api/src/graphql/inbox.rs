//! The notification centre's contract types beyond `Notification` itself
//! (schema-next.graphql): inbox changes, preferences and announcements,
//! and the steps their resolvers share.

use async_graphql::{ComplexObject, Context, Enum, InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use domain::notify::{self, PreferencesChange};
use projections::notifications::changes::{Change, ChangeKind};
use uuid::Uuid;

use super::pending::{Notification, NotificationReason};
use super::types::{EventType, Role, User};
use super::user_by_id;
use crate::error::ApiError;

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum NotificationChangeKind {
    Added,
    Read,
    Unread,
    Deleted,
}

/// One change to the caller's inbox.
#[derive(SimpleObject, Clone, Debug)]
pub struct NotificationChange {
    pub kind: NotificationChangeKind,
    /// The new notification, for ADDED (null if it was deleted since).
    pub notification: Option<Notification>,
    /// The notifications this change is about.
    pub ids: Vec<String>,
    /// The caller's unread count right after this change.
    pub unread_count: i32,
    /// Where this change stands in the feed: pass the last one seen as
    /// `notificationsChanged(after:)` to get every change since.
    pub cursor: String,
}

impl NotificationChange {
    /// The contract's form of a feed row of the caller's inbox (`None` for
    /// an announcement's row); an ADDED row reads its notification.
    pub async fn of(
        db: &projections::ReadDb,
        user: &str,
        change: &Change,
    ) -> Result<Option<NotificationChange>, ApiError> {
        let kind = match change.kind {
            ChangeKind::Added => NotificationChangeKind::Added,
            ChangeKind::Read => NotificationChangeKind::Read,
            ChangeKind::Unread => NotificationChangeKind::Unread,
            ChangeKind::Deleted => NotificationChangeKind::Deleted,
            ChangeKind::Announced => return Ok(None),
        };
        let notification = match (change.kind, change.ids.first()) {
            (ChangeKind::Added, Some(id)) => {
                match projections::notifications::notification(db, user, *id).await? {
                    Some(found) => Some(Notification::try_from(found).map_err(ApiError::internal)?),
                    None => None,
                }
            }
            _ => None,
        };
        Ok(Some(NotificationChange {
            kind,
            notification,
            ids: change.ids.iter().map(Uuid::to_string).collect(),
            unread_count: super::types::int(change.unread_count),
            cursor: change.seq.to_string(),
        }))
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct NotificationPreferences {
    pub muted_event_types: Vec<EventType>,
    pub muted_reasons: Vec<NotificationReason>,
    /// No QUEUE notifications from these queues.
    pub muted_queues: Vec<String>,
}

impl From<notify::NotificationPreferences> for NotificationPreferences {
    fn from(p: notify::NotificationPreferences) -> Self {
        NotificationPreferences {
            muted_event_types: p.muted_event_types.into_iter().map(Into::into).collect(),
            muted_reasons: p.muted_reasons.into_iter().map(Into::into).collect(),
            muted_queues: p.muted_queues,
        }
    }
}

/// A field left out (null) keeps its current value.
#[derive(InputObject, Clone, Debug)]
pub struct NotificationPreferencesInput {
    pub muted_event_types: Option<Vec<EventType>>,
    pub muted_reasons: Option<Vec<NotificationReason>>,
    pub muted_queues: Option<Vec<String>>,
}

impl NotificationPreferencesInput {
    pub fn change(self) -> Result<PreferencesChange, ApiError> {
        super::bounds::items(
            "mutedQueues",
            self.muted_queues.as_ref(),
            notify::MAX_MUTED_QUEUES,
        )?;
        Ok(PreferencesChange {
            muted_event_types: self
                .muted_event_types
                .map(|types| types.into_iter().map(Into::into).collect()),
            muted_reasons: self
                .muted_reasons
                .map(|reasons| reasons.into_iter().map(Into::into).collect()),
            muted_queues: self.muted_queues,
        })
    }
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Announcement {
    pub id: String,
    pub title: String,
    pub body: String,
    /// Audience: users with any of these roles (empty: everyone).
    pub roles: Vec<Role>,
    /// And, when not empty, in any of these teams.
    pub teams: Vec<String>,
    pub created_date: DateTime<Utc>,
    #[graphql(skip)]
    pub published_by_id: String,
}

#[ComplexObject]
impl Announcement {
    async fn published_by(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        Ok(user_by_id(ctx, &self.published_by_id).await?)
    }
}

impl From<domain::announcement::Announcement> for Announcement {
    fn from(a: domain::announcement::Announcement) -> Self {
        Announcement {
            id: a.id.to_string(),
            title: a.title,
            body: a.body,
            roles: a.roles.into_iter().map(Into::into).collect(),
            teams: a.teams,
            created_date: a.published_at,
            published_by_id: a.published_by,
        }
    }
}

#[derive(InputObject, Clone, Debug)]
pub struct AnnouncementInput {
    pub title: String,
    pub body: String,
    pub roles: Option<Vec<Role>>,
    pub teams: Option<Vec<String>>,
}

impl AnnouncementInput {
    pub fn draft(self) -> Result<domain::announcement::Draft, ApiError> {
        super::bounds::items(
            "teams",
            self.teams.as_ref(),
            domain::announcement::MAX_TEAMS,
        )?;
        Ok(domain::announcement::Draft {
            title: self.title,
            body: self.body,
            roles: self
                .roles
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            teams: self.teams.unwrap_or_default(),
        })
    }
}

/// The caller's notification ids among `ids` (at most `bounds::MAX_IDS`),
/// each a UUID, or `INVALID` and nothing changes.
pub fn notification_ids(ids: Vec<String>) -> Result<Vec<Uuid>, ApiError> {
    super::bounds::items("ids", Some(&ids), super::bounds::MAX_IDS)?;
    ids.iter()
        .map(|id| {
            Uuid::parse_str(id.trim()).map_err(|_| {
                ApiError::Invalid(format!(
                    "{} is not a notification id",
                    super::bounds::quoted(id)
                ))
            })
        })
        .collect()
}

/// A refused announcement or preferences change as the API answers it.
pub fn refused(e: domain::DomainError) -> ApiError {
    match e {
        domain::DomainError::Forbidden(message) => ApiError::Forbidden(message),
        domain::DomainError::Invalid(message) => ApiError::Invalid(message),
        other => ApiError::Invalid(other.to_string()),
    }
}

impl From<crate::users::PreferencesError> for ApiError {
    fn from(e: crate::users::PreferencesError) -> Self {
        match e {
            crate::users::PreferencesError::Invalid(e) => refused(e),
            crate::users::PreferencesError::Store(e) => e.into(),
        }
    }
}

impl From<crate::announcements::PublishError> for ApiError {
    fn from(e: crate::announcements::PublishError) -> Self {
        match e {
            crate::announcements::PublishError::Refused(e) => refused(e),
            crate::announcements::PublishError::Store(e) => e.into(),
        }
    }
}
