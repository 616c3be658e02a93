//! One batch: its events written in one transaction with the checkpoint,
//! on a task of its own (the module docs of [`super`] say why), and the
//! stop at a poison event.

use std::sync::Arc;

use store::{Position, RecordedEvent};

use super::{Projection, Runner};
use crate::checkpoint;
use crate::error::{ApplyError, ProjectionError};
use crate::ticket_event::{self, Reads, TicketRead};

/// How a projection writes the rows of its [`super::BulkLoad::insert_only_tables`]
/// in a batch: what tells its `apply_batch` from its `load_batch`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Load {
    /// Inserted with a conflict check (`ON CONFLICT DO NOTHING`).
    Apply,
    /// Into a rebuild's shadow before its unique indexes are built: no row
    /// is there yet, so PostgreSQL copies them in (COPY).
    Bulk,
}

/// A run of the log handed to a runner's batch: its events in log order and,
/// when read ahead for a rebuild's load, what each decodes to
/// ([`ticket_event::read`]), shared by every projection loading it.
#[derive(Clone)]
pub(crate) struct Page {
    events: Arc<[RecordedEvent]>,
    reads: Option<Arc<[TicketRead]>>,
}

impl Page {
    /// The events alone: a batch that decodes what it needs itself.
    pub(crate) fn new(events: impl Into<Arc<[RecordedEvent]>>) -> Page {
        Page {
            events: events.into(),
            reads: None,
        }
    }

    /// The events with each one read, once for every projection that will
    /// load them; on the blocking pool, being all CPU work.
    pub(crate) async fn read(events: Vec<RecordedEvent>) -> Result<Page, ProjectionError> {
        tokio::task::spawn_blocking(move || {
            let reads: Arc<[TicketRead]> = events.iter().map(ticket_event::read).collect();
            Page {
                events: events.into(),
                reads: Some(reads),
            }
        })
        .await
        .map_err(|e| match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => ProjectionError::Interrupted(e.to_string()),
        })
    }

    pub(crate) fn events(&self) -> &[RecordedEvent] {
        &self.events
    }

    /// How many of `events` (a run of the log, in order) are at or before
    /// `checkpoint`: applied already.
    fn applied(events: &[RecordedEvent], checkpoint: Position) -> usize {
        events.partition_point(|e| e.position <= checkpoint)
    }
}

impl Runner {
    /// [`Runner::write_batch`] on a task of its own (see the module docs of
    /// [`super`]). A panic in the handler is a crash: it is passed on, not
    /// turned into an error.
    pub(crate) async fn apply_batch(
        &self,
        projection: &Arc<dyn Projection>,
        page: Page,
    ) -> Result<Position, ProjectionError> {
        let runner = self.clone();
        let projection = projection.clone();
        let batch = tokio::spawn(async move { runner.write_batch(&*projection, &page).await });
        match batch.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(ProjectionError::Interrupted(e.to_string())),
        }
    }

    /// [`super::BulkLoad::finish_load`], in a transaction of its own, for a
    /// projection that has one.
    pub(crate) async fn finish_load(
        &self,
        projection: &dyn Projection,
    ) -> Result<(), ProjectionError> {
        let Some(bulk) = projection.bulk_load() else {
            return Ok(());
        };
        let mut tx = self.db.begin().await?;
        bulk.finish_load(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One transaction: the batch's writes and the new checkpoint.
    #[tracing::instrument(skip_all, fields(
        projection = %projection.name(),
        first = %page.events().first().map(|e| e.position).unwrap_or_default(),
        events = page.events().len(),
    ), err)]
    async fn write_batch(
        &self,
        projection: &dyn Projection,
        page: &Page,
    ) -> Result<Position, ProjectionError> {
        let name = projection.name();
        let events = &page.events[..];
        let mut tx = self.db.begin().await?;
        let checkpoint = checkpoint::load(&mut tx, name).await?;
        let skip = Page::applied(events, checkpoint);
        let fresh: Vec<&RecordedEvent> = events[skip..].iter().collect();
        let Some(last) = fresh.last() else {
            tx.rollback().await?;
            return Ok(checkpoint);
        };
        let applied = match self.load {
            Load::Apply => projection.apply_batch(&mut tx, &fresh).await,
            Load::Bulk => match projection.bulk_load() {
                Some(bulk) => {
                    let read_here: Vec<TicketRead>;
                    let reads = match &page.reads {
                        Some(reads) => &reads[skip..],
                        None => {
                            read_here = ticket_event::read_each(&fresh);
                            &read_here[..]
                        }
                    };
                    bulk.load_batch(&mut tx, &fresh, Reads::new(reads)).await
                }
                None => projection.apply_batch(&mut tx, &fresh).await,
            },
        };
        match applied {
            Ok(()) => {
                checkpoint::save(&mut tx, name, last.position, None).await?;
                tx.commit().await?;
                return Ok(last.position);
            }
            Err(ApplyError::Database(e)) => return Err(e.into()),
            Err(ApplyError::Poison(_)) => tx.rollback().await?,
        }
        // A poison somewhere in the batch: again, one event at a time, to
        // commit what comes before it and stop at it.
        let mut tx = self.db.begin().await?;
        let checkpoint = checkpoint::load(&mut tx, name).await?;
        let fresh: Vec<&RecordedEvent> =
            events[Page::applied(events, checkpoint)..].iter().collect();
        let Some(last) = fresh.last() else {
            tx.rollback().await?;
            return Ok(checkpoint);
        };
        for (index, event) in fresh.iter().enumerate() {
            match projection.apply(&mut tx, event).await {
                Ok(()) => {}
                Err(ApplyError::Database(e)) => return Err(e.into()),
                Err(ApplyError::Poison(reason)) => {
                    tx.rollback().await?;
                    return Err(self
                        .stop_at(projection, &fresh[..index], event, reason)
                        .await);
                }
            }
        }
        checkpoint::save(&mut tx, name, last.position, None).await?;
        tx.commit().await?;
        Ok(last.position)
    }

    /// Commits the events of the batch before `poison` and marks the
    /// projection failed, in one transaction. Returns the error to report: the
    /// poison, or whatever prevented recording it (the run then retries and
    /// meets the poison again).
    async fn stop_at(
        &self,
        projection: &dyn Projection,
        before: &[&RecordedEvent],
        poison: &RecordedEvent,
        reason: String,
    ) -> ProjectionError {
        let name = projection.name();
        let error = ProjectionError::Poison {
            projection: name.to_string(),
            event_id: poison.id,
            position: poison.position,
            reason,
        };
        tracing::error!(
            projection = name,
            event_id = %poison.id,
            position = %poison.position,
            error = %error,
            "projection stopped on an event it cannot apply"
        );
        let recorded = async {
            let mut tx = self.db.begin().await?;
            let from = checkpoint::load(&mut tx, name).await?;
            let mut position = from;
            for event in before.iter().filter(|e| e.position > from) {
                projection
                    .apply(&mut tx, event)
                    .await
                    .map_err(|e| match e {
                        ApplyError::Database(e) => ProjectionError::Database(e),
                        ApplyError::Poison(reason) => ProjectionError::Poison {
                            projection: name.to_string(),
                            event_id: event.id,
                            position: event.position,
                            reason,
                        },
                    })?;
                position = event.position;
            }
            checkpoint::save(&mut tx, name, position, Some(&error.to_string())).await?;
            tx.commit().await?;
            Ok::<(), ProjectionError>(())
        };
        match recorded.await {
            Ok(()) => error,
            Err(e) => e,
        }
    }
}
