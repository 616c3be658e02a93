//! One row per measurement: printed as a table row and appended to
//! `BENCHMARKS.md` at the repository root with everything needed to judge it
//! later (machine, backend, date, commit, settings).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;

use crate::machine::Machine;

/// What one scenario measured on one backend with one setting.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: String,
    pub backend: String,
    /// The knobs of this run (writers, events, sockets, rate...).
    pub settings: String,
    /// The figures, e.g. `12,345 cmd/s, p50 0.9 ms, p99 3.1 ms`.
    pub result: String,
    /// The target for this row, in words.
    pub target: String,
    /// Whether the target was met; `None` when the row has no target (a tiny run).
    pub met: Option<bool>,
}

/// Where rows go: standard output always, `BENCHMARKS.md` unless `--no-record`.
pub struct Report {
    machine: Machine,
    commit: String,
    record: bool,
    path: PathBuf,
}

const HEADER: &str =
    "| date (UTC) | commit | machine | scenario | backend | settings | result | target | met |\n\
|---|---|---|---|---|---|---|---|---|\n";

impl Report {
    pub fn new(record: bool) -> Report {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(|root| root.join("BENCHMARKS.md"))
            .unwrap_or_else(|| PathBuf::from("BENCHMARKS.md"));
        Report {
            machine: Machine::detect(),
            commit: git_commit(),
            record,
            path,
        }
    }

    /// Prints the run's context once, before the first row.
    pub fn announce(&self) {
        println!("machine: {}", self.machine);
        println!("commit:  {}", self.commit);
        if !self.record {
            println!("(--no-record: BENCHMARKS.md is left as it is)");
        }
    }

    /// Prints `row` and, when recording, appends it to BENCHMARKS.md.
    pub fn emit(&self, row: &Row) -> anyhow::Result<()> {
        let line = self.line(row);
        println!("{line}");
        if self.record {
            let fresh = !self.path.exists();
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .with_context(|| format!("opening {}", self.path.display()))?;
            if fresh {
                file.write_all(HEADER.as_bytes())?;
            }
            writeln!(file, "{line}")?;
        }
        Ok(())
    }

    fn line(&self, row: &Row) -> String {
        let date = chrono::Utc::now().format("%Y-%m-%d %H:%M");
        let met = match row.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "n/a",
        };
        let cells = [
            date.to_string(),
            self.commit.clone(),
            self.machine.to_string(),
            row.scenario.clone(),
            row.backend.clone(),
            row.settings.clone(),
            row.result.clone(),
            row.target.clone(),
            met.to_string(),
        ];
        let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "/")).collect();
        format!("| {} |", cells.join(" | "))
    }
}

/// The checked-out commit, `-dirty` when tracked files differ from it, so a
/// figure is never credited to code it was not measured on.
fn git_commit() -> String {
    Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=10"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// `12345.6` as `12,346`: figures people read at a glance.
pub fn thousands(x: f64) -> String {
    let n = x.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Microseconds as milliseconds with two decimals.
pub fn ms(micros: u64) -> String {
    format!("{:.2} ms", micros as f64 / 1000.0)
}
