//! `tickets demo`: fills the configured database with a realistic data set —
//! queues with teams of agents, an admin, a few hundred requesters, and a few
//! thousand tickets with weeks of history — through the real command path
//! ([`CommandService`] and [`UserDirectory`]), so every event is one the API
//! could have written and every read model is built the usual way.
//!
//! - Time: commands run with a backdated clock ([`CommandService::execute_at`]),
//!   so tickets are days and weeks old. Profiles carry no time of their own.
//! - Deterministic: everything is drawn from `--seed` before anything runs
//!   (`plan`); concurrency changes the order of the log, not what it says.
//!   Ticket references follow creation time: tickets are created one by one,
//!   oldest first, then their histories run concurrently.
//! - Repeatable: every command carries an idempotency key derived from the
//!   seed, so running the same demo again writes nothing new, and an
//!   interrupted run picks up where it stopped. Another seed adds another set.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use chrono::Utc;
use clap::Args;
use domain::{Command, RelatedTicket};
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use store::Position;
use uuid::Uuid;

mod cast;
mod plan;
mod words;

use crate::command_service::{CommandOutcome, CommandRequest, CommandService};
use crate::users::UserDirectory;
use cast::Cast;
use plan::TicketPlan;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many tickets to open.
    #[arg(long, default_value_t = 2000)]
    pub tickets: usize,
    /// How many requesters open them.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub requesters: u64,
    /// The tickets are opened over this many past days.
    #[arg(long, default_value_t = 42, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
    /// The same seed gives the same data set.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Tickets whose histories are written at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub concurrency: u64,
}

/// What a run wrote, for the closing lines.
struct Tally {
    /// The head of the log when the run began: a rerun's commands answer with
    /// the events of the first run, which are before it.
    since: Position,
    events: AtomicU64,
}

impl Tally {
    fn since(head: Position) -> Tally {
        Tally {
            since: head,
            events: AtomicU64::new(0),
        }
    }

    fn add(&self, n: usize) {
        self.events.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The command's new events (and, for a new ticket, its reference's).
    fn count(&self, outcome: &CommandOutcome, creates: bool) {
        let new = outcome
            .events
            .iter()
            .filter(|e| e.position > self.since)
            .count();
        self.add(new + usize::from(creates && new > 0));
    }
}

pub(super) async fn run(
    service: &CommandService,
    users: &UserDirectory,
    args: DemoArgs,
    database: &str,
    schema: Option<&str>,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let now = Utc::now();
    let cast = Cast::draw(&mut plan::stream(args.seed, 0), args.requesters as usize);
    let plans = plan::tickets(args.seed, &cast, args.tickets, args.days, now);
    let relations = plan::relations(args.seed, &cast, &plans, now);
    let tally = Arc::new(Tally::since(service.store().head().await?));
    let steps: usize = plans.iter().map(|p| p.steps.len()).sum();
    let bar =
        progress((cast.everyone().count() + plans.len() + steps + 2 * relations.len()) as u64)?;

    bar.set_prefix("users");
    for profile in cast.everyone() {
        if users.record(profile).await? {
            tally.add(1);
        }
        bar.inc(1);
    }

    bar.set_prefix("tickets");
    let key = |index: usize| format!("demo-{}-{index}", args.seed);
    let mut ids = Vec::with_capacity(plans.len());
    for p in &plans {
        let outcome = service
            .create(
                p.requester.clone(),
                p.request.clone(),
                Some(p.description.clone()),
                p.priority,
                p.queue.clone(),
                p.tags.clone(),
                Some(key(p.index)),
                p.created_at,
            )
            .await
            .with_context(|| format!("creating demo ticket {}", p.index))?;
        tally.count(&outcome, true);
        ids.push(outcome.ticket.id);
        bar.inc(1);
    }

    bar.set_prefix("histories");
    let ids = Arc::new(ids);
    futures::stream::iter(plans.iter())
        .map(|p| {
            let (service, tally, bar) = (service.clone(), tally.clone(), bar.clone());
            let id = ids[p.index];
            let key = key(p.index);
            async move { history(&service, id, &key, p, &tally, &bar).await }
        })
        .buffer_unordered(args.concurrency as usize)
        .try_collect::<Vec<()>>()
        .await?;

    bar.set_prefix("relations");
    for (n, r) in relations.iter().enumerate() {
        // Both halves by hand, at the planned time: `execute` would stamp now.
        // The plan relates only tickets it keeps, in a queue the actor's team
        // works, so each side finds the other live.
        for (this, that) in [(r.from, r.to), (r.to, r.from)] {
            let mut req = CommandRequest::new(
                ids[this],
                Command::Relate {
                    related_id: ids[that],
                    related: RelatedTicket::Live,
                },
                r.actor.clone(),
            );
            req.idempotency_key = Some(format!("demo-{}-relation-{n}", args.seed));
            let outcome = service
                .execute_at(req, r.at)
                .await
                .with_context(|| format!("relating demo tickets {this} and {that}"))?;
            tally.count(&outcome, false);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();

    let events = tally.events.load(Ordering::Relaxed);
    let mut flags = if database == crate::stores::DEFAULT_DATABASE_URL {
        String::new()
    } else {
        format!(" --database-url '{}'", crate::stores::redact(database))
    };
    if let Some(schema) = schema {
        flags.push_str(&format!(" --database-schema {schema}"));
    }
    summary(out, &cast, &plans, &args, events, &flags, started)
}

/// Runs one ticket's planned steps in order, each at its own time.
async fn history(
    service: &CommandService,
    id: Uuid,
    key: &str,
    plan: &TicketPlan,
    tally: &Tally,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    for (n, step) in plan.steps.iter().enumerate() {
        let mut req = CommandRequest::new(id, step.command.clone(), step.actor.clone());
        req.idempotency_key = Some(format!("{key}-{n}"));
        let outcome = service.execute_at(req, step.at).await.with_context(|| {
            format!(
                "demo ticket {}: step {n} ({} by {})",
                plan.index,
                step.command.name(),
                step.actor.user_id
            )
        })?;
        tally.count(&outcome, false);
        bar.inc(1);
    }
    Ok(())
}

fn progress(len: u64) -> anyhow::Result<ProgressBar> {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} [{bar:30}] {pos}/{len} commands  {per_sec}  ETA {eta}",
        )
        .context("progress bar template")?
        .progress_chars("=> "),
    );
    Ok(bar)
}

/// The closing lines: what was written, and how to look at it.
fn summary(
    out: &mut impl std::io::Write,
    cast: &Cast,
    plans: &[TicketPlan],
    args: &DemoArgs,
    events: u64,
    database_flags: &str,
    started: Instant,
) -> anyhow::Result<()> {
    let seconds = started.elapsed().as_secs_f64();
    if events == 0 && !plans.is_empty() {
        writeln!(
            out,
            "nothing new: this database already holds the demo data set of seed {} \
             (run with another --seed to add one more)",
            args.seed
        )?;
    } else {
        writeln!(
            out,
            "wrote {events} events in {seconds:.1} s: {} queues, {} agents, 1 admin, \
             {} requesters, {} tickets (seed {})",
            words::QUEUES.len(),
            cast.agents.len(),
            cast.requesters.len(),
            plans.len(),
            args.seed
        )?;
    }
    let Some(agent) = cast.agents.first() else {
        bail!("the demo has no agents");
    };
    let requester = plans
        .first()
        .map(|p| p.requester.user_id.clone())
        .unwrap_or_else(|| cast.requesters[0].id.clone());
    let teams: String = agent.teams.iter().map(|t| format!(" --team {t}")).collect();
    writeln!(out, "start the server:  tickets{database_flags} serve")?;
    writeln!(
        out,
        "tokens (same TICKETS_JWT_SECRET as the server; none = development secret):"
    )?;
    writeln!(
        out,
        "  admin:      tickets token --sub {} --role ADMIN{}",
        cast.admin.id,
        claims(&cast.admin)
    )?;
    writeln!(
        out,
        "  agent:      tickets token --sub {} --role AGENT{teams}{}",
        agent.id,
        claims(agent)
    )?;
    if let Some(requester) = cast.requesters.iter().find(|r| r.id == requester) {
        writeln!(
            out,
            "  requester:  tickets token --sub {}{}",
            requester.id,
            claims(requester)
        )?;
    }
    Ok(())
}

/// The name and e-mail claims of a profile: a token without them would record
/// the user again without a name (auth.md: profiles follow the claims).
fn claims(profile: &crate::users::UserProfile) -> String {
    let mut out = String::new();
    for (flag, value) in [
        ("--given-name", &profile.first_name),
        ("--family-name", &profile.last_name),
        ("--email", &profile.email),
    ] {
        if let Some(value) = value {
            out.push_str(&format!(" {flag} {value}"));
        }
    }
    out
}
