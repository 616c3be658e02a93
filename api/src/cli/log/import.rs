//! `tickets log import FILE`: an export appended to this store.
//!
//! Two passes over the file. The first checks it as `verify` checks a log
//! (positions rise, versions contiguous from 0, chains hold, events decode)
//! and refuses it whole at the first broken event, before anything is
//! written. The second appends the events in file order, each run of
//! consecutive events of one stream as one append at the version the file
//! gives (`NoStream` for version 0, else exactly the version before), with
//! the file's event ids. The store's idempotency on ids makes a second
//! import, or one resumed after an interruption, answer the runs already
//! stored with their original result and write only the rest (each append
//! is all or nothing; a run stored only in part is completed, see
//! `append_run`).
//!
//! The target store computes each hash itself, from its own chain; it must
//! equal the file's (the hash covers neither position nor time), else the
//! import stops. EventStoreDB stores no hashes, so there the check is
//! skipped. Positions and recording times are the target store's own.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::Path;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use store::{EventStore, ExpectedVersion, RecordedEvent, StoreError};

use super::file::{self, Reader};
use super::LogCheck;

/// Most events appended at once (a run of one stream is cut there).
const RUN: usize = 500;

pub async fn run(log: &dyn EventStore, path: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let open = || -> anyhow::Result<Reader<BufReader<File>>> {
        let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Reader::open(BufReader::new(f)).with_context(|| format!("{}", path.display()))
    };

    let mut check = LogCheck::default();
    let mut reader = open()?;
    while let Some(event) = reader.next_event()? {
        if let Err(broken) = check.verify(&event) {
            bail!(
                "{} does not verify, nothing was imported: {broken}",
                path.display()
            );
        }
    }
    let total = check.events();

    let head_before = log.head().await.context("reading the head of the log")?;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("[{bar:30}] {pos}/{len} events  {per_sec}  ETA {eta}")
            .context("progress bar template")?
            .progress_chars("=> "),
    );
    let mut reader = open()?;
    let mut run: Vec<RecordedEvent> = Vec::with_capacity(RUN);
    let mut added = 0_u64;
    loop {
        let next = reader.next_event()?;
        let continues = match (&next, run.first()) {
            (Some(e), Some(first)) => e.stream_id == first.stream_id && run.len() < RUN,
            _ => true,
        };
        if !continues || (next.is_none() && !run.is_empty()) {
            added += append_run(log, &run, head_before).await?;
            bar.inc(run.len() as u64);
            run.clear();
        }
        match next {
            Some(event) => run.push(event),
            None => break,
        }
    }
    bar.finish_and_clear();
    writeln!(
        out,
        "imported {added} events ({} of the file's {total} were already stored)",
        total - added
    )?;
    Ok(())
}

/// Appends one run of one stream; gives how many of its events are new
/// (placed after `head_before`).
///
/// A run of which only a first part is stored (an earlier import was cut
/// off in the middle of it: its file ended there) is refused by the store
/// as reusing ids; then the stored part is read back, checked to be the
/// file's, and the rest appended after it.
async fn append_run(
    log: &dyn EventStore,
    run: &[RecordedEvent],
    head_before: store::Position,
) -> anyhow::Result<u64> {
    let Some(first) = run.first() else {
        return Ok(0);
    };
    let stream = &first.stream_id;
    let context = || {
        format!(
            "appending {} events of {stream} from version {} (the store's stream is not \
             the file's)",
            run.len(),
            first.version
        )
    };
    let expected = match first.version {
        0 => ExpectedVersion::NoStream,
        v => ExpectedVersion::Exact(v - 1),
    };
    let events = run.iter().map(file::new_event).collect();
    let appended = match log.append(stream, expected, events).await {
        Err(StoreError::IdempotencyMismatch { .. }) => {
            let stored = log
                .read_stream(stream, first.version, run.len())
                .await
                .with_context(context)?;
            let same =
                stored.len() < run.len() && stored.iter().zip(run).all(|(s, r)| s.id == r.id);
            if !same {
                bail!("{}: its stored events differ from the file's", context());
            }
            return Box::pin(append_run(log, &run[stored.len()..], head_before)).await;
        }
        other => other.with_context(context)?,
    };
    for (want, got) in run.iter().zip(&appended.events) {
        if !got.hash.is_empty() && got.hash != want.hash {
            bail!(
                "event {} of {stream} was stored with hash {}, the file says {}: the store's \
                 stream is not the file's",
                want.id,
                got.hash,
                want.hash
            );
        }
    }
    Ok(appended
        .events
        .iter()
        .filter(|e| e.position > head_before)
        .count() as u64)
}
