//! Realistic logs: random commands decided by the domain and appended to the
//! store, as the command service would (without depending on it).

use chrono::{DateTime, Duration, Utc};
use domain::{Actor, Command, RelatedTicket, Role, Ticket, TicketPriority, TicketStatus};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use store::{AppendResult, EventStore, ExpectedVersion, NewEvent, Position};
use uuid::Uuid;

const USERS: [&str; 4] = ["admin-1", "admin-2", "agent-1", "agent-2"];
const QUEUES: [&str; 3] = ["billing", "hardware", "network"];
const TAGS: [&str; 5] = ["vip", "urgent", "printer", "vpn", "invoice"];

/// Tickets and the state each has reached, built from the events appended.
pub struct Script {
    rng: StdRng,
    tickets: Vec<(Uuid, Option<Ticket>)>,
    clock: DateTime<Utc>,
    references: u64,
    /// Texts end with [`AWKWARD`] ([`Script::with_awkward_values`]).
    awkward: bool,
}

/// What a text format would have to escape, and more than one byte per
/// character (no NUL: PostgreSQL's text refuses it whatever the path).
const AWKWARD: &str = " \t:\t, \\n:\n, \\r:\r, backslash:\\, \\.:\\., \"quoted\" 'single' é ß 🎫";

impl Script {
    pub fn new(seed: u64, tickets: usize) -> Script {
        let mut rng = StdRng::seed_from_u64(seed);
        Script {
            tickets: (0..tickets)
                .map(|_| (Uuid::from_u128(rng.gen()), None))
                .collect(),
            rng,
            clock: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            references: 0,
            awkward: false,
        }
    }

    /// Times with a fraction below a microsecond (which PostgreSQL drops)
    /// and texts with tabs, line breaks, backslashes, quotes and characters
    /// of several bytes: what a bulk load must store exactly as an insert.
    #[allow(dead_code)] // Used by the rebuild tests only.
    pub fn with_awkward_values(mut self) -> Script {
        self.clock += Duration::nanoseconds(123_456_789);
        self.awkward = true;
        self
    }

    /// `prefix` and a random number, and [`AWKWARD`] after them in that mode.
    fn text(&mut self, prefix: &str) -> String {
        let text = format!("{prefix} {}", self.rng.gen::<u16>());
        if self.awkward {
            text + AWKWARD
        } else {
            text
        }
    }

    /// The state each created ticket has reached.
    #[allow(dead_code)] // Used by the query tests only.
    pub fn tickets(&self) -> Vec<Ticket> {
        self.tickets.iter().filter_map(|(_, t)| t.clone()).collect()
    }

    pub fn ticket_ids(&self) -> Vec<Uuid> {
        self.tickets.iter().map(|(id, _)| *id).collect()
    }

    /// Runs `count` random commands (a few are refused by the domain and append
    /// nothing) and records a user profile now and then.
    pub async fn run(&mut self, store: &dyn EventStore, count: usize) {
        for _ in 0..count {
            self.clock += Duration::milliseconds(self.rng.gen_range(1..5_000));
            if self.rng.gen_ratio(1, 20) {
                self.record_profile(store).await;
                continue;
            }
            let index = self.rng.gen_range(0..self.tickets.len());
            self.act(store, index).await;
        }
    }

    /// Creates one more ticket, which the domain never refuses, and returns
    /// the position of its event.
    #[allow(dead_code)] // Used by the fan-out tests, which share this file.
    pub async fn create_ticket(&mut self, store: &dyn EventStore) -> Position {
        self.clock += Duration::milliseconds(1);
        self.tickets.push((Uuid::from_u128(self.rng.gen()), None));
        let appended = self.act(store, self.tickets.len() - 1).await;
        appended.expect("a creation is never refused").last_position
    }

    /// Decides a random command on ticket `index` (its creation if it has no
    /// state yet) and appends its events; `None` when the domain refused it
    /// or it changed nothing.
    async fn act(&mut self, store: &dyn EventStore, index: usize) -> Option<AppendResult> {
        let (id, state) = self.tickets[index].clone();
        let command = match &state {
            None => self.create(id),
            Some(ticket) => self.change(ticket),
        };
        let admin = *[USERS[0], USERS[1]]
            .choose(&mut self.rng)
            .unwrap_or(&USERS[0]);
        let actor = Actor::new(admin, vec![Role::Admin], vec![]);
        let events = domain::decide(state.as_ref(), &command, &actor, self.clock).ok()?;
        if events.is_empty() {
            return None;
        }
        let expected = match &state {
            None => ExpectedVersion::NoStream,
            Some(ticket) => ExpectedVersion::Exact(ticket.version),
        };
        let new_events = events
            .iter()
            .map(|e| new_event(domain::encode(e)))
            .collect();
        let appended = store
            .append(&domain::stream_name(id), expected, new_events)
            .await
            .expect("append");
        self.tickets[index].1 = events.iter().fold(state, domain::evolve);
        Some(appended)
    }

    fn create(&mut self, id: Uuid) -> Command {
        self.references += 1;
        Command::Create {
            ticket_id: id,
            reference: format!("TCK-{:06}", self.references),
            request: self.text("Request"),
            description: self
                .rng
                .gen_bool(0.5)
                .then(|| "Something broke".to_string()),
            priority: *TicketPriority::ALL
                .choose(&mut self.rng)
                .unwrap_or(&TicketPriority::Low),
            queue: self.pick(&QUEUES),
            tags: vec![self.pick(&TAGS)],
        }
    }

    fn change(&mut self, ticket: &Ticket) -> Command {
        let other = self.tickets[self.rng.gen_range(0..self.tickets.len())].0;
        let uuid = Uuid::from_u128(self.rng.gen());
        match self.rng.gen_range(0..16) {
            0 => Command::Update {
                request: Some(self.text("Request")),
                description: self.rng.gen_bool(0.3).then(String::new),
            },
            1 => Command::Assign {
                assignee_id: self.pick(&USERS),
                assignee_roles: Some(vec![Role::Agent]),
            },
            2 => Command::Unassign,
            3 | 4 => Command::ChangeStatus {
                status: *TicketStatus::ALL
                    .choose(&mut self.rng)
                    .unwrap_or(&TicketStatus::Open),
                comment: self.rng.gen_bool(0.3).then(|| (uuid, "Status note".into())),
            },
            5 => Command::ChangePriority {
                priority: *TicketPriority::ALL
                    .choose(&mut self.rng)
                    .unwrap_or(&TicketPriority::Low),
            },
            6 | 7 => Command::Comment {
                comment_id: uuid,
                body: self.text("Comment"),
                internal: self.rng.gen_bool(0.3),
            },
            8 => Command::AddAttachment {
                attachment_id: uuid,
                name: "log.txt".into(),
                url: format!("https://files.example/{uuid}"),
                mime_type: Some("text/plain".into()),
                size: self.rng.gen_bool(0.5).then_some(1234),
            },
            9 => Command::AddTag {
                tag: self.pick(&TAGS),
            },
            10 => Command::RemoveTag {
                tag: ticket.tags.first().cloned().unwrap_or_else(|| "vip".into()),
            },
            // The other side is taken as live: these logs feed the read
            // models, which record whatever relations the log holds.
            11 => Command::Relate {
                related_id: other,
                related: RelatedTicket::Live,
            },
            12 => Command::Unrelate {
                related_id: ticket.related.first().copied().unwrap_or(other),
                related: RelatedTicket::Live,
            },
            13 => Command::Watch {
                user_id: self.pick(&USERS),
            },
            14 => Command::Unwatch {
                user_id: ticket
                    .watchers
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "agent-1".into()),
            },
            _ if self.rng.gen_ratio(1, 8) => Command::Delete { reason: None },
            _ => Command::Move {
                queue: self.pick(&QUEUES),
            },
        }
    }

    pub async fn record_profile(&mut self, store: &dyn EventStore) {
        let user = self.pick(&USERS);
        let profile = serde_json::json!({
            "id": user,
            "firstName": format!("First {}", self.rng.gen::<u8>()),
            "lastName": null,
            "email": format!("{user}@example.com"),
            "roles": ["AGENT"],
            "teams": [self.pick(&QUEUES)],
        });
        let event = NewEvent {
            id: Uuid::from_u128(self.rng.gen()),
            event_type: "UserProfileRecorded".into(),
            schema_version: 1,
            data: profile,
            metadata: serde_json::json!({}),
        };
        store
            .append(&format!("user-{user}"), ExpectedVersion::Any, vec![event])
            .await
            .expect("append a profile");
    }

    fn pick(&mut self, from: &[&str]) -> String {
        from.choose(&mut self.rng)
            .copied()
            .unwrap_or_default()
            .to_string()
    }
}

pub fn new_event(encoded: domain::EncodedEvent) -> NewEvent {
    NewEvent {
        id: Uuid::new_v4(),
        event_type: encoded.event_type.to_string(),
        schema_version: encoded.schema_version,
        data: encoded.data,
        metadata: serde_json::json!({}),
    }
}
