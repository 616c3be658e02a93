//! The real server as a child process: the release `tickets` binary started
//! with `serve --listen 127.0.0.1:0` on a fresh database, so the load
//! generator (this process) and the server never share a runtime or a heap.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use api::auth::{Claims, JwtKeys};
use domain::Role;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::backend::Backend;

/// The secret the benchmark's servers sign tokens with.
const SECRET: &str = "tickets-bench-secret";

/// A running `tickets serve`; killed if dropped without [`ServerProcess::stop`].
pub struct ServerProcess {
    child: Child,
    pub pid: u32,
    /// `127.0.0.1:PORT`.
    pub address: String,
    keys: JwtKeys,
    schema: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts `bin` on a fresh SQLite file or PostgreSQL schema.
    pub async fn start(
        bin: &Path,
        backend: Backend,
        postgres_url: &str,
    ) -> anyhow::Result<ServerProcess> {
        let dir = tempfile::Builder::new()
            .prefix("tickets-bench-server-")
            .tempdir()?;
        let mut command = Command::new(bin);
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("TICKETS_JWT_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .env_remove("TICKETS_LISTEN")
            .env_remove("TICKETS_PRODUCTION")
            .env_remove("TICKETS_EVENT_STORE_URL")
            // A few load-generating users far beyond a person's pace: the
            // scenarios measure throughput, so the rate limits are off.
            .env("TICKETS_RATE_MUTATIONS_PER_MINUTE", "0")
            .env("TICKETS_RATE_OPERATIONS_PER_MINUTE", "0")
            .env("TICKETS_RATE_ANONYMOUS_PER_MINUTE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("server.log"))?)
            .kill_on_drop(true);
        let schema = match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("tickets.db").display());
                command
                    .env("TICKETS_DATABASE_URL", url)
                    .env_remove("TICKETS_DATABASE_SCHEMA");
                None
            }
            Backend::Postgres => {
                let schema = format!("bench_{}", Uuid::new_v4().simple());
                command
                    .env("TICKETS_DATABASE_URL", postgres_url)
                    .env("TICKETS_DATABASE_SCHEMA", &schema);
                Some((postgres_url.to_string(), schema))
            }
        };
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("the server exited at once"))?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut first = String::new();
        tokio::time::timeout(
            Duration::from_secs(60),
            BufReader::new(stdout).read_line(&mut first),
        )
        .await
        .context("the server did not start within 60 s")??;
        let Some(address) = first.trim().strip_prefix("listening on http://") else {
            let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
            bail!("the server did not say where it listens (got {first:?}); its log:\n{log}");
        };
        Ok(ServerProcess {
            address: address.to_string(),
            child,
            pid,
            keys: JwtKeys::new(SECRET),
            schema,
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:PORT/graphql`.
    pub fn graphql_url(&self) -> String {
        format!("http://{}/graphql", self.address)
    }

    /// A token for `sub`, valid for two hours (longer than any run).
    pub fn token(&self, sub: &str, roles: Vec<Role>, teams: Vec<String>) -> anyhow::Result<String> {
        let claims = Claims {
            sub: sub.to_string(),
            exp: chrono::Utc::now().timestamp() + 7200,
            roles,
            teams,
            given_name: None,
            family_name: None,
            email: None,
        };
        self.keys
            .mint(&claims)
            .map_err(|e| anyhow!("minting a token: {e}"))
    }

    /// The server's resident memory (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| anyhow!("no VmRSS for process {}", self.pid))
    }

    /// SIGTERM, then at most 20 s for a graceful exit, then SIGKILL; drops a
    /// PostgreSQL schema it made.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = std::process::Command::new("kill")
            .arg(self.pid.to_string())
            .status();
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await?;
        }
        if let Some((url, schema)) = self.schema.take() {
            let admin = sqlx::PgPool::connect(&url).await?;
            sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .execute(&admin)
                .await?;
            admin.close().await;
        }
        Ok(())
    }
}

/// The `tickets` binary: `--tickets-bin`, else the one next to this binary
/// (target/<profile>/tickets), built with cargo first (a no-op when it is up
/// to date) so a stale server is never measured.
pub fn tickets_bin(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.to_path_buf());
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("directory of tickets-bench")?;
    let bin = dir.join(format!("tickets{}", std::env::consts::EXE_SUFFIX));
    {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = std::process::Command::new(cargo);
        build.args(["build", "-p", "api", "--bin", "tickets"]);
        if dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .context("running cargo build for the tickets binary")?;
        if !status.success() {
            bail!("building the tickets binary failed");
        }
    }
    Ok(bin)
}
