//! `queue_metrics`: writing the per-queue figures, and reading them for the API.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use store::Position;

use super::facts::Contribution;
use crate::bind::{execute, fetch, fetch_db, Arg};
use crate::db::{ReadDb, ReadTx, RowPosition};
use crate::error::ProjectionError;

/// Adds `delta` to the queue's sums, creating its row if needed.
pub(super) async fn add(
    tx: &mut ReadTx,
    queue: &str,
    delta: &Contribution,
    position: RowPosition,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let columns = Contribution::COLUMNS.join(", ");
    let values: Vec<String> = (0..Contribution::COLUMNS.len())
        .map(|i| format!("${}", i + 2))
        .collect();
    let sums: Vec<String> = Contribution::COLUMNS
        .iter()
        .map(|c| format!("{c} = queue_metrics.{c} + excluded.{c}"))
        .collect();
    let n = Contribution::COLUMNS.len();
    let sql = format!(
        "INSERT INTO queue_metrics (queue, {columns}, oldest_open_created_at, day, \
         created_today, resolved_today, position, prepare_offset, updated_at) \
         VALUES ($1, {}, NULL, ${}, 0, 0, ${}, ${}, ${}) ON CONFLICT (queue) DO UPDATE SET {}, \
         position = CASE WHEN {later} THEN excluded.position ELSE queue_metrics.position END, \
         prepare_offset = CASE WHEN {later} THEN excluded.prepare_offset \
         ELSE queue_metrics.prepare_offset END, \
         updated_at = excluded.updated_at",
        values.join(", "),
        n + 2,
        n + 3,
        n + 4,
        n + 5,
        sums.join(", "),
        later = "(excluded.position, excluded.prepare_offset) \
                 > (queue_metrics.position, queue_metrics.prepare_offset)",
    );
    let mut args = vec![Arg::Text(queue)];
    args.extend(delta.0.iter().map(|v| Arg::Int(*v)));
    args.push(Arg::Day(at.date_naive()));
    args.push(Arg::Int(position.position));
    args.push(Arg::Int(position.prepare_offset));
    args.push(Arg::Time(at));
    execute(tx, &sql, &args).await?;
    Ok(())
}

/// Re-reads the figures that are not sums, for the UTC day of `at`.
pub(super) async fn refresh(
    tx: &mut ReadTx,
    queue: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let day = at.date_naive();
    let start = day.and_time(chrono::NaiveTime::MIN).and_utc();
    let end = start + Duration::days(1);
    execute(
        tx,
        "UPDATE queue_metrics SET \
         oldest_open_created_at = (SELECT MIN(created_at) FROM queue_ticket_facts \
           WHERE queue = $1 AND status IN ('OPEN', 'IN_PROGRESS', 'ON_HOLD') AND NOT deleted), \
         created_today = (SELECT COUNT(*) FROM queue_ticket_facts \
           WHERE queue = $1 AND created_at >= $2 AND created_at < $3 AND NOT deleted), \
         resolved_today = (SELECT COUNT(*) FROM queue_ticket_facts \
           WHERE queue = $1 AND resolved_at >= $2 AND resolved_at < $3 AND NOT deleted), \
         day = $4, updated_at = $5 WHERE queue = $1",
        &[
            Arg::Text(queue),
            Arg::Time(start),
            Arg::Time(end),
            Arg::Day(day),
            Arg::Time(at),
        ],
    )
    .await?;
    Ok(())
}

/// [`refresh`] of every queue as of its `updated_at`: the time of the last
/// event that added to its sums, which every event that refreshes a queue
/// does ([`add`] sets it, as `refresh` does, to the event's time).
pub(super) async fn refresh_as_last_updated(tx: &mut ReadTx) -> Result<(), sqlx::Error> {
    let queues = fetch(tx, "SELECT queue, updated_at FROM queue_metrics", &[]).await?;
    for row in queues {
        refresh(tx, &row.text("queue")?, row.time("updated_at")?).await?;
    }
    Ok(())
}

/// Queues whose "today" figures are for another day than `day`.
pub(super) async fn stale_days(
    tx: &mut ReadTx,
    day: NaiveDate,
) -> Result<Vec<String>, sqlx::Error> {
    fetch(
        tx,
        "SELECT queue FROM queue_metrics WHERE day <> $1",
        &[Arg::Day(day)],
    )
    .await?
    .iter()
    .map(|row| row.text("queue"))
    .collect()
}

/// The contract's `QueueMetrics` of one queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueMetricsRow {
    pub queue: String,
    pub open: i64,
    pub in_progress: i64,
    pub on_hold: i64,
    pub resolved: i64,
    pub closed: i64,
    pub unassigned: i64,
    /// Not-closed tickets per priority: LOW, MEDIUM, HIGH, CRITICAL.
    pub by_priority: [(domain::TicketPriority, i64); 4],
    pub avg_first_response_seconds: Option<f64>,
    pub avg_resolution_seconds: Option<f64>,
    pub oldest_open_created_at: Option<DateTime<Utc>>,
    pub sla_breaches: i64,
    pub created_today: i64,
    pub resolved_today: i64,
    /// The UTC day `created_today` and `resolved_today` count.
    pub day: NaiveDate,
    /// The log position the figures are computed up to: the projection's
    /// checkpoint when they were read.
    pub position: Position,
    pub updated_at: DateTime<Utc>,
}

impl QueueMetricsRow {
    /// `byPriority` as the contract's JSON: `{"LOW": n, ...}`.
    pub fn by_priority_json(&self) -> serde_json::Value {
        self.by_priority
            .iter()
            .map(|(p, n)| (p.as_str().to_string(), serde_json::json!(n)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// The figures of every queue (sorted by name), or of one. A queue that never
/// had a ticket has no row.
#[tracing::instrument(name = "queue_metrics.read", skip(db), err)]
pub async fn queue_metrics(
    db: &ReadDb,
    queue: Option<&str>,
) -> Result<Vec<QueueMetricsRow>, ProjectionError> {
    let position = crate::checkpoint::read(db, super::NAME).await?;
    let sql = format!(
        "SELECT queue, {}, oldest_open_created_at, day, created_today, resolved_today, \
         updated_at FROM queue_metrics {} ORDER BY queue",
        Contribution::COLUMNS.join(", "),
        if queue.is_some() {
            "WHERE queue = $1"
        } else {
            ""
        }
    );
    let args: Vec<Arg> = queue.map(Arg::Text).into_iter().collect();
    let rows = fetch_db(db, &sql, &args).await?;
    rows.iter()
        .map(|row| {
            let avg = |count: &str, sum: &str| -> Result<Option<f64>, sqlx::Error> {
                let count = row.int(count)?;
                let sum = row.int(sum)?;
                Ok((count > 0).then(|| sum as f64 / count as f64 / 1000.0))
            };
            let day = match row {
                crate::bind::AnyRow::Sqlite(_) => {
                    NaiveDate::parse_from_str(&row.text("day")?, "%Y-%m-%d").map_err(|e| {
                        sqlx::Error::ColumnDecode {
                            index: "day".into(),
                            source: e.to_string().into(),
                        }
                    })?
                }
                crate::bind::AnyRow::Postgres(r) => sqlx::Row::try_get(r, "day")?,
            };
            use domain::TicketPriority as P;
            Ok(QueueMetricsRow {
                queue: row.text("queue")?,
                open: row.int("open")?,
                in_progress: row.int("in_progress")?,
                on_hold: row.int("on_hold")?,
                resolved: row.int("resolved")?,
                closed: row.int("closed")?,
                unassigned: row.int("unassigned")?,
                by_priority: [
                    (P::Low, row.int("priority_low")?),
                    (P::Medium, row.int("priority_medium")?),
                    (P::High, row.int("priority_high")?),
                    (P::Critical, row.int("priority_critical")?),
                ],
                avg_first_response_seconds: avg("first_responses", "first_response_ms")?,
                avg_resolution_seconds: avg("resolutions", "resolution_ms")?,
                oldest_open_created_at: row.opt_time("oldest_open_created_at")?,
                sla_breaches: row.int("sla_breaches")?,
                created_today: row.int("created_today")?,
                resolved_today: row.int("resolved_today")?,
                day,
                position,
                updated_at: row.time("updated_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(ProjectionError::from)
}
