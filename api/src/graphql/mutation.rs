//! The `Mutation` root: every ticket mutation is one [`Command`] through the
//! [`CommandService`](crate::CommandService). A refused command is a result
//! with `success: false` and the domain's `errorCode`; only a failure of the
//! server itself is a GraphQL error (generic, its detail in the log).

use async_graphql::{Context, Object};
use chrono::Utc;
use domain::Command;
use serde_json::json;
use uuid::Uuid;

use super::inputs::{AttachmentInput, CreateSupportTicketInput, UpdateSupportTicketInput};
use super::outcome::{result, run, MutationResult};
use super::query::ticket_id;
use super::types::{int, SupportTicketMutationResult};
use super::{api, viewer};
use crate::error::ApiError;

pub struct Mutation;

#[Object]
impl Mutation {
    async fn create_support_ticket(
        &self,
        ctx: &Context<'_>,
        input: CreateSupportTicketInput,
        idempotency_key: Option<String>,
    ) -> MutationResult {
        let viewer = viewer(ctx)?;
        let api = api(ctx);
        if let Err(limited) = api.rates.mutation(viewer.id()) {
            return Ok(SupportTicketMutationResult::rate_limited(limited));
        }
        let done = api
            .commands
            .create(
                viewer.actor.clone(),
                input.request,
                input.description,
                input
                    .priority
                    .unwrap_or(super::types::TicketPriority::Medium)
                    .into(),
                input
                    .queue
                    .unwrap_or_else(|| api.settings.default_queue.clone()),
                input.tags.unwrap_or_default(),
                idempotency_key.filter(|k| !k.trim().is_empty()),
                Utc::now(),
            )
            .await;
        result(api, viewer, done).await
    }

    async fn update_support_ticket(
        &self,
        ctx: &Context<'_>,
        id: String,
        input: UpdateSupportTicketInput,
        expected_version: Option<i32>,
        idempotency_key: Option<String>,
    ) -> MutationResult {
        let command = Command::Update {
            request: input.request,
            description: input.description,
        };
        run(
            ctx,
            &id,
            command,
            expected_version,
            idempotency_key,
            json!({}),
        )
        .await
    }

    /// The assignee must be a known user with role AGENT or ADMIN.
    async fn assign_support_ticket(
        &self,
        ctx: &Context<'_>,
        id: String,
        assignee_id: String,
        expected_version: Option<i32>,
        idempotency_key: Option<String>,
    ) -> MutationResult {
        viewer(ctx)?;
        let assignee_roles = api(ctx)
            .users
            .lookup(assignee_id.trim())
            .await
            .map_err(ApiError::from)?
            .map(|p| p.roles);
        let command = Command::Assign {
            assignee_id: assignee_id.trim().to_string(),
            assignee_roles,
        };
        run(
            ctx,
            &id,
            command,
            expected_version,
            idempotency_key,
            json!({}),
        )
        .await
    }

    async fn unassign_support_ticket(
        &self,
        ctx: &Context<'_>,
        id: String,
        expected_version: Option<i32>,
        idempotency_key: Option<String>,
    ) -> MutationResult {
        run(
            ctx,
            &id,
            Command::Unassign,
            expected_version,
            idempotency_key,
            json!({}),
        )
        .await
    }

    /// A `comment` is added as a public comment after the status change.
    async fn update_support_ticket_status(
        &self,
        ctx: &Context<'_>,
        id: String,
        status: super::types::TicketStatus,
        comment: Option<String>,
        expected_version: Option<i32>,
        idempotency_key: Option<String>,
    ) -> MutationResult {
        let command = Command::ChangeStatus {
            status: status.into(),
            comment: comment.map(|c| (Uuid::new_v4(), c)),
        };
        run(
            ctx,
            &id,
            command,
            expected_version,
            idempotency_key,
            json!({}),
        )
        .await
    }

    async fn update_support_ticket_priority(
        &self,
        ctx: &Context<'_>,
        id: String,
        priority: super::types::TicketPriority,
        expected_version: Option<i32>,
        idempotency_key: Option<String>,
    ) -> MutationResult {
        let command = Command::ChangePriority {
            priority: priority.into(),
        };
        run(
            ctx,
            &id,
            command,
            expected_version,
            idempotency_key,
            json!({}),
        )
        .await
    }

    async fn comment_on_support_ticket(
        &self,
        ctx: &Context<'_>,
        id: String,
        comment: String,
        #[graphql(default_with = "Some(false)")] internal: Option<bool>,
        expected_version: Option<i32>,
        idempotency_key: Option<String>,
    ) -> MutationResult {
        let command = Command::Comment {
            comment_id: Uuid::new_v4(),
            body: comment,
            internal: internal.unwrap_or(false),
        };
        run(
            ctx,
            &id,
            command,
            expected_version,
            idempotency_key,
            json!({}),
        )
        .await
    }

    async fn add_support_ticket_attachment(
        &self,
        ctx: &Context<'_>,
        id: String,
        attachment: AttachmentInput,
        expected_version: Option<i32>,
        idempotency_key: Option<String>,
    ) -> MutationResult {
        let command = Command::AddAttachment {
            attachment_id: Uuid::new_v4(),
            name: attachment.name,
            url: attachment.url,
            mime_type: attachment.mime_type,
            size: attachment.size.map(i64::from),
        };
        run(
            ctx,
            &id,
            command,
            expected_version,
            idempotency_key,
            json!({}),
        )
        .await
    }

    async fn add_support_ticket_tag(
        &self,
        ctx: &Context<'_>,
        id: String,
        tag: String,
        expected_version: Option<i32>,
        idempotency_key: Option<String>,
    ) -> MutationResult {
        run(
            ctx,
            &id,
            Command::AddTag { tag },
            expected_version,
            idempotency_key,
            json!({}),
        )
        .await
    }

    async fn remove_support_ticket_tag(
        &self,
        ctx: &Context<'_>,
        id: String,
        tag: String,
        expected_version: Option<i32>,
        idempotency_key: Option<String>,
    ) -> MutationResult {
        run(
            ctx,
            &id,
            Command::RemoveTag { tag },
            expected_version,
            idempotency_key,
            json!({}),
        )
        .await
    }

    /// Recorded on both tickets.
    async fn relate_support_tickets(
        &self,
        ctx: &Context<'_>,
        id: String,
        related_id: String,
        expected_version: Option<i32>,
        idempotency_key: Option<String>,
    ) -> MutationResult {
        let viewer = viewer(ctx)?;
        let api = api(ctx);
        let Some(related_id) = ticket_id(api, &related_id).await? else {
            return Ok(SupportTicketMutationResult::rejected(
                "INVALID",
                "the related ticket does not exist",
            ));
        };
        let related = api
            .commands
            .related_ticket(&viewer.actor, related_id)
            .await
            .map_err(ApiError::from)?;
        run(
            ctx,
            &id,
            Command::Relate {
                related_id,
                related,
            },
            expected_version,
            idempotency_key,
            json!({}),
        )
        .await
    }

    async fn unrelate_support_tickets(
        &self,
        ctx: &Context<'_>,
        id: String,
        related_id: String,
        expected_version: Option<i32>,
        idempotency_key: Option<String>,
    ) -> MutationResult {
        let viewer = viewer(ctx)?;
        let api = api(ctx);
        let Some(related_id) = ticket_id(api, &related_id).await? else {
            return Ok(SupportTicketMutationResult::rejected(
                "INVALID",
                "the related ticket does not exist",
            ));
        };
        let related = api
            .commands
            .related_ticket(&viewer.actor, related_id)
            .await
            .map_err(ApiError::from)?;
        run(
            ctx,
            &id,
            Command::Unrelate {
                related_id,
                related,
            },
            expected_version,
            idempotency_key,
            json!({}),
        )
        .await
    }

    /// `userId` defaults to the caller.
    async fn watch_support_ticket(
        &self,
        ctx: &Context<'_>,
        id: String,
        user_id: Option<String>,
        idempotency_key: Option<String>,
        expected_version: Option<i32>,
    ) -> MutationResult {
        let user_id =
            user_id.unwrap_or_else(|| viewer(ctx).map(|v| v.id().to_string()).unwrap_or_default());
        run(
            ctx,
            &id,
            Command::Watch { user_id },
            expected_version,
            idempotency_key,
            json!({}),
        )
        .await
    }

    /// `userId` defaults to the caller.
    async fn unwatch_support_ticket(
        &self,
        ctx: &Context<'_>,
        id: String,
        user_id: Option<String>,
        idempotency_key: Option<String>,
        expected_version: Option<i32>,
    ) -> MutationResult {
        let user_id =
            user_id.unwrap_or_else(|| viewer(ctx).map(|v| v.id().to_string()).unwrap_or_default());
        run(
            ctx,
            &id,
            Command::Unwatch { user_id },
            expected_version,
            idempotency_key,
            json!({}),
        )
        .await
    }

    async fn move_support_ticket(
        &self,
        ctx: &Context<'_>,
        id: String,
        queue: String,
        expected_version: Option<i32>,
        idempotency_key: Option<String>,
    ) -> MutationResult {
        run(
            ctx,
            &id,
            Command::Move { queue },
            expected_version,
            idempotency_key,
            json!({}),
        )
        .await
    }

    /// ADMIN only; the ticket stays readable with `deleted: true`.
    async fn delete_support_ticket(
        &self,
        ctx: &Context<'_>,
        id: String,
        reason: Option<String>,
        expected_version: Option<i32>,
        idempotency_key: Option<String>,
    ) -> MutationResult {
        let metadata = match &reason {
            Some(r) => json!({ "reason": r }),
            None => json!({}),
        };
        run(
            ctx,
            &id,
            Command::Delete { reason },
            expected_version,
            idempotency_key,
            metadata,
        )
        .await
    }

    /// Marks the caller's notifications `ids` read; ids of other inboxes or
    /// unknown ones are ignored. Returns how many were unread. An id that is
    /// not a UUID is refused (`INVALID`) and nothing is marked.
    async fn mark_notifications_read(
        &self,
        ctx: &Context<'_>,
        ids: Vec<String>,
    ) -> async_graphql::Result<i32> {
        mark(ctx, ids, Mark::Read).await
    }

    /// Marks the caller's notifications `ids` unread again; ids of others'
    /// notifications change nothing. Returns how many were read.
    async fn mark_notifications_unread(
        &self,
        ctx: &Context<'_>,
        ids: Vec<String>,
    ) -> async_graphql::Result<i32> {
        mark(ctx, ids, Mark::Unread).await
    }

    /// Marks every notification of the caller read. Returns how many were unread.
    async fn mark_all_notifications_read(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        let viewer = viewer(ctx)?;
        api(ctx)
            .rates
            .mutation(viewer.id())
            .map_err(ApiError::RateLimited)?;
        let marked = projections::notifications::mark_all_read(&api(ctx).write_db, viewer.id())
            .await
            .map_err(ApiError::from)?;
        wake_inbox_feed(ctx);
        Ok(int(marked))
    }

    /// Deletes the caller's notifications `ids`: gone from every query and
    /// count, for good. Ids of others' notifications change nothing. Returns
    /// how many were deleted.
    async fn delete_notifications(
        &self,
        ctx: &Context<'_>,
        ids: Vec<String>,
    ) -> async_graphql::Result<i32> {
        mark(ctx, ids, Mark::Delete).await
    }

    /// Changes the caller's notification preferences (a list left out keeps
    /// its value), recorded as an event of their own stream.
    async fn update_notification_preferences(
        &self,
        ctx: &Context<'_>,
        input: super::inbox::NotificationPreferencesInput,
    ) -> async_graphql::Result<super::inbox::NotificationPreferences> {
        let viewer = viewer(ctx)?;
        api(ctx)
            .rates
            .mutation(viewer.id())
            .map_err(ApiError::RateLimited)?;
        let change = input.change()?;
        let (preferences, position) = api(ctx)
            .users
            .set_preferences(viewer.id(), change)
            .await
            .map_err(ApiError::from)?;
        if let Some(position) = position {
            api(ctx).note_write(viewer.id(), position);
        }
        Ok(preferences.into())
    }

    /// Publishes an announcement to its audience (ADMIN only). Retried with
    /// the same `idempotencyKey`, it publishes nothing twice and answers
    /// with the first one.
    async fn publish_announcement(
        &self,
        ctx: &Context<'_>,
        input: super::inbox::AnnouncementInput,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<super::inbox::Announcement> {
        let viewer = viewer(ctx)?;
        api(ctx)
            .rates
            .mutation(viewer.id())
            .map_err(ApiError::RateLimited)?;
        let (announcement, position) = crate::announcements::publish(
            &*api(ctx).store,
            &viewer.actor,
            input.draft()?,
            idempotency_key.as_deref().filter(|k| !k.trim().is_empty()),
        )
        .await
        .map_err(ApiError::from)?;
        api(ctx).note_write(viewer.id(), position);
        Ok(announcement.into())
    }

    /// AGENT and ADMIN: the caller is viewing or typing on a ticket they may
    /// see, or `LEFT` it (see `graphql::presence`).
    async fn set_ticket_presence(
        &self,
        ctx: &Context<'_>,
        ticket_id: String,
        state: super::presence::PresenceState,
    ) -> async_graphql::Result<bool> {
        super::presence::set(ctx, ticket_id, state).await
    }

    /// One action on up to 500 tickets (see `graphql::bulk`).
    async fn bulk_update_support_tickets(
        &self,
        ctx: &Context<'_>,
        ids: Vec<String>,
        action: super::bulk::BulkTicketAction,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<super::bulk::BulkUpdateResult> {
        super::bulk::run(ctx, ids, action, idempotency_key).await
    }
}

/// How `mark` changes the notifications it is given.
enum Mark {
    Read,
    Unread,
    Delete,
}

/// `markNotificationsRead`, `markNotificationsUnread` and
/// `deleteNotifications`: the caller's own notifications among `ids`, at
/// most 500 of them, each a notification id.
async fn mark(ctx: &Context<'_>, ids: Vec<String>, how: Mark) -> async_graphql::Result<i32> {
    let viewer = viewer(ctx)?;
    api(ctx)
        .rates
        .mutation(viewer.id())
        .map_err(ApiError::RateLimited)?;
    let parsed = super::inbox::notification_ids(ids)?;
    let db = &api(ctx).write_db;
    let marked = match how {
        Mark::Read => projections::notifications::mark_read(db, viewer.id(), &parsed).await,
        Mark::Unread => projections::notifications::mark_unread(db, viewer.id(), &parsed).await,
        Mark::Delete => projections::notifications::delete(db, viewer.id(), &parsed).await,
    }
    .map_err(ApiError::from)?;
    wake_inbox_feed(ctx);
    Ok(int(marked))
}

/// Tells this node's inbox feed a change was just committed, so it is
/// pushed at once (other nodes find it when they next look).
fn wake_inbox_feed(ctx: &Context<'_>) {
    if let Some(feed) = &api(ctx).inbox_changes {
        feed.wake();
    }
}
