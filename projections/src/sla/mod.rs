//! The SLA process: a timer that appends `SlaWarning` and `SlaBreached`
//! events to tickets' own streams as the system actor, so they reach history,
//! notifications and subscriptions like every other event.
//!
//! Each tick lists the open tickets from the `tickets` read model (not
//! deleted, not resolved or closed, and not already breached on both
//! targets), reloads each candidate's stream, asks [`domain::decide_sla`]
//! what is due and appends it with `ExpectedVersion::Exact(loaded version)`
//! and a deterministic event id (uuid v5 of ticket, target and kind). So two
//! server processes never both append the same warning: the loser meets a
//! conflict or an idempotent repeat and looks again next tick.
//!
//! The clock is injected ([`Clock`]), so tests never sleep on real time. If
//! given the [`MetricsProjection`], each tick also runs its
//! `refresh_due(now)`, which re-evaluates breaches in the queue figures.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::{Actor, SlaPolicy, SlaTarget, Ticket, TicketChange, TicketEvent};
use store::{EventStore, ExpectedVersion, NewEvent, StoreError};
use ticket_stream::LoadError;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bind::fetch_db;
use crate::db::ReadDb;
use crate::metrics::MetricsProjection;

/// The default time between ticks.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);

/// Namespace of SLA event ids: `v5(NAMESPACE, "<ticket>/<TARGET>/<kind>")`.
pub const NAMESPACE: Uuid = Uuid::from_u128(0x736c_6100_0000_4000_8000_0000_0000_0001);

/// Where the process reads the time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

impl<F: Fn() -> DateTime<Utc> + Send + Sync + 'static> Clock for F {
    fn now(&self) -> DateTime<Utc> {
        self()
    }
}

/// Why a tick failed. The process logs it and tries again next tick.
#[derive(Debug, thiserror::Error)]
pub enum SlaError {
    #[error("read-model database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Metrics(#[from] crate::ProjectionError),
    /// A stream holds an event the domain cannot decode.
    #[error("ticket {ticket_id}: {reason}")]
    Corrupt { ticket_id: Uuid, reason: String },
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    pub candidates: usize,
    /// SLA events this process appended.
    pub appended: usize,
    /// Appends another writer got to first (conflict or repeat).
    pub lost_races: usize,
}

/// The deterministic id of an SLA event.
pub fn sla_event_id(ticket_id: Uuid, change: &TicketChange) -> Option<Uuid> {
    let (kind, target) = match change {
        TicketChange::SlaWarning { target, .. } => ("warning", target),
        TicketChange::SlaBreached { target, .. } => ("breached", target),
        _ => return None,
    };
    let name = format!("{ticket_id}/{}/{kind}", target.as_str());
    Some(Uuid::new_v5(&NAMESPACE, name.as_bytes()))
}

/// The timer-driven SLA process. Cheap to clone.
#[derive(Clone)]
pub struct SlaProcess {
    store: Arc<dyn EventStore>,
    db: ReadDb,
    policy: SlaPolicy,
    clock: Arc<dyn Clock>,
    interval: Duration,
    metrics: Option<MetricsProjection>,
}

impl SlaProcess {
    pub fn new(store: Arc<dyn EventStore>, db: ReadDb, policy: SlaPolicy) -> SlaProcess {
        SlaProcess {
            store,
            db,
            policy,
            clock: Arc::new(SystemClock),
            interval: DEFAULT_INTERVAL,
            metrics: None,
        }
    }

    pub fn with_clock(mut self, clock: impl Clock) -> SlaProcess {
        self.clock = Arc::new(clock);
        self
    }

    pub fn with_interval(mut self, interval: Duration) -> SlaProcess {
        self.interval = interval;
        self
    }

    /// Also refresh `metrics`' clock-dependent figures on every tick.
    pub fn refreshing(mut self, metrics: MetricsProjection) -> SlaProcess {
        self.metrics = Some(metrics);
        self
    }

    /// Ticks every interval until `shutdown`; a failed tick is logged.
    pub async fn run(&self, shutdown: CancellationToken) {
        let mut timer = tokio::time::interval(self.interval);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = timer.tick() => {}
            }
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "SLA tick failed; trying again next tick");
            }
        }
    }

    /// One pass over the open tickets at the clock's `now`.
    #[tracing::instrument(name = "sla.tick", skip_all, err)]
    pub async fn tick(&self) -> Result<TickReport, SlaError> {
        let now = self.clock.now();
        let mut report = TickReport::default();
        for ticket_id in self.candidates().await? {
            report.candidates += 1;
            self.check(ticket_id, now, &mut report).await?;
        }
        if let Some(metrics) = &self.metrics {
            metrics.refresh_due(&self.db, now).await?;
        }
        Ok(report)
    }

    /// Open tickets that may still owe an SLA event.
    async fn candidates(&self) -> Result<Vec<Uuid>, SlaError> {
        let rows = fetch_db(
            &self.db,
            "SELECT id, state FROM tickets WHERE NOT deleted \
             AND status NOT IN ('RESOLVED', 'CLOSED') ORDER BY id",
            &[],
        )
        .await?;
        let mut ids = vec![];
        for row in rows {
            let id = row.id("id")?;
            let done = serde_json::from_value::<Ticket>(row.json("state")?)
                .map(|t| {
                    SlaTarget::ALL.iter().all(|target| {
                        t.sla_breaches.contains(target)
                            || (*target == SlaTarget::FirstResponse
                                && t.first_response_at.is_some())
                    })
                })
                .unwrap_or(false);
            if !done {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// Appends what is due on one ticket, one event per append so that a
    /// repeat is recognised by its id alone.
    async fn check(
        &self,
        ticket_id: Uuid,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<(), SlaError> {
        let stream = domain::stream_name(ticket_id);
        let loaded = ticket_stream::load(&*self.store, ticket_id)
            .await
            .map_err(|e| match e {
                LoadError::Store(e) => SlaError::Store(e),
                LoadError::Undecodable { error, .. } => SlaError::Corrupt {
                    ticket_id,
                    reason: error.to_string(),
                },
            })?;
        let Some(ticket) = loaded.state else {
            return Ok(());
        };
        let mut version = ticket.version;
        for change in domain::decide_sla(&ticket, &loaded.decoded, &self.policy, now) {
            let Some(id) = sla_event_id(ticket_id, &change) else {
                continue;
            };
            let event = TicketEvent {
                actor: Actor::system().user_id,
                at: now,
                change,
            };
            let encoded = domain::encode(&event);
            let new = NewEvent {
                id,
                event_type: encoded.event_type.to_string(),
                schema_version: encoded.schema_version,
                data: encoded.data,
                metadata: serde_json::json!({ "source": "sla" }),
            };
            match self
                .store
                .append(&stream, ExpectedVersion::Exact(version), vec![new])
                .await
            {
                Ok(result) if result.last_version == version + 1 => {
                    report.appended += 1;
                    version += 1;
                }
                // An idempotent repeat: another process appended this event.
                Ok(_) => {
                    report.lost_races += 1;
                    return Ok(());
                }
                Err(StoreError::Conflict { .. } | StoreError::IdempotencyMismatch { .. }) => {
                    report.lost_races += 1;
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
