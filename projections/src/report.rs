//! `tickets projections status`: each projection's checkpoint, its lag behind
//! the head of the log, and whether it runs, failed or is being rebuilt.

use store::{EventStore, Position};

use crate::checkpoint::{self, ProjectionState, ProjectionStatus};
use crate::db::ReadDb;
use crate::error::ProjectionError;
use crate::rebuild::REBUILDING;

/// One projection as `tickets projections status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionReport {
    pub name: String,
    /// The last event applied to the live model.
    pub checkpoint: Position,
    /// How far the checkpoint is behind the head of the log, in positions
    /// (events, on the SQL stores).
    pub lag: u64,
    /// `Rebuilding` while a rebuild of it runs (the live model keeps its own
    /// state meanwhile, shown by `error`).
    pub state: ProjectionState,
    pub error: Option<String>,
    /// How far a running rebuild got.
    pub rebuild_position: Option<Position>,
}

/// Every projection with a checkpoint: where it is, its lag behind
/// `store.head()`, and whether it runs, failed or is being rebuilt.
#[tracing::instrument(skip_all, err)]
pub async fn status_report(
    store: &dyn EventStore,
    db: &ReadDb,
) -> Result<Vec<ProjectionReport>, ProjectionError> {
    let head = store.head().await?;
    let rows = checkpoint::all_rows(db).await?;
    let (rebuilds, live): (Vec<ProjectionStatus>, Vec<ProjectionStatus>) = rows
        .into_iter()
        .partition(|s| s.name.starts_with(REBUILDING));
    let rebuild_of = |name: &str| {
        rebuilds
            .iter()
            .find(|r| r.name.strip_prefix(REBUILDING) == Some(name))
            .map(|r| r.position)
    };
    let mut reports: Vec<ProjectionReport> = live
        .into_iter()
        .map(|s| {
            let rebuild_position = rebuild_of(&s.name);
            ProjectionReport {
                lag: head.commit.saturating_sub(s.position.commit),
                checkpoint: s.position,
                state: if rebuild_position.is_some() {
                    ProjectionState::Rebuilding
                } else {
                    s.state
                },
                error: s.error,
                rebuild_position,
                name: s.name,
            }
        })
        .collect();
    // A first rebuild of a projection that never ran has no live row yet.
    for r in &rebuilds {
        let name = r.name.trim_start_matches(REBUILDING);
        if !reports.iter().any(|p| p.name == name) {
            reports.push(ProjectionReport {
                name: name.to_string(),
                checkpoint: Position::START,
                lag: head.commit,
                state: ProjectionState::Rebuilding,
                error: None,
                rebuild_position: Some(r.position),
            });
        }
    }
    reports.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(reports)
}
