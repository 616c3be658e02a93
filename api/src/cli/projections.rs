//! `tickets projections status` and `tickets projections rebuild [NAME]`:
//! operating the read models of a database a server may be running on.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Subcommand;
use domain::SlaPolicy;
use indicatif::{ProgressBar, ProgressStyle};
use projections::metrics::MetricsProjection;
use projections::notifications::NotificationsProjection;
use projections::rebuild::{rebuild_all, Progress};
use projections::report::status_report;
use projections::{Projection, ProjectionState, ReadDb, TicketsProjection, UsersProjection};
use store::EventStore;

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Each projection's checkpoint, lag behind the head of the log, and state.
    Status,
    /// Rebuild one projection (or every one) from the whole log. A server on
    /// the same database keeps serving the old model until the new one is
    /// swapped in, complete.
    Rebuild {
        /// tickets, users, queue_metrics or notifications; all when omitted.
        name: Option<String>,
    },
}

/// Every projection the server runs, by name.
pub fn catalogue(policy: SlaPolicy) -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(TicketsProjection),
        Arc::new(UsersProjection),
        Arc::new(MetricsProjection::new(policy)),
        Arc::new(NotificationsProjection::new()),
    ]
}

/// `policy` is the server's SLA policy: a rebuilt `queue_metrics` counts
/// breaches against the same targets as the running server.
pub async fn run(
    command: ProjectionsCommand,
    log: Arc<dyn EventStore>,
    db: ReadDb,
    policy: SlaPolicy,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        ProjectionsCommand::Status => print_status(&*log, &db, out).await,
        ProjectionsCommand::Rebuild { name } => {
            let all = catalogue(policy);
            let chosen: Vec<_> = match &name {
                None => all,
                Some(name) => all.into_iter().filter(|p| p.name() == name).collect(),
            };
            if chosen.is_empty() {
                let names: Vec<_> = catalogue(policy)
                    .iter()
                    .map(|p| p.name().to_string())
                    .collect();
                bail!(
                    "no projection named '{}' (known: {})",
                    name.unwrap_or_default(),
                    names.join(", ")
                );
            }
            rebuild_chosen(log, &db, chosen, out).await
        }
    }
}

/// Rebuilds `chosen` from one reading of the log (each page read and decoded
/// once, applied to every shadow), then swaps each in.
async fn rebuild_chosen(
    log: Arc<dyn EventStore>,
    db: &ReadDb,
    chosen: Vec<Arc<dyn Projection>>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let names: Vec<String> = chosen.iter().map(|p| p.name().to_string()).collect();
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} events  {msg}")
            .context("progress bar template")?
            .progress_chars("=> "),
    );
    bar.set_prefix(names.join(", "));
    let shown = bar.clone();
    // Every shadow is fed the same page, so any one projection's progress is
    // the rebuild's.
    let first = names.first().cloned().unwrap_or_default();
    let rebuilt = rebuild_all(log, db, chosen, move |name: &str, p: Progress| {
        if name == first {
            shown.set_length(p.total.max(p.done));
            shown.set_position(p.done);
            shown.set_message(rate_and_eta(&p));
        }
    })
    .await
    .with_context(|| format!("rebuilding {}", names.join(", ")))?;
    bar.finish_and_clear();
    for r in rebuilt {
        writeln!(out, "rebuilt {} up to position {}", r.name, r.position)?;
    }
    Ok(())
}

fn rate_and_eta(p: &Progress) -> String {
    let eta = p
        .eta
        .map(|d| format!(", ETA {}", human(d)))
        .unwrap_or_default();
    format!("{:.0} events/s{eta}", p.events_per_sec)
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

async fn print_status(
    log: &dyn EventStore,
    db: &ReadDb,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let reports = status_report(log, db).await?;
    writeln!(
        out,
        "{:<14} {:>12} {:>8}  {:<10} error",
        "projection", "checkpoint", "lag", "state"
    )?;
    for r in reports {
        let state = match r.state {
            ProjectionState::Running => "running",
            ProjectionState::Failed => "failed",
            ProjectionState::Rebuilding => "rebuilding",
        };
        writeln!(
            out,
            "{:<14} {:>12} {:>8}  {:<10} {}",
            r.name,
            r.checkpoint.to_cursor(),
            r.lag,
            state,
            r.error.unwrap_or_default()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Durations print the way an operator reads them.
    #[test]
    fn durations_print_in_hours_minutes_or_seconds() {
        assert_eq!(human(Duration::from_secs(42)), "42s");
        assert_eq!(human(Duration::from_secs(125)), "2m05s");
        assert_eq!(human(Duration::from_secs(3 * 3600 + 7 * 60)), "3h07m");
    }

    /// The names the CLI accepts are the checkpoint names the runners use.
    #[test]
    fn the_catalogue_names_every_projection_the_server_runs() {
        let names: Vec<_> = catalogue(SlaPolicy::default())
            .iter()
            .map(|p| p.name().to_string())
            .collect();
        assert_eq!(
            names,
            ["tickets", "users", "queue_metrics", "notifications"]
        );
    }
}
