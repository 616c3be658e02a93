//! What the hub keeps in memory is bounded in bytes, not only in count: a
//! ticket collecting long comments makes every delivery larger, and the
//! window of recent deliveries shrinks to stay under `recent_bytes`.

use std::sync::Arc;

use chrono::Utc;
use domain::{Actor, Command, Role};
use fanout::{Hub, HubConfig, Interest, Predicate};
use store::ExpectedVersion;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::harness::{Backend, Kind};
use crate::{create_ticket, event, new_events, next};

const BUDGET: usize = 200_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recent_window_stays_under_its_byte_budget() {
    let backend = Backend::new(Kind::Sqlite).await;
    let shutdown = CancellationToken::new();
    let config = HubConfig {
        recent: 1_000,
        recent_bytes: BUDGET,
        ..HubConfig::default()
    };
    let hub = Hub::start(backend.store.clone(), config, shutdown.clone())
        .await
        .unwrap();
    let all: Predicate = Arc::new(|_| true);
    let mut live = hub.subscribe(Interest::All, all, None);
    let id = create_ticket(&*backend.store, "alice", "billing").await;
    let actor = Actor::new("alice", vec![Role::Agent], vec!["billing".into()]);
    let mut state = Some(event(next(&mut live).await).after.clone());
    for n in 0..20u64 {
        let command = Command::Comment {
            comment_id: Uuid::new_v4(),
            body: format!("{n} {}", "x".repeat(9_000)),
            internal: false,
        };
        let decided = domain::decide(state.as_ref(), &command, &actor, Utc::now()).unwrap();
        backend
            .store
            .append(
                &domain::stream_name(id),
                ExpectedVersion::Exact(n),
                new_events(&decided),
            )
            .await
            .unwrap();
        state = Some(event(next(&mut live).await).after.clone());
    }
    let (count, bytes) = hub.recent_window();
    let last = state.unwrap().approx_bytes();
    assert!(count < 21, "{count} deliveries kept of 21");
    assert!(count >= 1, "the latest delivery is always kept");
    assert!(
        bytes <= BUDGET || count == 1,
        "{bytes} bytes in {count} deliveries, over {BUDGET} (the last ticket alone is {last})"
    );
    // The ticket grew by 9 KB per comment; the window still covers the end.
    assert!(bytes > last, "{bytes} <= {last}");
    shutdown.cancel();
    backend.cleanup().await;
}
