//! [`ApiContext`]: everything a request needs, shared by every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fanout::Hub;
use projections::notifications::changes::ChangeFeed;
use projections::{MetricsProjection, ReadDb};
use store::{EventStore, Position};
use tokio_util::sync::CancellationToken;

use crate::auth::{AuthError, JwtKeys, Viewer};
use crate::command_service::CommandService;
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::rate_limits::RateLimits;
use crate::settings::ServeSettings;
use crate::users::{UserDirectory, UserProfile};

#[derive(Clone)]
pub struct ApiContext {
    pub settings: Arc<ServeSettings>,
    pub store: Arc<dyn EventStore>,
    pub commands: CommandService,
    pub users: UserDirectory,
    /// Read models, for queries (on SQLite, the store's reader connections).
    pub read_db: ReadDb,
    /// Read models, for the user's own writes to them (read flags of
    /// notifications): on SQLite through the store's single writer.
    pub write_db: ReadDb,
    pub keys: Arc<JwtKeys>,
    pub metrics: Arc<Metrics>,
    /// Budgets per user and per client address.
    pub rates: Arc<RateLimits>,
    /// Who is viewing or typing on which ticket (ephemeral, see
    /// `crate::presence`).
    pub presence: Presence,
    /// Cancelled on shutdown: subscriptions end with it.
    pub shutdown: CancellationToken,
    /// The running queue-metrics projection, for `queueMetricsUpdated`
    /// (`None` when no runner is started, e.g. for `tickets schema`).
    pub queue_metrics: Option<MetricsProjection>,
    /// This node's tail of the inbox change feed, for `notificationsChanged`,
    /// `notificationAdded` and `announcementPublished`.
    pub inbox_changes: Option<ChangeFeed>,
    /// The live fan-out of ticket events, for the ticket subscriptions: one
    /// tail of the log per process, whatever the number of subscribers.
    pub hub: Option<Hub>,
    /// Development mode (no configured secret, loopback only): the reference
    /// client's one-click sign-in is served.
    pub development: bool,
    /// The profile last recorded per user, so a request whose claims did not
    /// change appends nothing.
    recorded_profiles: Arc<Mutex<HashMap<String, UserProfile>>>,
    /// Per user, the log position of their last write, for read-your-writes on
    /// the read models.
    last_writes: Arc<Mutex<HashMap<String, Position>>>,
}

impl ApiContext {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: ServeSettings,
        store: Arc<dyn EventStore>,
        read_db: ReadDb,
        keys: JwtKeys,
        shutdown: CancellationToken,
    ) -> ApiContext {
        let rates = Arc::new(RateLimits::new(&settings.rates));
        ApiContext {
            rates,
            presence: Presence::new(&settings.presence),
            commands: CommandService::new(store.clone())
                .with_limits(settings.limits.ticket_limits()),
            settings: Arc::new(settings),
            users: UserDirectory::new(store.clone()),
            store,
            write_db: read_db.clone(),
            read_db,
            keys: Arc::new(keys),
            metrics: Arc::new(Metrics::default()),
            shutdown,
            queue_metrics: None,
            inbox_changes: None,
            hub: None,
            development: false,
            recorded_profiles: Arc::default(),
            last_writes: Arc::default(),
        }
    }

    /// With the running projections whose broadcasts feed live subscriptions,
    /// and the connection their runner writes through.
    pub fn with_live(
        mut self,
        write_db: ReadDb,
        metrics: MetricsProjection,
        inbox_changes: ChangeFeed,
    ) -> ApiContext {
        self.write_db = write_db;
        self.queue_metrics = Some(metrics);
        self.inbox_changes = Some(inbox_changes);
        self
    }

    /// In development mode: the routes that only exist there are served.
    pub fn in_development(mut self, development: bool) -> ApiContext {
        self.development = development;
        self
    }

    /// With the running fan-out hub that serves the ticket subscriptions.
    pub fn with_hub(mut self, hub: Hub) -> ApiContext {
        self.hub = Some(hub);
        self
    }

    /// The viewer an `Authorization` header value (or a socket's token)
    /// names, their profile recorded as a side effect (see [`Self::remember`]).
    pub async fn authenticate(&self, value: Option<&str>) -> Result<Viewer, AuthError> {
        let viewer = self.keys.verify_header(value)?;
        self.remember(&viewer).await;
        Ok(viewer)
    }

    /// auth.md: the profile is recorded from the claims the first time the user
    /// is seen and whenever it changes. A failure is logged, not fatal: the
    /// request itself may still succeed, and the next one tries again.
    #[tracing::instrument(name = "remember user", skip_all, fields(user = %viewer.id()))]
    pub async fn remember(&self, viewer: &Viewer) {
        let profile = viewer.claims.profile();
        let known = self
            .recorded_profiles
            .lock()
            .map(|seen| seen.get(&profile.id) == Some(&profile))
            .unwrap_or(false);
        if known {
            return;
        }
        match self.users.record(&profile).await {
            Ok(_) => {
                if let Ok(mut seen) = self.recorded_profiles.lock() {
                    seen.insert(profile.id.clone(), profile);
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not record the user's profile"),
        }
    }

    pub fn note_write(&self, user: &str, position: Position) {
        if let Ok(mut writes) = self.last_writes.lock() {
            let entry = writes.entry(user.to_string()).or_insert(position);
            *entry = (*entry).max(position);
        }
    }

    pub fn last_write(&self, user: &str) -> Option<Position> {
        self.last_writes.lock().ok()?.get(user).copied()
    }

    pub fn read_your_writes_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.read_your_writes_ms)
    }
}
