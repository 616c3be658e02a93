//! Deciding a whole group of appends on facts read in one query.
//!
//! A writer that decides appends one at a time pays a query per append while it
//! holds the write lock, and those round trips are the store's whole write
//! budget. Instead the writer reads once what every append of the group needs
//! (each named stream's last version, the stored rows among all their ids),
//! and [`plan`] applies the rules to each append in queue order on those facts,
//! updating them as if each planned write had happened: a later append to the
//! same stream sees the versions of an earlier one, exactly as if they had run
//! one after another. The writer then inserts every planned event in one
//! statement.
//!
//! What the facts cannot tell before the insert are the positions of events
//! planned earlier in the group. So an append that names one of their ids (a
//! repeat sent while the original is still queued, or a caller reusing ids)
//! ends the plan there: the writer inserts what was planned, reads fresh facts
//! and plans the rest, and the append is then decided on what is stored.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::{decide, Decision, StoredId};
use crate::chain::{self, Chained};
use crate::row;
use crate::{AppendResult, AppendedEvent, ExpectedVersion, NewEvent, StoreError};

/// One caller's append, and where its answer goes: what a group is made of
/// (queued by `append_queue`).
pub(crate) struct AppendRequest {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    pub reply: oneshot::Sender<Result<AppendResult, StoreError>>,
}

/// One row of a backend's facts query: either a stream's last version and
/// that event's hash (no id; `None` version: the stream has no event), or a
/// stored row among the group's ids (id, stream, version, position, time,
/// hash).
pub(crate) type FactRow = (
    Option<Uuid>,
    String,
    Option<i64>,
    Option<i64>,
    Option<DateTime<Utc>>,
    Option<String>,
);

/// What the rules need to know about a group, as read under the write lock.
#[derive(Debug, Default)]
pub(crate) struct GroupFacts {
    /// The last version of each named stream that has events.
    pub current: HashMap<String, u64>,
    /// The hash of each named stream's last event (see `chain`), the
    /// `previous` of the next event appended to it.
    pub heads: HashMap<String, String>,
    /// The stored rows among the group's event ids.
    pub stored: HashMap<Uuid, StoredId>,
}

impl GroupFacts {
    /// Each stream the group appends to, once.
    pub fn streams(group: &[AppendRequest]) -> Vec<&str> {
        let mut seen = HashSet::with_capacity(group.len());
        group
            .iter()
            .map(|r| r.stream.as_str())
            .filter(|s| seen.insert(*s))
            .collect()
    }

    /// The facts a backend's facts query answered, read the same way on
    /// every backend.
    pub fn from_rows(rows: impl IntoIterator<Item = FactRow>) -> Result<Self, StoreError> {
        let mut facts = GroupFacts::default();
        for found in rows {
            match found {
                (None, stream, Some(v), _, _, head) => {
                    let v = u64::try_from(v).map_err(|_| {
                        StoreError::Corrupt(format!("stream {stream} is at version {v}"))
                    })?;
                    facts.heads.insert(stream.clone(), head.unwrap_or_default());
                    facts.current.insert(stream, v);
                }
                (None, _, None, _, _, _) => {}
                (Some(id), stream_id, Some(version), Some(position), Some(recorded_at), hash) => {
                    facts.stored.insert(
                        id,
                        StoredId {
                            id,
                            stream_id,
                            version: row::version(position, version)?,
                            position: row::position(position)?,
                            recorded_at,
                            hash: hash.unwrap_or_default(),
                        },
                    );
                }
                (Some(id), ..) => {
                    return Err(StoreError::Corrupt(format!(
                        "stored event {id} lacks a version, position or time"
                    )))
                }
            }
        }
        Ok(facts)
    }

    /// Every event id of the group.
    pub fn ids(group: &[AppendRequest]) -> Vec<Uuid> {
        group
            .iter()
            .flat_map(|r| r.events.iter().map(|e| e.id))
            .collect()
    }
}

/// What to do with one append of a group.
#[derive(Debug)]
pub(crate) enum Planned {
    /// Answered without writing: a repeat's original result, or a refusal.
    Answered(Result<AppendResult, StoreError>),
    /// Insert the events at versions `first_version`, `first_version + 1`, ...
    /// with these hashes, one per event.
    Write {
        first_version: u64,
        hashes: Vec<String>,
    },
}

/// The plan for a prefix of a group: always its first append, and every
/// following one up to the first that names an id planned for writing earlier.
#[derive(Debug)]
pub(crate) struct GroupPlan(pub Vec<Planned>);

/// Applies the append rules to the appends of `group`, in order, on `facts`.
pub(crate) fn plan(group: &[AppendRequest], mut facts: GroupFacts) -> GroupPlan {
    let mut planned_ids = HashSet::new();
    let mut planned = Vec::with_capacity(group.len());
    for request in group {
        let events = &request.events;
        if events.iter().any(|e| planned_ids.contains(&e.id)) {
            break;
        }
        let stored = events
            .iter()
            .filter_map(|e| facts.stored.get(&e.id))
            .cloned()
            .collect();
        let current = facts.current.get(&request.stream).copied();
        let decided = decide(&request.stream, request.expected, events, stored, current);
        planned.push(match decided {
            Ok(Decision::Write { first_version }) => {
                let last = first_version + events.len() as u64 - 1;
                let mut previous = match first_version {
                    0 => chain::GENESIS.to_string(),
                    _ => facts
                        .heads
                        .get(&request.stream)
                        .cloned()
                        .unwrap_or_default(),
                };
                let hashes: Vec<String> = (first_version..)
                    .zip(events)
                    .map(|(version, event)| {
                        previous = chain::event_hash(
                            &previous,
                            Chained {
                                id: event.id,
                                stream_id: &request.stream,
                                version,
                                event_type: &event.event_type,
                                schema_version: event.schema_version,
                                data: &event.data,
                                metadata: &event.metadata,
                            },
                        );
                        previous.clone()
                    })
                    .collect();
                facts.current.insert(request.stream.clone(), last);
                facts.heads.insert(request.stream.clone(), previous);
                planned_ids.extend(events.iter().map(|e| e.id));
                Planned::Write {
                    first_version,
                    hashes,
                }
            }
            Ok(Decision::AlreadyAppended(original)) => Planned::Answered(Ok(original)),
            Err(refused) => Planned::Answered(Err(refused)),
        });
    }
    GroupPlan(planned)
}

/// One event to insert: its stream, its version, the event itself and its hash.
pub(crate) struct Row<'a> {
    pub stream: &'a str,
    pub version: u64,
    pub event: &'a NewEvent,
    pub hash: &'a str,
}

impl GroupPlan {
    /// How many appends of the group this plan covers.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Every event to insert, append after append, each in its append's order.
    pub fn rows<'a>(&'a self, group: &'a [AppendRequest]) -> Vec<Row<'a>> {
        let mut rows = Vec::new();
        for (request, planned) in group.iter().zip(&self.0) {
            if let Planned::Write {
                first_version,
                hashes,
            } = planned
            {
                rows.extend((*first_version..).zip(&request.events).zip(hashes).map(
                    |((version, event), hash)| Row {
                        stream: &request.stream,
                        version,
                        event,
                        hash,
                    },
                ));
            }
        }
        rows
    }

    /// Every append's answer, once the rows are inserted: `inserted` holds the
    /// place of each row of [`GroupPlan::rows`], in that order. `Err` when the
    /// insert did not give one place per row, with positions rising through each
    /// append: committing that would break "a stream's events in version order"
    /// for readers of the global log.
    pub fn results(
        self,
        group: &[AppendRequest],
        inserted: Vec<AppendedEvent>,
    ) -> Result<Vec<Result<AppendResult, StoreError>>, StoreError> {
        let mut places = inserted.into_iter();
        let mut results = Vec::with_capacity(self.0.len());
        for (request, planned) in group.iter().zip(self.0) {
            let first_version = match planned {
                Planned::Answered(answer) => {
                    results.push(answer);
                    continue;
                }
                Planned::Write { first_version, .. } => first_version,
            };
            let events: Vec<AppendedEvent> = places.by_ref().take(request.events.len()).collect();
            let in_order = events.windows(2).all(|w| w[0].position < w[1].position);
            match (events.first(), events.last()) {
                (Some(first), Some(last)) if events.len() == request.events.len() && in_order => {
                    results.push(Ok(AppendResult {
                        last_version: first_version + events.len() as u64 - 1,
                        first_position: first.position,
                        last_position: last.position,
                        events,
                    }))
                }
                _ => {
                    return Err(StoreError::Unavailable(format!(
                        "the insert into {} returned positions {:?}, not one per event \
                         in version order",
                        request.stream,
                        events.iter().map(|e| e.position).collect::<Vec<_>>()
                    )))
                }
            }
        }
        if places.next().is_some() {
            return Err(StoreError::Unavailable(
                "the insert returned more rows than it was given".into(),
            ));
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::append::tests::event;
    use crate::ExpectedVersion;

    fn request(stream: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> AppendRequest {
        let (reply, _) = tokio::sync::oneshot::channel();
        AppendRequest {
            stream: stream.into(),
            expected,
            events,
            reply,
        }
    }

    /// Appends to one stream in one group take consecutive versions, and an
    /// expected version is checked against the earlier appends of the group.
    #[test]
    fn a_later_append_sees_the_versions_of_earlier_ones_in_the_group() {
        let group = vec![
            request("s", ExpectedVersion::NoStream, vec![event(), event()]),
            request("s", ExpectedVersion::Exact(1), vec![event()]),
            request("s", ExpectedVersion::Exact(1), vec![event()]),
            request("s", ExpectedVersion::Any, vec![event()]),
        ];
        let plan = plan(&group, GroupFacts::default());
        let versions: Vec<_> = plan.rows(&group).iter().map(|r| r.version).collect();
        assert_eq!(versions, vec![0, 1, 2, 3]);
        assert!(matches!(
            plan.0[2],
            Planned::Answered(Err(StoreError::Conflict {
                actual: Some(2),
                ..
            }))
        ));
    }

    /// Appends to one stream in one group chain their hashes through each
    /// other, from the head hash the facts read.
    #[test]
    fn hashes_chain_through_the_earlier_appends_of_the_group() {
        let group = vec![
            request("s", ExpectedVersion::Exact(4), vec![event()]),
            request("s", ExpectedVersion::Any, vec![event(), event()]),
        ];
        let mut facts = GroupFacts::default();
        facts.current.insert("s".into(), 4);
        facts.heads.insert("s".into(), "head".into());
        let plan = plan(&group, facts);
        let rows = plan.rows(&group);
        assert_eq!(rows.len(), 3);
        let mut previous = "head".to_string();
        for row in &rows {
            let expected = chain::event_hash(
                &previous,
                Chained {
                    id: row.event.id,
                    stream_id: row.stream,
                    version: row.version,
                    event_type: &row.event.event_type,
                    schema_version: row.event.schema_version,
                    data: &row.event.data,
                    metadata: &row.event.metadata,
                },
            );
            assert_eq!(row.hash, expected, "version {}", row.version);
            previous = expected;
        }
    }

    /// An append naming an id that an earlier append of the group writes cannot
    /// be answered before the insert: the plan stops there.
    #[test]
    fn the_plan_stops_before_an_append_reusing_an_id_planned_earlier() {
        let shared = event();
        let group = vec![
            request("a", ExpectedVersion::Any, vec![event(), shared.clone()]),
            request("b", ExpectedVersion::Any, vec![event()]),
            request("a", ExpectedVersion::Any, vec![shared]),
            request("c", ExpectedVersion::Any, vec![event()]),
        ];
        let plan = plan(&group, GroupFacts::default());
        assert_eq!(plan.len(), 2);
        assert_eq!(plan.rows(&group).len(), 3);
    }
}
