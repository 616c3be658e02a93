//! Issue 24: `bulkUpdateSupportTickets` on 500 tickets, through the real
//! server over HTTP, as an agent's client sends it. Each call sets every
//! ticket's priority and adds a tag (two events per ticket, 1,000 per call);
//! a call is timed from the request sent to the answer read, and counts only
//! if every ticket succeeded.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use domain::Role;
use futures::{stream, StreamExt, TryStreamExt};
use serde_json::{json, Value};

use crate::backend::Backend;
use crate::report::{ms, thousands, Row};
use crate::scenarios::fanout::admin;
use crate::server::{tickets_bin, ServerProcess};
use crate::Settings;

const CREATE: &str = "mutation($r: String!) { r: createSupportTicket(input: {request: $r, \
    queue: \"support\", priority: MEDIUM}) { success errorCode error ticket { id } } }";
const BULK: &str = "mutation($ids: [String!]!, $p: TicketPriority!, $t: String!) { \
    bulkUpdateSupportTickets(ids: $ids, action: {priority: $p, addTags: [$t]}) { succeeded failed } }";

pub async fn run(settings: &Settings, backend: Backend) -> anyhow::Result<Vec<Row>> {
    let (tickets, calls) = if settings.tiny() { (20, 2) } else { (500, 10) };
    let bin = tickets_bin(settings.tickets_bin.as_deref())?;
    let server = ServerProcess::start(&bin, backend, &settings.postgres_url).await?;
    println!(
        "  bulk: {tickets} tickets, {calls} calls, server pid {}",
        server.pid
    );
    let outcome = tokio::time::timeout(settings.deadline, measure(&server, tickets, calls))
        .await
        .unwrap_or_else(|_| bail!("bulk passed its deadline of {:?}", settings.deadline));
    server.stop().await?;
    let took = outcome?;
    let mut sorted = took.clone();
    sorted.sort();
    let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let p50 = sorted[sorted.len() / 2];
    let max = sorted[sorted.len() - 1];
    let events = (tickets * 2 * calls) as f64;
    let total: Duration = took.iter().sum();
    Ok(vec![Row {
        scenario: "bulk".into(),
        backend: backend.to_string(),
        settings: format!(
            "{tickets} tickets per call, {calls} calls one after the other, each ticket: \
             priority + tag (2 events)"
        ),
        result: format!(
            "p50 {}, max {} per call, {} events/s",
            ms(micros(p50)),
            ms(micros(max)),
            thousands(events / total.as_secs_f64())
        ),
        target: "a 500-ticket call well under 1 s".into(),
        met: (!settings.tiny()).then_some(max < Duration::from_secs(1)),
    }])
}

/// Creates `tickets` tickets, then times `calls` bulk calls over all of them.
async fn measure(
    server: &ServerProcess,
    tickets: usize,
    calls: usize,
) -> anyhow::Result<Vec<Duration>> {
    let http = reqwest::Client::new();
    let creator = admin(server, &http)?;
    let ids: Vec<String> = stream::iter(0..tickets)
        .map(|n| {
            let creator = &creator;
            async move {
                let r = creator
                    .mutate(CREATE, json!({ "r": format!("Bulk ticket {n}") }))
                    .await?;
                Ok::<_, anyhow::Error>(r["ticket"]["id"].as_str().context("ticket id")?.to_string())
            }
        })
        .buffered(16)
        .try_collect()
        .await?;
    let token = server.token("bench-agent", vec![Role::Agent], vec!["support".into()])?;
    let mut took = Vec::with_capacity(calls);
    for call in 0..calls {
        let priority = if call % 2 == 0 { "HIGH" } else { "LOW" };
        let started = Instant::now();
        let body: Value = http
            .post(server.graphql_url())
            .bearer_auth(&token)
            .json(&json!({ "query": BULK, "variables": { "ids": ids, "p": priority, "t": format!("bulk-{call}") } }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        took.push(started.elapsed());
        let result = &body["data"]["bulkUpdateSupportTickets"];
        if result["succeeded"] != json!(tickets) {
            bail!("bulk call {call} did not succeed on every ticket: {body}");
        }
    }
    Ok(took)
}
