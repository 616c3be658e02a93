//! Every inbox equals what an oracle written from auth.md ("Who receives an
//! event", "Next round": queue alerts, mentions) and the preference rules
//! says it should hold, for random users whose roles, teams and preferences
//! change over time and random commands by them; after live processing and
//! after a rebuild. The oracle shares nothing with the projection but the
//! fold of a ticket (`domain::evolve`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use domain::notify::NotificationPreferences;
use domain::{
    Actor, Command, Role, Ticket, TicketChange, TicketEvent, TicketEventType, TicketStatus,
};
use projections::notifications::notifications;
use projections::rebuild::rebuild_all_in_pages;
use projections::{NotificationsProjection, Projection, ReadDb};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use store::{EventStore, ExpectedVersion, Position};
use uuid::Uuid;

use crate::commands::new_event;
use crate::harness::{run_until_caught_up, Backend, Kind};

const USERS: [&str; 6] = ["u0", "u1", "u2", "u3", "u4", "u5"];
const QUEUES: [&str; 3] = ["billing", "support", "network"];

crate::on_every_backend! {
    /// Random users, profiles, preferences and commands (a few hundred
    /// events, several seeds): each user's inbox holds exactly the
    /// notifications the oracle expects, with their reasons, before and
    /// after a rebuild of the projection.
    every_inbox_is_what_the_rules_say_live_and_after_a_rebuild
}

/// The `(position, event type, reason)` of each notification of one inbox,
/// oldest first.
type Inbox = Vec<(Position, String, String)>;

async fn every_inbox_is_what_the_rules_say_live_and_after_a_rebuild(kind: Kind) {
    for seed in [1_u64, 2, 3] {
        let backend = Backend::new(kind).await;
        let store = &*backend.store;
        World::new(seed).run(store, 300).await;
        let expected = oracle(store).await;
        assert!(
            expected.values().map(Vec::len).sum::<usize>() > 20,
            "seed {seed}: a run that notifies almost nobody proves little"
        );
        let projection: Arc<dyn Projection> = Arc::new(NotificationsProjection::new());
        run_until_caught_up(&backend.runner(&backend.db), store, projection)
            .await
            .unwrap();
        for user in USERS {
            assert_eq!(
                inbox(&backend.db, user).await,
                expected.get(user).cloned().unwrap_or_default(),
                "seed {seed}, {user}, live"
            );
        }
        rebuild_all_in_pages(
            backend.store.clone(),
            &backend.db,
            vec![Arc::new(NotificationsProjection::new())],
            50,
            |_, _| {},
        )
        .await
        .unwrap();
        for user in USERS {
            assert_eq!(
                inbox(&backend.db, user).await,
                expected.get(user).cloned().unwrap_or_default(),
                "seed {seed}, {user}, rebuilt"
            );
        }
        backend.cleanup().await;
    }
}

async fn inbox(db: &ReadDb, user: &str) -> Inbox {
    let page = notifications(db, user, false, 1000, None).await.unwrap();
    assert!(!page.has_next_page);
    page.items
        .iter()
        .rev()
        .map(|n| (n.position, n.event_type.clone(), n.reason.clone()))
        .collect()
}

/// The random users and tickets, and the commands they run.
struct World {
    rng: StdRng,
    clock: DateTime<Utc>,
    profiles: BTreeMap<&'static str, (Vec<Role>, Vec<String>)>,
    tickets: Vec<(Uuid, Option<Ticket>)>,
}

impl World {
    fn new(seed: u64) -> World {
        let mut rng = StdRng::seed_from_u64(seed);
        World {
            tickets: (0..8).map(|_| (Uuid::from_u128(rng.gen()), None)).collect(),
            rng,
            clock: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            profiles: BTreeMap::new(),
        }
    }

    async fn run(&mut self, store: &dyn EventStore, steps: usize) {
        // Everyone starts with a profile; some change later.
        for user in USERS {
            self.profile(store, user).await;
        }
        for _ in 0..steps {
            self.clock += Duration::seconds(1);
            match self.rng.gen_range(0..20) {
                0 => {
                    let user = *USERS.choose(&mut self.rng).unwrap();
                    self.profile(store, user).await;
                }
                1 | 2 => {
                    let user = *USERS.choose(&mut self.rng).unwrap();
                    self.preferences(store, user).await;
                }
                _ => self.command(store).await,
            }
        }
    }

    async fn profile(&mut self, store: &dyn EventStore, user: &'static str) {
        let roles = match self.rng.gen_range(0..5) {
            0 | 1 => vec![Role::Agent],
            2 => vec![Role::Requester],
            3 => vec![Role::Admin],
            _ => vec![Role::Agent, Role::Admin],
        };
        let teams: Vec<String> = QUEUES
            .iter()
            .filter(|_| self.rng.gen_bool(0.4))
            .map(|q| q.to_string())
            .collect();
        let profile = domain::UserProfile {
            id: user.into(),
            first_name: None,
            last_name: None,
            email: None,
            roles: roles.clone(),
            teams: teams.clone(),
        };
        append(
            store,
            &domain::user_stream_name(user),
            domain::codec::user::encode(&profile),
        )
        .await;
        self.profiles.insert(user, (roles, teams));
    }

    async fn preferences(&mut self, store: &dyn EventStore, user: &str) {
        let some = |rng: &mut StdRng, from: &[&str]| -> Vec<String> {
            from.iter()
                .filter(|_| rng.gen_bool(0.3))
                .map(|s| s.to_string())
                .collect()
        };
        let reasons = some(
            &mut self.rng,
            &[
                "ASSIGNED_TO_YOU",
                "MENTIONED",
                "YOUR_TICKET",
                "WATCHING",
                "QUEUE",
            ],
        );
        let types = some(&mut self.rng, &["COMMENTED", "CREATED", "STATUS_CHANGED"]);
        let queues = some(&mut self.rng, &QUEUES);
        let preferences: NotificationPreferences = serde_json::from_value(serde_json::json!({
            "mutedReasons": reasons, "mutedEventTypes": types, "mutedQueues": queues,
        }))
        .unwrap();
        append(
            store,
            &domain::user_stream_name(user),
            domain::codec::user::encode_preferences(&preferences),
        )
        .await;
    }

    fn actor(&self, user: &str) -> Actor {
        match self.profiles.get(user) {
            Some((roles, teams)) => Actor::new(user, roles.clone(), teams.clone()),
            None => Actor::new(user, vec![Role::Requester], vec![]),
        }
    }

    async fn command(&mut self, store: &dyn EventStore) {
        let index = self.rng.gen_range(0..self.tickets.len());
        let (id, state) = self.tickets[index].clone();
        let who = *USERS.choose(&mut self.rng).unwrap();
        let actor = self.actor(who);
        let pick = |rng: &mut StdRng, from: &[&str]| from.choose(rng).unwrap().to_string();
        let command = match &state {
            None => Command::Create {
                ticket_id: id,
                reference: format!("TCK-{index:06}"),
                request: "Help".into(),
                description: None,
                priority: domain::TicketPriority::Medium,
                queue: pick(&mut self.rng, &QUEUES),
                tags: vec![],
            },
            Some(_) => match self.rng.gen_range(0..9) {
                0 | 1 => {
                    let assignee = pick(&mut self.rng, &USERS);
                    Command::Assign {
                        assignee_roles: self.profiles.get(assignee.as_str()).map(|p| p.0.clone()),
                        assignee_id: assignee,
                    }
                }
                2 | 3 => {
                    let mentioned = [
                        pick(&mut self.rng, &USERS),
                        pick(&mut self.rng, &USERS),
                        "nobody".to_string(),
                    ];
                    Command::Comment {
                        comment_id: Uuid::from_u128(self.rng.gen()),
                        body: format!(
                            "see @{} and @{} or @{}",
                            mentioned[0], mentioned[1], mentioned[2]
                        ),
                        internal: self.rng.gen_bool(0.5),
                    }
                }
                4 => Command::Move {
                    queue: pick(&mut self.rng, &QUEUES),
                },
                5 => Command::Watch {
                    user_id: pick(&mut self.rng, &USERS),
                },
                6 => Command::ChangeStatus {
                    status: *TicketStatus::ALL.choose(&mut self.rng).unwrap(),
                    comment: None,
                },
                7 => Command::Unassign,
                _ => Command::AddTag { tag: "vip".into() },
            },
        };
        let Ok(events) = domain::decide(state.as_ref(), &command, &actor, self.clock) else {
            return;
        };
        if events.is_empty() {
            return;
        }
        let expected = match &state {
            None => ExpectedVersion::NoStream,
            Some(t) => ExpectedVersion::Exact(t.version),
        };
        let new = events
            .iter()
            .map(|e| new_event(domain::encode(e)))
            .collect();
        store
            .append(&domain::stream_name(id), expected, new)
            .await
            .unwrap();
        self.tickets[index].1 = events.iter().fold(state, domain::evolve);
    }
}

async fn append(store: &dyn EventStore, stream: &str, encoded: domain::EncodedEvent) {
    store
        .append(stream, ExpectedVersion::Any, vec![new_event(encoded)])
        .await
        .unwrap();
}

/// A user as the oracle knows them at an event.
#[derive(Default, Clone)]
struct Known {
    roles: Vec<Role>,
    teams: Vec<String>,
    muted_reasons: BTreeSet<String>,
    muted_types: BTreeSet<String>,
    muted_queues: BTreeSet<String>,
}

/// auth.md's rules applied to the log, event by event.
async fn oracle(store: &dyn EventStore) -> BTreeMap<String, Inbox> {
    let mut users: BTreeMap<String, Known> = BTreeMap::new();
    let mut tickets: BTreeMap<String, Ticket> = BTreeMap::new();
    let mut inboxes: BTreeMap<String, Inbox> = BTreeMap::new();
    let log = store.read_all(Position::START, 100_000).await.unwrap();
    for recorded in log {
        if let Some(user) = recorded.stream_id.strip_prefix("user-") {
            let known = users.entry(user.to_string()).or_default();
            let data = &recorded.data;
            let strings = |field: &str| -> BTreeSet<String> {
                data[field]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            if recorded.event_type == "UserProfileRecorded" {
                known.roles = serde_json::from_value(data["roles"].clone()).unwrap();
                known.teams = strings("teams").into_iter().collect();
            } else {
                known.muted_reasons = strings("mutedReasons");
                known.muted_types = strings("mutedEventTypes");
                known.muted_queues = strings("mutedQueues");
            }
            continue;
        }
        let event: TicketEvent = domain::decode(
            &recorded.event_type,
            recorded.schema_version,
            &recorded.data,
        )
        .unwrap();
        let before = tickets.get(&recorded.stream_id).cloned();
        let after = domain::evolve(before.clone(), &event).unwrap();
        tickets.insert(recorded.stream_id.clone(), after.clone());
        let event_type = event_type_name(event.event_type());
        let mentioned: BTreeSet<String> = match &event.change {
            TicketChange::Commented { body, .. } => body
                .split_whitespace()
                .filter_map(|word| word.strip_prefix('@'))
                .map(String::from)
                .collect(),
            _ => BTreeSet::new(),
        };
        let mut candidates: BTreeSet<String> = users.keys().cloned().collect();
        for t in before.iter().chain([&after]) {
            candidates.insert(t.created_by.clone());
            candidates.extend(t.assigned_to.clone());
            candidates.extend(t.watchers.iter().cloned());
        }
        for user in candidates {
            if user == event.actor {
                continue;
            }
            let known = users.get(&user).cloned();
            let profile = known.clone().unwrap_or(Known {
                roles: vec![Role::Requester],
                ..Known::default()
            });
            let has = |role: Role| profile.roles.contains(&role);
            let staff = has(Role::Agent) || has(Role::Admin);
            let sees = |t: &Ticket| {
                has(Role::Admin)
                    || t.created_by == user
                    || t.watchers.contains(&user)
                    || (has(Role::Agent)
                        && (t.assigned_to.as_deref() == Some(user.as_str())
                            || profile.teams.contains(&t.queue)))
            };
            if !(before.as_ref().is_some_and(sees) || sees(&after)) {
                continue;
            }
            let staff_only = matches!(
                event.change,
                TicketChange::Commented { internal: true, .. }
                    | TicketChange::SlaWarning { .. }
                    | TicketChange::SlaBreached { .. }
            );
            if staff_only && !staff {
                continue;
            }
            // Events that are no news to this user.
            match &event.change {
                TicketChange::TagAdded { .. }
                | TicketChange::TagRemoved { .. }
                | TicketChange::RelatedAdded { .. }
                | TicketChange::RelatedRemoved { .. } => continue,
                TicketChange::WatcherAdded { user_id }
                | TicketChange::WatcherRemoved { user_id }
                    if *user_id != user =>
                {
                    continue
                }
                _ => {}
            }
            let either =
                |test: &dyn Fn(&Ticket) -> bool| before.as_ref().is_some_and(test) || test(&after);
            let queue_alert = match &event.change {
                TicketChange::Created { .. } | TicketChange::QueueChanged { .. } => true,
                TicketChange::SlaWarning { .. } | TicketChange::SlaBreached { .. } => {
                    after.assigned_to.is_none()
                }
                _ => false,
            };
            let mut reasons = vec![];
            if either(&|t| t.assigned_to.as_deref() == Some(user.as_str())) {
                reasons.push("ASSIGNED_TO_YOU");
            }
            if known.is_some() && mentioned.contains(&user) {
                reasons.push("MENTIONED");
            }
            if either(&|t| t.created_by == user) {
                reasons.push("YOUR_TICKET");
            }
            if either(&|t| t.watchers.contains(&user)) {
                reasons.push("WATCHING");
            }
            if queue_alert && has(Role::Agent) && profile.teams.contains(&after.queue) {
                reasons.push("QUEUE");
            }
            if profile.muted_types.contains(&event_type) {
                continue;
            }
            let reason = reasons.into_iter().find(|r| {
                let muted_queue = *r == "QUEUE" && profile.muted_queues.contains(&after.queue);
                !(profile.muted_reasons.contains(*r) || muted_queue)
            });
            if let Some(reason) = reason {
                inboxes.entry(user).or_default().push((
                    recorded.position,
                    event_type.clone(),
                    reason.to_string(),
                ));
            }
        }
    }
    inboxes
}

fn event_type_name(t: TicketEventType) -> String {
    serde_json::to_value(t)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}
