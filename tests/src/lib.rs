//! # Layout
//! Black-box tests of the `tickets` binary, in `tests/tests/`. This library only
//! finds (and if needed builds) the binary under test, so every test drives the
//! real program as a user would.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

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
