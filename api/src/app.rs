//! [`Application`]: the server assembled from its configuration — store,
//! read models, projection runners, schema and routes — ready to run until a
//! shutdown signal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use fanout::{Hub, HubConfig};
use projections::notifications::changes::ChangeFeed;
use projections::sla::SlaProcess;
use projections::{
    MetricsProjection, NotificationsProjection, Runner, TicketsProjection, UsersProjection,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::JwtKeys;
use crate::context::ApiContext;
use crate::graphql::build_schema;
use crate::http::{ops_router, router};
use crate::settings::{Secret, ServeSettings};
use crate::sockets::Sockets;
use crate::state::AppState;
use crate::stores::{StoreUrls, Stores};

/// The topic of presence messages between processes (`store::postgres::broadcast`).
const PRESENCE_TOPIC: &str = "presence";

/// How long shutdown waits for the projection runners to finish their batch.
const RUNNER_SHUTDOWN: Duration = Duration::from_secs(10);

/// How long shutdown waits for the WebSockets' close frames (each socket
/// waits at most 2 s for its client's).
const SOCKET_SHUTDOWN: Duration = Duration::from_secs(5);

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    /// `--ops-listen`: health, readiness and metrics on an address of their own.
    ops: Option<(TcpListener, axum::Router)>,
    runners: Vec<JoinHandle<Result<(), projections::ProjectionError>>>,
    /// The SLA process and the fan-out worker: awaited at shutdown so no
    /// append of the SLA process is cut midway.
    workers: Vec<(&'static str, JoinHandle<()>)>,
    shutdown: CancellationToken,
    /// Axum does not wait for upgraded connections: shutdown waits on these.
    sockets: Arc<Sockets>,
}

impl Application {
    /// Binds the listener, opens the stores (migrations run on connect) and
    /// starts the projection runners. Nothing is served before
    /// [`Application::run_until_stopped`].
    pub async fn build(
        settings: ServeSettings,
        urls: &StoreUrls,
        database_schema: Option<&str>,
        secret: &Secret,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Application> {
        let policy = settings.sla_policy().context("invalid SLA configuration")?;
        // First, so a taken port is reported before any database work.
        let listener = bind(settings.listen, "--listen", "TICKETS_LISTEN").await?;
        let ops_listener = match settings.ops_listen {
            Some(address) => Some(bind(address, "--ops-listen", "TICKETS_OPS_LISTEN").await?),
            None => None,
        };
        let Stores { database, log } = Stores::open(urls, database_schema).await?;
        let write_db = database.write_db();
        let runner = Runner::new(log.clone(), write_db.clone());
        let metrics = MetricsProjection::new(policy);
        let notifications = NotificationsProjection::recording_changes();
        // Released only once their batch is committed: subscribers re-read
        // what they are told about and find it.
        metrics.spawn_release(write_db.clone(), shutdown.clone());
        // Every node tails the inbox change feed, whichever node writes it.
        let inbox_changes = ChangeFeed::new(4096);
        inbox_changes.spawn(database.query_db(), shutdown.clone());
        let runners = vec![
            runner.spawn(Arc::new(TicketsProjection), shutdown.clone()),
            runner.spawn(Arc::new(UsersProjection), shutdown.clone()),
            runner.spawn(Arc::new(metrics.clone()), shutdown.clone()),
            runner.spawn(Arc::new(notifications), shutdown.clone()),
        ];
        // SLA breaches without an event, and the metrics' clock-dependent figures.
        let sla = SlaProcess::new(log.clone(), write_db, policy)
            .with_interval(Duration::from_millis(settings.sla_check_interval_ms))
            .refreshing(metrics.clone());
        let sla_shutdown = shutdown.clone();
        let sla = tokio::spawn(async move { sla.run(sla_shutdown).await });
        // One tail of the log for every live ticket subscription.
        let hub_config = HubConfig {
            buffer: usize::try_from(settings.subscriber_buffer).unwrap_or(usize::MAX),
            max_replays: usize::try_from(settings.max_replays).unwrap_or(usize::MAX),
            max_replays_per_owner: usize::try_from(settings.max_replays_per_user)
                .unwrap_or(usize::MAX),
            max_replay_events: settings.max_replay_events,
            ..HubConfig::default()
        };
        let (hub, fanout) = Hub::start_joinable(log.clone(), hub_config, shutdown.clone())
            .await
            .context("starting the live fan-out")?;
        let workers = vec![("the SLA process", sla), ("the fan-out worker", fanout)];
        let ctx = ApiContext::new(
            settings,
            log,
            database.query_db(),
            JwtKeys::new(secret.value()),
            shutdown.clone(),
        )
        .with_live(database.write_db(), metrics, inbox_changes)
        .with_hub(hub)
        .in_development(*secret == Secret::Development);
        // Presence is shared through the SQL database's NOTIFY when it is
        // PostgreSQL; on SQLite there is one process.
        let peers = match &database {
            crate::stores::SqlDatabase::Postgres(pg) => Some(
                pg.broadcast(PRESENCE_TOPIC)
                    .context("naming the presence channel")?,
            ),
            crate::stores::SqlDatabase::Sqlite(_) => None,
        };
        ctx.presence
            .start(peers, shutdown.clone())
            .await
            .context("starting presence")?;
        let schema = build_schema(Some(ctx.clone()));
        let sockets = Sockets::new();
        let state = AppState {
            ctx,
            schema,
            sockets: sockets.clone(),
        };
        Ok(Application {
            listener,
            ops: ops_listener.map(|listener| (listener, ops_router(state.clone()))),
            router: router(state),
            runners,
            workers,
            shutdown,
            sockets,
        })
    }

    pub fn address(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Where `--ops-listen` serves, when it is set.
    pub fn ops_address(&self) -> anyhow::Result<Option<SocketAddr>> {
        Ok(match &self.ops {
            Some((listener, _)) => Some(listener.local_addr()?),
            None => None,
        })
    }

    /// Serves until the shutdown token is cancelled, then lets in-flight
    /// requests finish, waits for the SLA process to finish its tick and the
    /// fan-out to close, and for the runners to commit their batch.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let ops = self
            .ops
            .map(|(listener, router)| tokio::spawn(serve(listener, router, self.shutdown.clone())));
        let served = serve(self.listener, self.router, self.shutdown.clone())
            .await
            .context("serving HTTP");
        // Whatever ended the public server ends the operators' one too.
        self.shutdown.cancel();
        if let Some(ops) = ops {
            match ops.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "serving the ops address failed"),
                Err(e) => tracing::error!(error = %e, "the ops server panicked"),
            }
        }
        served?;
        self.shutdown.cancel();
        // The same token told every socket to close with 1001.
        if tokio::time::timeout(SOCKET_SHUTDOWN, self.sockets.all_closed())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.sockets.open_count(),
                "some WebSockets did not close in time"
            );
        }
        for (name, worker) in self.workers {
            match tokio::time::timeout(RUNNER_SHUTDOWN, worker).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "{name} panicked"),
                Err(_) => tracing::warn!("{name} did not stop in time"),
            }
        }
        for runner in self.runners {
            match tokio::time::timeout(RUNNER_SHUTDOWN, runner).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::error!(error = %e, "a projection had stopped"),
                Ok(Err(e)) => tracing::error!(error = %e, "a projection runner panicked"),
                Err(_) => tracing::warn!("a projection runner did not stop in time"),
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Serves `router` on `listener` until `shutdown`, then lets in-flight
/// requests finish.
async fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // The peer's address reaches the handlers (`ConnectInfo`): rate limits
    // per client address.
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Binds the server's address; a taken or forbidden address is an error that
/// names it and the flag that changes it.
async fn bind(address: SocketAddr, flag: &str, env: &str) -> anyhow::Result<TcpListener> {
    use std::io::ErrorKind;
    TcpListener::bind(address).await.map_err(|e| {
        let port = address.port();
        let hint = match e.kind() {
            ErrorKind::AddrInUse => format!("port {port} is already in use by another program"),
            ErrorKind::PermissionDenied => {
                format!(
                    "this user may not listen on port {port} (ports below 1024 need privileges)"
                )
            }
            ErrorKind::AddrNotAvailable => {
                format!("{} is not an address of this machine", address.ip())
            }
            _ => e.to_string(),
        };
        anyhow::anyhow!(
            "cannot listen on {address}: {hint}; choose another address with \
             {flag} HOST:PORT (or {env}), e.g. {flag} 127.0.0.1:{} \
             (port 0 picks a free one)",
            port.wrapping_add(1).max(1024)
        )
    })
}

/// Cancels `token` on SIGINT (Ctrl-C) or SIGTERM.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate => {}
        }
        tracing::info!("shutdown signal received");
        token.cancel();
    });
}
