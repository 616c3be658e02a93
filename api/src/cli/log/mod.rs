//! `tickets log`: the event log's audit tooling.
//!
//! - `verify`: every event decodes, positions rise, versions are contiguous
//!   per stream and every hash chain holds (`check`); the first broken event
//!   is named and the command fails.
//! - `digest`: one SHA-256 over every stream's head (`check`).
//! - `export`: the log as JSON lines (`file`: the versioned line format).
//! - `import`: such a file into any store, idempotently (`import`).
//!
//! Each reads the log in pages through `EventStore::read_all`, so memory
//! grows with the number of streams (one head each), never with events.

mod check;
mod file;
mod import;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use store::{EventStore, Position};

pub use check::{Broken, LogCheck};

/// Events read from the log per page.
const PAGE: usize = 2000;

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Check the whole log: every event decodes (old schema versions
    /// upcast), positions strictly increase, versions are contiguous per
    /// stream and every hash chain holds. Names the first broken event and
    /// exits with status 1.
    Verify,
    /// Print one SHA-256 over every stream's last event (its version and
    /// hash), to write down and compare later: a stream removed whole, which
    /// leaves every remaining chain intact, changes it too.
    Digest,
    /// Write events as JSON lines, in log order (see the README, "Audit and
    /// replay", for the line format).
    Export(ExportArgs),
    /// Append the events of an exported file to this store, keeping their
    /// ids, stream versions and order. Refuses a file that does not verify;
    /// importing a file again, or again after an interruption, adds only
    /// what is missing.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only events after this position.
    #[arg(long, default_value = "0")]
    pub after: Position,
    /// Only events up to this position (included).
    #[arg(long, conflicts_with = "at")]
    pub until: Option<Position>,
    /// Only events recorded up to this time (RFC 3339, included).
    #[arg(long)]
    pub at: Option<DateTime<Utc>>,
    /// Only the events of this stream (e.g. ticket-UUID).
    #[arg(long)]
    pub stream: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A file written by `tickets log export`.
    pub file: PathBuf,
}

pub async fn run(
    command: LogCommand,
    log: Arc<dyn EventStore>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        LogCommand::Verify => {
            let check = read_log(&*log, |check, event| check.verify(event)).await?;
            writeln!(
                out,
                "verified {} events in {} streams up to position {}",
                check.events(),
                check.streams(),
                check.last()
            )?;
            Ok(())
        }
        LogCommand::Digest => {
            let check = read_log(&*log, |check, event| {
                check.record(event);
                Ok(())
            })
            .await?;
            writeln!(out, "{}", check.digest())?;
            Ok(())
        }
        LogCommand::Export(args) => export(&*log, args, out).await,
        LogCommand::Import(args) => import::run(&*log, &args.file, out).await,
    }
}

/// Reads the whole log through `step`, stopping at the first broken event.
async fn read_log(
    log: &dyn EventStore,
    mut step: impl FnMut(&mut LogCheck, &store::RecordedEvent) -> Result<(), Broken>,
) -> anyhow::Result<LogCheck> {
    let bar = progress(log).await?;
    let mut check = LogCheck::default();
    let mut after = Position::START;
    loop {
        let page = log
            .read_all(after, PAGE)
            .await
            .with_context(|| format!("reading the log after position {after}"))?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for event in &page {
            if let Err(broken) = step(&mut check, event) {
                bar.finish_and_clear();
                bail!("the log does not verify: {broken}");
            }
        }
        bar.set_position(after.commit);
    }
    bar.finish_and_clear();
    Ok(check)
}

/// A bar over the log's positions, drawn on standard error only when it is
/// a terminal (indicatif hides it otherwise).
async fn progress(log: &dyn EventStore) -> anyhow::Result<ProgressBar> {
    let head = log.head().await.context("reading the head of the log")?;
    let bar = ProgressBar::new(head.commit);
    bar.set_style(
        ProgressStyle::with_template("[{bar:30}] position {pos}/{len}  {per_sec}  ETA {eta}")
            .context("progress bar template")?
            .progress_chars("=> "),
    );
    Ok(bar)
}

async fn export(
    log: &dyn EventStore,
    args: ExportArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut file;
    let mut stdout;
    let sink: &mut dyn Write = match &args.output {
        Some(path) => {
            file = std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            );
            &mut file
        }
        None => {
            stdout = std::io::BufWriter::new(out);
            &mut stdout
        }
    };
    file::write_header(sink)?;
    let bar = progress(log).await?;
    let mut after = args.after;
    let mut written = 0_u64;
    'pages: loop {
        let page = log
            .read_all(after, PAGE)
            .await
            .with_context(|| format!("reading the log after position {after}"))?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for event in page {
            let past_until = args.until.is_some_and(|until| event.position > until);
            let past_at = args.at.is_some_and(|at| event.recorded_at > at);
            if past_until || past_at {
                break 'pages;
            }
            if args.stream.as_ref().is_some_and(|s| *s != event.stream_id) {
                continue;
            }
            file::write_event(sink, event)?;
            written += 1;
        }
        bar.set_position(after.commit);
    }
    sink.flush().context("writing the export")?;
    bar.finish_and_clear();
    if let Some(path) = &args.output {
        eprintln!("exported {written} events to {}", path.display());
    }
    Ok(())
}
