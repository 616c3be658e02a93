//! Read models over a log whose positions are (commit, prepare) pairs, as
//! EventStoreDB hands them out, while the read models and checkpoints live in
//! SQLite or PostgreSQL.
//!
//! No EventStoreDB server runs here, so the log is [`TwoPartLog`]: a test
//! double of the runner's *input* (an `EventStore` backed by a `Vec`), not a
//! fake EventStoreDB. It only hands out positions of that shape, three events
//! per commit like one EventStoreDB transaction: the i-th event (from 0) is at
//! commit `(i / 3 + 1) * 100`, prepare `commit + i % 3 + 1`.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::{BoxStream, StreamExt};
use projections::notifications;
use projections::{
    MetricsProjection, NotificationsProjection, Projection, ReadDb, TicketsProjection,
    UsersProjection,
};
use store::{
    AppendResult, AppendedEvent, EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent,
    StoreError,
};

use crate::commands::Script;
use crate::harness::{checkpoint, dump, strings, Backend, Kind};

/// The runner's input: a log in memory with two-part positions.
#[derive(Default)]
struct TwoPartLog {
    events: Mutex<Vec<RecordedEvent>>,
}

impl TwoPartLog {
    fn position(index: usize) -> Position {
        let commit = (index as u64 / 3 + 1) * 100;
        Position {
            commit,
            prepare: commit + index as u64 % 3 + 1,
        }
    }

    fn all(&self) -> Vec<RecordedEvent> {
        self.events.lock().unwrap().clone()
    }
}

#[async_trait]
impl EventStore for TwoPartLog {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let mut log = self.events.lock().unwrap();
        let current = log
            .iter()
            .filter(|e| e.stream_id == stream)
            .map(|e| e.version)
            .next_back();
        let fits = match expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current.is_none(),
            ExpectedVersion::Exact(v) => current == Some(v),
        };
        if !fits || events.is_empty() {
            return Err(StoreError::Conflict {
                stream: stream.to_string(),
                expected,
                actual: current,
            });
        }
        let first_version = current.map_or(0, |v| v + 1);
        let first_position = Self::position(log.len());
        let count = events.len();
        for (k, e) in events.into_iter().enumerate() {
            let position = Self::position(log.len());
            log.push(RecordedEvent {
                id: e.id,
                position,
                stream_id: stream.to_string(),
                version: first_version + k as u64,
                event_type: e.event_type,
                schema_version: e.schema_version,
                data: e.data,
                metadata: e.metadata,
                recorded_at: chrono::Utc::now(),
                hash: String::new(),
            });
        }
        let appended = &log[log.len() - count..];
        let last = log.last().expect("just appended");
        Ok(AppendResult {
            last_version: last.version,
            first_position,
            last_position: last.position,
            events: appended
                .iter()
                .map(|e| AppendedEvent {
                    position: e.position,
                    recorded_at: e.recorded_at,
                    hash: e.hash.clone(),
                })
                .collect(),
        })
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self
            .all()
            .into_iter()
            .filter(|e| e.stream_id == stream && e.version >= from_version)
            .take(max)
            .collect())
    }

    async fn read_all(
        &self,
        after: Position,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self
            .all()
            .into_iter()
            .filter(|e| e.position > after)
            .take(max)
            .collect())
    }

    async fn head(&self) -> Result<Position, StoreError> {
        Ok(self.all().last().map_or(Position::START, |e| e.position))
    }

    /// What is stored now, then nothing: the tests catch up, they never follow.
    fn subscribe_all(
        &self,
        after: Position,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        let events: Vec<_> = self
            .all()
            .into_iter()
            .filter(|e| e.position > after)
            .map(Ok)
            .collect();
        futures::stream::iter(events)
            .chain(futures::stream::pending())
            .boxed()
    }
}

crate::on_every_backend! {
    /// Over a log of (commit, prepare) positions with three events per commit,
    /// in batches that split commits, every ticket's row equals its folded
    /// stream and carries its last event's commit and prepare, each event has
    /// its own activity row, every projection's checkpoint is the log's head
    /// as a two-part position, and catching up again from it changes nothing.
    read_models_follow_a_log_of_two_part_positions
}

async fn read_models_follow_a_log_of_two_part_positions(kind: Kind) {
    let backend = Backend::new(kind).await;
    let log = Arc::new(TwoPartLog::default());
    let mut script = Script::new(11, 8);
    script.run(&*log, 300).await;
    let head = log.head().await.unwrap();
    assert_ne!(
        head.commit, head.prepare,
        "the log hands out two-part positions"
    );

    let runner = projections::Runner::new(log.clone(), backend.db.clone()).with_batch_size(7);
    let all: Vec<Arc<dyn Projection>> = vec![
        Arc::new(TicketsProjection),
        Arc::new(UsersProjection),
        Arc::new(MetricsProjection::new(domain::SlaPolicy::default())),
        Arc::new(NotificationsProjection::new()),
    ];
    for projection in &all {
        let reached = runner.catch_up(projection.clone()).await.expect("applies");
        assert_eq!(reached, head, "{} caught up", projection.name());
        let stored = checkpoint(&backend.db, projection.name()).await.unwrap();
        assert_eq!(stored.position, head, "{} checkpoint", projection.name());
    }

    for id in script.ticket_ids() {
        let recorded = store::read_whole_stream(&*log, &domain::stream_name(id))
            .await
            .unwrap();
        let events: Vec<_> = recorded
            .iter()
            .map(|e| domain::decode(&e.event_type, e.schema_version, &e.data).unwrap())
            .collect();
        let Some(expected) = domain::fold(&events) else {
            continue;
        };
        let state = strings(
            &backend.db,
            "SELECT CAST(state AS TEXT) FROM tickets WHERE CAST(id AS TEXT) = $1",
            id,
        )
        .await;
        let state: domain::Ticket = serde_json::from_str(&state[0]).unwrap();
        assert_eq!(state, expected, "state of {id}");

        let pair = |p: Position| format!("{}/{}", p.commit, p.prepare as i64 - p.commit as i64);
        let last = recorded.last().unwrap().position;
        let stored = strings(
            &backend.db,
            "SELECT CAST(position AS TEXT) || '/' || CAST(prepare_offset AS TEXT) \
             FROM tickets WHERE CAST(id AS TEXT) = $1",
            id,
        )
        .await;
        assert_eq!(stored, vec![pair(last)], "position of {id}");

        let activity = strings(
            &backend.db,
            "SELECT CAST(position AS TEXT) || '/' || CAST(prepare_offset AS TEXT) \
             FROM ticket_activity WHERE CAST(ticket_id AS TEXT) = $1 ORDER BY version",
            id,
        )
        .await;
        let wanted: Vec<_> = recorded.iter().map(|e| pair(e.position)).collect();
        assert_eq!(activity, wanted, "one activity row per event of {id}");
    }

    // The checkpoint round-trips: a second pass resumes after it, applies
    // nothing and leaves every row as it was.
    let before = dump(&backend.db).await;
    for projection in &all {
        let reached = runner.catch_up(projection.clone()).await.expect("resumes");
        assert_eq!(
            reached,
            head,
            "{} resumed at its checkpoint",
            projection.name()
        );
    }
    assert_eq!(dump(&backend.db).await, before);

    // Inboxes page by two-part cursors, newest first, without gap or repeat.
    let recipients: Vec<String> = match &backend.db {
        ReadDb::Sqlite(pool) => sqlx::query_scalar("SELECT recipient FROM notification_counts")
            .fetch_all(pool)
            .await
            .unwrap(),
        ReadDb::Postgres(pool) => sqlx::query_scalar("SELECT recipient FROM notification_counts")
            .fetch_all(pool)
            .await
            .unwrap(),
    };
    assert!(!recipients.is_empty(), "someone was notified");
    for user in recipients {
        let mut seen: Vec<Position> = vec![];
        let mut after: Option<String> = None;
        loop {
            let page = notifications::notifications(&backend.db, &user, false, 4, after.as_deref())
                .await
                .unwrap();
            seen.extend(page.items.iter().map(|n| n.position));
            if !page.has_next_page {
                break;
            }
            after = page.end_cursor;
        }
        let mut newest_first = seen.clone();
        newest_first.sort_by(|a, b| b.cmp(a));
        newest_first.dedup();
        assert_eq!(seen, newest_first, "inbox of {user}");
        assert!(seen.iter().any(|p| p.commit != p.prepare));
    }
    backend.cleanup().await;
}
