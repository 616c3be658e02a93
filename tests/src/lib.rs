//! # Layout
//! Black-box tests of the `tickets` binary, in `tests/tests/`: `cli.rs` drives
//! the command line, `api/` the server over HTTP and WebSocket. This library
//! finds (and if needed builds) the binary under test, runs its commands, and
//! starts and stops real servers ([`Server`]), so every test drives the real
//! program as a user would; [`proxy::StallingProxy`] stands between a server
//! and its database to make the database stop answering.

pub mod proxy;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Path of the `tickets` binary of this workspace, built once per test run.
pub fn tickets_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // Test binaries live in target/<profile>/deps; the binary one level up.
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target/<profile> directory");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "-p", "api", "--bin", "tickets"]);
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build for the tickets binary");
        assert!(status.success(), "building the tickets binary failed");
        profile_dir.join(format!("tickets{}", std::env::consts::EXE_SUFFIX))
    })
    .clone()
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Runs `tickets` with `args` against `database_url`; no inherited configuration.
pub fn tickets(database_url: &str, args: &[&str]) -> Output {
    Command::new(tickets_bin())
        .args(args)
        .env("TICKETS_DATABASE_URL", database_url)
        .env_remove("TICKETS_ACTOR")
        .output()
        .expect("run tickets")
}

/// Standard output of a run that must succeed.
pub fn stdout_ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "tickets failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The run failed with exit status 1 and printed exactly one line on standard
/// error, an `error:` line, which it returns: how `tickets` reports a mistake.
pub fn one_error_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "exit status; stderr:\n{stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line:\n{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0].to_string()
}

/// The secret test servers sign tokens with.
pub const TEST_SECRET: &str = "black-box-test-secret";

/// A `tickets serve` process on a free port, killed when dropped.
pub struct Server {
    child: Option<Child>,
    /// `127.0.0.1:PORT`, as the server printed it.
    pub address: String,
    pub database_url: String,
    env: Vec<(String, String)>,
    log: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// A server on a fresh SQLite file, with the test secret.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Like [`Server::start`], with extra environment (e.g. limits).
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("tickets.db").display());
        Server::spawn(url, env, Some(dir))
    }

    /// A server on `database_url` (e.g. PostgreSQL with `TICKETS_DATABASE_SCHEMA`
    /// in `env`).
    pub fn spawn(
        database_url: String,
        env: &[(&str, &str)],
        dir: Option<tempfile::TempDir>,
    ) -> Server {
        Server::spawn_on("127.0.0.1:0", database_url, env, dir)
    }

    /// Stops this server with SIGTERM, keeping what [`Stopped::start`] needs
    /// to start it again on the same address, database and environment:
    /// what a client sees of a restart.
    pub fn stop_for_restart(mut self) -> Stopped {
        let status = self.stop();
        assert!(status.success(), "the server stopped with {status}");
        Stopped {
            address: self.address.clone(),
            database_url: self.database_url.clone(),
            env: std::mem::take(&mut self.env),
            dir: self._dir.take(),
        }
    }

    fn spawn_on(
        listen: &str,
        database_url: String,
        env: &[(&str, &str)],
        dir: Option<tempfile::TempDir>,
    ) -> Server {
        let log_dir = std::env::temp_dir();
        let log = log_dir.join(format!(
            "tickets-server-{}-{}.log",
            std::process::id(),
            unique()
        ));
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !env.iter().any(|(k, _)| k == "TICKETS_JWT_SECRET") {
            env.push(("TICKETS_JWT_SECRET".into(), TEST_SECRET.into()));
        }
        // Tests drive one user far faster than a person would: rate limits
        // are off unless a test sets them (as the rate-limit tests do).
        for limit in [
            "TICKETS_RATE_MUTATIONS_PER_MINUTE",
            "TICKETS_RATE_OPERATIONS_PER_MINUTE",
            "TICKETS_RATE_ANONYMOUS_PER_MINUTE",
        ] {
            if !env.iter().any(|(k, _)| k == limit) {
                env.push((limit.into(), "0".into()));
            }
        }
        let mut command = Command::new(tickets_bin());
        command
            .args(["serve", "--listen", listen])
            .env("TICKETS_DATABASE_URL", &database_url)
            .env_remove("TICKETS_LISTEN")
            .env_remove("TICKETS_PRODUCTION")
            .env(
                "RUST_LOG",
                std::env::var("TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("server log file"));
        for (k, v) in &env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start tickets serve");
        let stdout = child.stdout.take().expect("server stdout");
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("read the server's first line");
        let Some(address) = first
            .trim()
            .strip_prefix("listening on http://")
            .map(str::to_string)
        else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the server did not say where it listens (got {first:?}); its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Server {
            child: Some(child),
            address,
            database_url,
            env,
            log,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT/graphql`.
    pub fn graphql_url(&self) -> String {
        format!("http://{}/graphql", self.address)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// A token from `tickets token`, signed with this server's secret.
    pub fn token(&self, sub: &str, roles: &[&str], teams: &[&str]) -> String {
        self.token_for(sub, roles, teams, "1h")
    }

    pub fn token_for(&self, sub: &str, roles: &[&str], teams: &[&str], ttl: &str) -> String {
        let mut args = vec!["token", "--sub", sub, "--ttl", ttl];
        for role in roles {
            args.extend(["--role", role]);
        }
        for team in teams {
            args.extend(["--team", team]);
        }
        let mut command = Command::new(tickets_bin());
        command.args(&args).env_remove("TICKETS_PRODUCTION");
        for (k, v) in &self.env {
            command.env(k, v);
        }
        stdout_ok(&command.output().expect("run tickets token"))
            .trim()
            .to_string()
    }

    /// What the server logged so far (standard error).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Runs `tickets <args>` on this server's database (and schema), as an
    /// operator beside the server would; its standard output, the run
    /// having succeeded.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut all: Vec<&str> = Vec::new();
        if let Some((_, schema)) = self
            .env
            .iter()
            .find(|(k, _)| k == "TICKETS_DATABASE_SCHEMA")
        {
            all.extend(["--database-schema", schema.as_str()]);
        }
        all.extend(args);
        stdout_ok(&tickets(&self.database_url, &all))
    }

    /// Kills the process with SIGKILL (no shutdown of any kind) and waits
    /// for it to be gone.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL the server");
            child.wait().expect("wait for the killed server");
        }
    }

    /// Sends SIGTERM and waits (at most 20 s) for the process to exit.
    pub fn terminate(mut self) -> ExitStatus {
        self.stop()
    }

    fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running server");
        let sent = Command::new("kill")
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait for the server") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "the server did not stop within 20 s of SIGTERM:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A server stopped by [`Server::stop_for_restart`].
pub struct Stopped {
    address: String,
    database_url: String,
    env: Vec<(String, String)>,
    dir: Option<tempfile::TempDir>,
}

impl Stopped {
    /// The same server again, on the address it had.
    pub fn start(self) -> Server {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Server::spawn_on(&self.address, self.database_url, &env, self.dir)
    }
}

/// A number unique within this test process.
pub fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    NEXT.fetch_add(1, Ordering::Relaxed) * 1_000_000_000 + nanos
}
