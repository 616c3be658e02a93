//! The notification centre's subscriptions, served from this node's tail of
//! the inbox change feed (`projections::notifications::changes`): every
//! change committed by any node, in `seq` order. With `after`, the changes
//! since that cursor are read from the table first; live changes are
//! subscribed to before that read, and those the read already returned are
//! skipped, so nothing is missed or sent twice.

use std::sync::Arc;

use futures::stream::{BoxStream, StreamExt};
use projections::notifications::changes::{self, Change, FeedError};
use tokio::sync::broadcast::error::RecvError;

use super::Active;
use crate::context::ApiContext;
use crate::error::ApiError;

/// Most changes a resume reads before it goes live: a client further
/// behind re-reads its inbox instead.
const MAX_REPLAY: usize = 10_000;
/// Changes read per query of a resume.
const PAGE: i64 = 500;

/// The feed rows of `recipient`'s inbox (`None`: the announcements), after
/// `after` when given, then live. A subscriber that falls behind the live
/// feed gets `LAGGED` with the cursor to resume from, and its stream ends.
pub(super) async fn changes(
    api: &ApiContext,
    operation: &'static str,
    recipient: Option<String>,
    after: Option<&str>,
) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<Change>>> {
    let Some(feed) = api.inbox_changes.clone() else {
        return Err(ApiError::NotImplemented(operation).into());
    };
    let after = after
        .map(|cursor| {
            cursor.trim().parse::<i64>().map_err(|_| {
                ApiError::Invalid(format!(
                    "{} is not a notification change cursor",
                    crate::graphql::bounds::quoted(cursor)
                ))
            })
        })
        .transpose()?;
    // Live first, so nothing committed during the replay is missed.
    let live = feed.subscribe();
    let mut replayed: Vec<Change> = vec![];
    let mut seen = after;
    if let Some(mut from) = after {
        match changes::check_kept(&api.read_db, from).await {
            Ok(()) => {}
            Err(FeedError::TooOld(_)) => return Err(too_old()),
            Err(FeedError::Query(e)) => return Err(ApiError::from(e).into()),
        }
        loop {
            let page = changes::after(&api.read_db, recipient.as_deref(), from, PAGE)
                .await
                .map_err(ApiError::from)?;
            let full = page.len() as i64 == PAGE;
            if let Some(last) = page.last() {
                from = last.seq;
                seen = Some(last.seq);
            }
            replayed.extend(page);
            if replayed.len() > MAX_REPLAY {
                return Err(too_old());
            }
            if !full {
                break;
            }
        }
    }
    let active = Arc::new(Active::start(api.metrics.clone()));
    let live = futures::stream::unfold((live, seen, false), move |(mut rx, mut seen, ended)| {
        let recipient = recipient.clone();
        async move {
            if ended {
                return None;
            }
            loop {
                match rx.recv().await {
                    Ok(change) => {
                        if change.recipient != recipient
                            || seen.is_some_and(|seen| change.seq <= seen)
                        {
                            continue;
                        }
                        seen = Some(change.seq);
                        return Some((Ok(change), (rx, seen, false)));
                    }
                    Err(RecvError::Closed) => return None,
                    Err(RecvError::Lagged(_)) => {
                        let cursor = seen.unwrap_or(0).to_string();
                        return Some((Err(super::lagged_at(&cursor)), (rx, seen, true)));
                    }
                }
            }
        }
    });
    let shutdown = api.shutdown.clone().cancelled_owned();
    Ok(futures::stream::iter(replayed.into_iter().map(Ok))
        .chain(live)
        .take_until(shutdown)
        .map(move |item| {
            let _active = &active;
            item
        })
        .boxed())
}

/// `after` lies before the oldest change kept (or too far back to replay).
fn too_old() -> async_graphql::Error {
    use async_graphql::ErrorExtensions;
    async_graphql::Error::new(
        "the changes after this cursor are no longer kept: re-read the inbox with the \
         notifications query, then subscribe without after",
    )
    .extend_with(|_, e| e.set("code", "REPLAY_TOO_OLD"))
}
