//! Black-box tests of the live fan-out hub: interest indexing, slow
//! subscribers, and the seam between replay and live. The hub is the same
//! over every store, so most tests use SQLite; the seam test runs on both.

/// The seeded command script the read-model tests use, so the seam test
/// drives the same mix of events.
#[allow(dead_code)]
#[path = "../../../projections/tests/read_models/commands.rs"]
mod commands;
mod harness;

/// Runs the async test body `$name(Kind)` once per backend, as
/// `$name::on_sqlite` and `$name::on_postgres`.
#[macro_export]
macro_rules! on_every_backend {
    ($(#[doc = $doc:literal])* $name:ident) => {
        $(#[doc = $doc])*
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                super::$name($crate::harness::Kind::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                super::$name($crate::harness::Kind::Postgres).await
            }
        }
    };
}

mod faulty;
mod interest;
mod late_start;
mod memory;
mod replay_retry;
mod seam;
mod slow;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use domain::{Actor, Command, Role, TicketPriority};
use fanout::{Delivery, Item, Subscription};
use futures::StreamExt;
use store::{EventStore, ExpectedVersion, NewEvent, Position};
use uuid::Uuid;

/// Creates a ticket by `creator` in `queue` and returns its id.
pub async fn create_ticket(store: &dyn EventStore, creator: &str, queue: &str) -> Uuid {
    let id = Uuid::new_v4();
    let command = Command::Create {
        ticket_id: id,
        reference: format!("TCK-{}", id.simple()),
        request: "Printer on fire".into(),
        description: None,
        priority: TicketPriority::High,
        queue: queue.into(),
        tags: vec![],
    };
    let actor = Actor::new(creator, vec![Role::Agent], vec![queue.into()]);
    let events = domain::decide(None, &command, &actor, Utc::now()).expect("a valid command");
    store
        .append(
            &domain::stream_name(id),
            ExpectedVersion::NoStream,
            new_events(&events),
        )
        .await
        .expect("append");
    id
}

/// `events` as the store takes them, each with a fresh id.
pub fn new_events(events: &[domain::TicketEvent]) -> Vec<NewEvent> {
    events
        .iter()
        .map(|e| {
            let encoded = domain::encode(e);
            NewEvent {
                id: Uuid::new_v4(),
                event_type: encoded.event_type.to_string(),
                schema_version: encoded.schema_version,
                data: encoded.data,
                metadata: serde_json::json!({}),
            }
        })
        .collect()
}

/// The next item of `subscription`, failing the test after 20 s.
pub async fn next(subscription: &mut Subscription) -> Item {
    tokio::time::timeout(Duration::from_secs(20), subscription.next())
        .await
        .expect("an item within 20 s")
        .expect("the stream goes on until Lagged")
}

pub fn event(item: Item) -> Arc<Delivery> {
    match item {
        Item::Event(delivery) => delivery,
        Item::Lagged { position_reached } => panic!("lagged at {position_reached}"),
    }
}

pub fn positions(deliveries: &[Arc<Delivery>]) -> Vec<Position> {
    deliveries.iter().map(|d| d.position()).collect()
}
