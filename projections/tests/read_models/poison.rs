//! An event a projection cannot apply stops that projection, loudly, and only it.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use domain::{TicketChange, TicketEvent};
use projections::{ProjectionError, ProjectionState, TicketsProjection, UsersProjection};
use store::{ExpectedVersion, NewEvent, Position};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::commands::Script;
use crate::harness::{append_undecodable, checkpoint, Backend, Kind};

crate::on_every_backend! {
    /// A `TicketCommented` event with a garbage payload stops the tickets
    /// projection at the event before it, with state `failed` and an error
    /// naming the event id and position, while the users projection keeps
    /// following the log.
    a_poison_event_stops_its_projection_while_others_keep_running
}

async fn a_poison_event_stops_its_projection_while_others_keep_running(kind: Kind) {
    let backend = Backend::new(kind).await;
    let store = &*backend.store;
    let mut script = Script::new(13, 3);
    script.run(store, 30).await;
    let before_poison = store.head().await.unwrap();
    let (poison_id, poison) = append_undecodable(store).await;
    script.run(store, 30).await;

    let runner = backend.runner(&backend.db).with_batch_size(16);
    let shutdown = CancellationToken::new();
    let tickets = runner.spawn(Arc::new(TicketsProjection), shutdown.clone());
    let users = runner.spawn(Arc::new(UsersProjection), shutdown.clone());

    let error = tokio::time::timeout(Duration::from_secs(30), tickets)
        .await
        .expect("the tickets projection stops")
        .unwrap()
        .expect_err("a poison event");
    let ProjectionError::Poison {
        event_id, position, ..
    } = &error
    else {
        panic!("not a poison error: {error}");
    };
    assert_eq!((*event_id, *position), (poison_id, poison));
    let status = checkpoint(&backend.db, "tickets").await.unwrap();
    assert_eq!(status.state, ProjectionState::Failed);
    assert_eq!(
        status.position, before_poison,
        "stopped right before the poison"
    );
    let message = status.error.expect("an error message");
    assert!(message.contains(&poison_id.to_string()), "{message}");
    assert!(message.contains(&format!("position {poison}")), "{message}");

    script.record_profile(store).await;
    let head = store.head().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let users_status = checkpoint(&backend.db, "users").await;
        if users_status.as_ref().is_some_and(|s| s.position >= head) {
            assert_eq!(users_status.unwrap().state, ProjectionState::Running);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "users stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    users.await.unwrap().unwrap();
    backend.cleanup().await;
}

crate::on_every_backend! {
    /// An event on a ticket stream that has no `TicketCreated` event cannot be
    /// applied: the projection stops on it instead of inventing a ticket, and
    /// stops on it again when restarted (a restart never skips it).
    an_event_on_a_ticket_that_was_never_created_stops_the_projection
}

async fn an_event_on_a_ticket_that_was_never_created_stops_the_projection(kind: Kind) {
    let backend = Backend::new(kind).await;
    let orphan = domain::encode(&TicketEvent {
        actor: "admin-1".into(),
        at: Utc::now(),
        change: TicketChange::TagAdded { tag: "vip".into() },
    });
    let id = Uuid::new_v4();
    let appended = backend
        .store
        .append(
            &domain::stream_name(Uuid::new_v4()),
            ExpectedVersion::NoStream,
            vec![NewEvent {
                id,
                event_type: orphan.event_type.into(),
                schema_version: orphan.schema_version,
                data: orphan.data,
                metadata: serde_json::json!({}),
            }],
        )
        .await
        .unwrap();

    for _restart in 0..2 {
        let error = backend
            .runner(&backend.db)
            .catch_up(Arc::new(TicketsProjection))
            .await
            .expect_err("a poison event");
        assert!(
            matches!(&error, ProjectionError::Poison { event_id, position, reason, .. }
                if *event_id == id && *position == appended.first_position
                    && reason.contains("no TicketCreated")),
            "{error}"
        );
        let status = checkpoint(&backend.db, "tickets").await.unwrap();
        assert_eq!(
            (status.state, status.position),
            (ProjectionState::Failed, Position::START)
        );
    }
    backend.cleanup().await;
}
