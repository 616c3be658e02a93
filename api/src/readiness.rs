//! Readiness (`GET /readyz`): whether this node should be sent traffic.
//!
//! A node is ready when the database answers, and every projection the server
//! runs has a live model that is running (not stopped on a poison event) and is
//! at most `max_lag` positions behind the head of the log. A load balancer then
//! keeps a node out while its read models would answer with stale or frozen
//! data, e.g. right after a restart on a big log, or after a poison event.
//!
//! The lag is the one `tickets projections status` shows: positions of the
//! log, i.e. events on the SQL stores (on EventStoreDB, `$all` commit positions,
//! which count bytes, so give a larger threshold there).

use serde::Serialize;
use store::{EventStore, Position};

use projections::report::{status_report, ProjectionReport};
use projections::{ProjectionState, ProjectionStatus, ReadDb};

/// The projections the server runs (`app.rs`): a projection that has written
/// no checkpoint yet counts as at the start of the log.
pub const SERVED_PROJECTIONS: [&str; 4] = [
    projections::tickets::NAME,
    projections::users::NAME,
    projections::metrics::NAME,
    projections::notifications::NAME,
];

/// `statuses` and, for each served projection that has written no checkpoint
/// yet, a status at the start of the log: what `/metrics` lists, so every
/// projection the server runs has its gauges from the start (its lag then
/// the whole log), as `/readyz` counts it.
pub fn with_served(mut statuses: Vec<ProjectionStatus>) -> Vec<ProjectionStatus> {
    for name in SERVED_PROJECTIONS {
        if !statuses.iter().any(|s| s.name == name) {
            statuses.push(ProjectionStatus {
                name: name.to_string(),
                position: Position::START,
                state: ProjectionState::Running,
                error: None,
            });
        }
    }
    statuses
}

/// The answer of `/readyz` (its JSON body).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    pub ready: bool,
    /// The threshold the lags were held against.
    pub max_lag: u64,
    /// Why the node is not ready, in a sentence (absent when ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The projections that keep the node out: failed, or lagging too far.
    pub failing: Vec<String>,
    pub projections: Vec<ProjectionReadiness>,
}

/// One projection as `/readyz` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProjectionReadiness {
    pub name: String,
    /// The cursor of the last event applied (`"0"` before the first).
    pub checkpoint: String,
    pub lag: u64,
    /// `running`, `failed` or `rebuilding`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Checks the database and every served projection against `max_lag`.
#[tracing::instrument(name = "readiness", skip(store, db))]
pub async fn check(store: &dyn EventStore, db: &ReadDb, max_lag: u64) -> Readiness {
    let report = async {
        Ok::<_, projections::ProjectionError>((
            store.head().await?,
            status_report(store, db).await?,
        ))
    };
    let unready = |reason: String| Readiness {
        ready: false,
        max_lag,
        reason: Some(reason),
        failing: vec![],
        projections: vec![],
    };
    match tokio::time::timeout(CHECK_TIMEOUT, report).await {
        Ok(Ok((head, reports))) => judge(reports, head, max_lag),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check: database unreachable");
            unready("the database or the event log is unreachable".into())
        }
        Err(_) => {
            tracing::warn!("readiness check: the database did not answer in time");
            unready(format!(
                "the database or the event log did not answer within {} s",
                CHECK_TIMEOUT.as_secs()
            ))
        }
    }
}

/// How long `/readyz` waits for the database: a load balancer polling it
/// needs an answer (503) while the database is away, not a hung request.
pub const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The verdict on a status report: pure, so the rules are tested without a
/// database.
pub fn judge(mut reports: Vec<ProjectionReport>, head: Position, max_lag: u64) -> Readiness {
    // A projection with no checkpoint yet (a fresh database, or one that
    // has not caught up its first batch) is as far behind as the head is.
    for name in SERVED_PROJECTIONS {
        if !reports.iter().any(|r| r.name == name) {
            reports.push(ProjectionReport {
                name: name.to_string(),
                checkpoint: Position::START,
                lag: head.commit,
                state: ProjectionState::Running,
                error: None,
                rebuild_position: None,
            });
        }
    }
    reports.sort_by(|a, b| a.name.cmp(&b.name));
    let mut failing = Vec::new();
    let mut reasons = Vec::new();
    for r in &reports {
        // A rebuild leaves the live model serving: it only matters whether
        // the live model itself stopped (its error is kept).
        let stopped = r.state == ProjectionState::Failed
            || (r.state == ProjectionState::Rebuilding && r.error.is_some());
        if stopped {
            failing.push(r.name.clone());
            reasons.push(format!("projection {} has stopped", r.name));
        } else if r.lag > max_lag {
            failing.push(r.name.clone());
            reasons.push(format!(
                "projection {} is {} behind the log (at most {max_lag})",
                r.name, r.lag
            ));
        }
    }
    Readiness {
        ready: failing.is_empty(),
        max_lag,
        reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
        failing,
        projections: reports
            .into_iter()
            .map(|r| ProjectionReadiness {
                checkpoint: r.checkpoint.to_cursor(),
                lag: r.lag,
                state: r.state.as_str(),
                error: r.error,
                name: r.name,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, at: u64, head: u64, state: ProjectionState) -> ProjectionReport {
        ProjectionReport {
            name: name.into(),
            checkpoint: Position::from_sequence(at),
            lag: head - at,
            state,
            error: (state == ProjectionState::Failed).then(|| "poison at 7".to_string()),
            rebuild_position: None,
        }
    }

    /// `/metrics` lists a served projection without a checkpoint yet at the
    /// start of the log, and keeps the checkpoints it has.
    #[test]
    fn metrics_list_every_served_projection_even_before_its_first_checkpoint() {
        let tickets = ProjectionStatus {
            name: projections::tickets::NAME.to_string(),
            position: Position::from_sequence(7),
            state: ProjectionState::Failed,
            error: Some("poison at 7".into()),
        };
        let listed = with_served(vec![tickets.clone()]);
        assert_eq!(listed.len(), SERVED_PROJECTIONS.len());
        assert_eq!(listed[0], tickets);
        for name in &SERVED_PROJECTIONS[1..] {
            let one = listed.iter().find(|s| s.name == *name).unwrap();
            assert_eq!(one.position, Position::START, "{name}");
            assert_eq!(one.state, ProjectionState::Running, "{name}");
        }
    }

    fn head(at: u64) -> Position {
        Position::from_sequence(at)
    }

    fn all_at(at: u64, head: u64) -> Vec<ProjectionReport> {
        SERVED_PROJECTIONS
            .iter()
            .map(|n| report(n, at, head, ProjectionState::Running))
            .collect()
    }

    /// Every projection running and close to the head: ready, nothing named.
    #[test]
    fn a_node_whose_projections_keep_up_is_ready() {
        let verdict = judge(all_at(95, 100), head(100), 10);
        assert!(verdict.ready, "{verdict:?}");
        assert!(verdict.failing.is_empty() && verdict.reason.is_none());
        assert_eq!(verdict.projections.len(), SERVED_PROJECTIONS.len());
    }

    /// A projection stopped on a poison event keeps the node out, by name.
    #[test]
    fn a_failed_projection_makes_the_node_unready_and_is_named() {
        let mut reports = all_at(100, 100);
        reports[0] = report(SERVED_PROJECTIONS[0], 7, 100, ProjectionState::Failed);
        let verdict = judge(reports, head(100), 1000);
        assert!(!verdict.ready);
        assert_eq!(verdict.failing, vec![SERVED_PROJECTIONS[0].to_string()]);
        assert!(verdict.reason.unwrap().contains("stopped"));
    }

    /// Lagging past the threshold is unready; at the threshold is fine.
    #[test]
    fn a_projection_behind_the_threshold_makes_the_node_unready() {
        assert!(judge(all_at(90, 100), head(100), 10).ready);
        let verdict = judge(all_at(89, 100), head(100), 10);
        assert!(!verdict.ready);
        assert_eq!(verdict.failing.len(), SERVED_PROJECTIONS.len());
    }

    /// A served projection without a checkpoint row counts from the start of
    /// the log: unready on a long log, ready on an empty one.
    #[test]
    fn a_projection_that_never_wrote_counts_from_the_start() {
        let mut reports = all_at(5000, 5000);
        reports.retain(|r| r.name != projections::users::NAME);
        let verdict = judge(reports, head(5000), 1000);
        assert_eq!(verdict.failing, vec![projections::users::NAME.to_string()]);
        assert!(judge(vec![], Position::START, 1000).ready);
    }
}
