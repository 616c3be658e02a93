//! The tickets read model tells the same story as the log.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::Ticket;
use projections::{ReadDb, TicketsProjection};
use sqlx::Row;
use uuid::Uuid;

use crate::commands::Script;
use crate::harness::{run_until_caught_up, strings, Backend, Kind};

crate::on_every_backend! {
    /// After a live run over a few hundred random commands on several tickets,
    /// every ticket's row (its `state` JSON and every column), its child rows and
    /// its activity equal what folding its stream gives.
    the_tickets_read_model_equals_the_state_folded_from_the_log
}

async fn the_tickets_read_model_equals_the_state_folded_from_the_log(kind: Kind) {
    let backend = Backend::new(kind).await;
    let mut script = Script::new(7, 12);
    script.run(&*backend.store, 400).await;
    let runner = backend.runner(&backend.db).with_batch_size(64);

    run_until_caught_up(&runner, &*backend.store, Arc::new(TicketsProjection))
        .await
        .expect("the projection runs");

    for id in script.ticket_ids() {
        let stream = domain::stream_name(id);
        let recorded = store::read_whole_stream(&*backend.store, &stream)
            .await
            .unwrap();
        let events: Vec<_> = recorded
            .iter()
            .map(|e| domain::decode(&e.event_type, e.schema_version, &e.data).unwrap())
            .collect();
        let Some(expected) = domain::fold(&events) else {
            assert!(
                row(&backend.db, id).await.is_none(),
                "ticket {id} was never created"
            );
            continue;
        };
        let row = row(&backend.db, id)
            .await
            .expect("a row per created ticket");
        assert_eq!(row.state, expected, "state of {id}");
        assert_eq!(row.columns, Columns::of(&expected), "columns of {id}");
        let last = recorded.last().unwrap().position.commit as i64;
        assert_eq!(row.position, last, "position of {id}");
        assert_children(&backend.db, &expected).await;

        let activity = strings(
            &backend.db,
            "SELECT CAST(changes AS TEXT) FROM ticket_activity \
             WHERE CAST(ticket_id AS TEXT) = $1 ORDER BY version",
            id,
        )
        .await;
        let steps = domain::steps(&events);
        assert_eq!(
            activity.len(),
            steps.len(),
            "one activity row per event of {id}"
        );
        for (stored, step) in activity.iter().zip(&steps) {
            let stored: serde_json::Value = serde_json::from_str(stored).unwrap();
            assert_eq!(stored, serde_json::to_value(&step.changes).unwrap());
        }
    }
    backend.cleanup().await;
}

async fn assert_children(db: &ReadDb, t: &Ticket) {
    let child = |sql: &'static str| strings(db, sql, t.id);
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        child("SELECT tag FROM ticket_tags WHERE CAST(ticket_id AS TEXT) = $1 ORDER BY tag").await,
        t.tags
    );
    assert_eq!(
        child("SELECT user_id FROM ticket_watchers WHERE CAST(ticket_id AS TEXT) = $1 ORDER BY 1")
            .await,
        t.watchers
    );
    assert_eq!(
        child(
            "SELECT CAST(related_id AS TEXT) FROM ticket_relations \
             WHERE CAST(ticket_id AS TEXT) = $1 ORDER BY 1"
        )
        .await,
        sorted(t.related.iter().map(Uuid::to_string).collect())
    );
    assert_eq!(
        child(
            "SELECT CAST(id AS TEXT) FROM ticket_comments \
             WHERE CAST(ticket_id AS TEXT) = $1 ORDER BY 1"
        )
        .await,
        sorted(t.comments.iter().map(|c| c.id.to_string()).collect())
    );
    assert_eq!(
        child(
            "SELECT CAST(id AS TEXT) FROM ticket_attachments \
             WHERE CAST(ticket_id AS TEXT) = $1 ORDER BY 1"
        )
        .await,
        sorted(t.attachments.iter().map(|a| a.id.to_string()).collect())
    );
}

/// The typed columns of a `tickets` row, in database-neutral values.
#[derive(Debug, PartialEq)]
struct Columns {
    id: Uuid,
    text: Vec<Option<String>>,
    times: Vec<Option<DateTime<Utc>>>,
    deleted: bool,
    version: i64,
}

impl Columns {
    fn of(t: &Ticket) -> Columns {
        Columns {
            id: t.id,
            text: vec![
                Some(t.reference.clone()),
                Some(t.request.clone()),
                t.description.clone(),
                Some(t.status.as_str().into()),
                Some(t.priority.as_str().into()),
                Some(t.queue.clone()),
                Some(t.created_by.clone()),
                t.assigned_to.clone(),
            ],
            times: vec![
                Some(t.created_at),
                Some(t.updated_at),
                t.first_response_at,
                t.resolved_at,
            ],
            deleted: t.deleted,
            version: t.version as i64,
        }
    }
}

struct TicketRow {
    columns: Columns,
    state: Ticket,
    position: i64,
}

const ROW: &str = "SELECT id, reference, request, description, status, priority, queue, \
    created_by, assigned_to, created_at, updated_at, first_response_at, resolved_at, \
    deleted, version, state, position FROM tickets WHERE CAST(id AS TEXT) = $1";

async fn row(db: &ReadDb, id: Uuid) -> Option<TicketRow> {
    let text = |get: &dyn Fn(usize) -> Option<String>| (1..=8).map(get).collect::<Vec<_>>();
    match db {
        ReadDb::Sqlite(pool) => {
            let r = sqlx::query(ROW)
                .bind(id.to_string())
                .fetch_optional(pool)
                .await
                .unwrap()?;
            let time = |i: usize| {
                r.get::<Option<String>, _>(i).map(|s| {
                    assert_eq!(
                        s.len(),
                        "2023-11-14T22:13:20.000000000Z".len(),
                        "fixed width: {s}"
                    );
                    DateTime::parse_from_rfc3339(&s)
                        .unwrap()
                        .with_timezone(&Utc)
                })
            };
            Some(TicketRow {
                columns: Columns {
                    id: r.get::<String, _>(0).parse().unwrap(),
                    text: text(&|i| r.get(i)),
                    times: (9..=12).map(time).collect(),
                    deleted: r.get(13),
                    version: r.get(14),
                },
                state: serde_json::from_str(&r.get::<String, _>(15)).unwrap(),
                position: r.get(16),
            })
        }
        ReadDb::Postgres(pool) => {
            let r = sqlx::query(ROW)
                .bind(id.to_string())
                .fetch_optional(pool)
                .await
                .unwrap()?;
            Some(TicketRow {
                columns: Columns {
                    id: r.get(0),
                    text: text(&|i| r.get(i)),
                    times: (9..=12).map(|i| r.get(i)).collect(),
                    deleted: r.get(13),
                    version: r.get(14),
                },
                state: serde_json::from_value(r.get(15)).unwrap(),
                position: r.get(16),
            })
        }
    }
}
