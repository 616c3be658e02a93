//! Who the fan-out and resume scenarios connect, what each subscribes to, and
//! so exactly which events each must receive.
//!
//! Of every ten sockets six are requesters on `myTicketUpdates` (a quarter of
//! them own a ticket, the rest idle, as most customers are), three are agents
//! of one team on `teamTicketUpdates`, and one is an agent on
//! `supportTicketEvents` with a filter: its queue's comments, or its queue's
//! urgent (HIGH or CRITICAL after the event) tickets. Every socket is its own
//! user. The driver only comments and changes priorities as an admin, so who
//! may see a ticket never changes and the expected receivers follow from the
//! ticket's queue and creator alone.

use domain::Role;
use serde_json::{json, Value};

use crate::driver::{Kind, Mutation};

/// The queues tickets live in and agents work.
pub const QUEUES: [&str; 5] = ["support", "network", "hardware", "billing", "access"];

/// What a delivery carries: about what a ticket list or a toast needs.
const SELECTION: &str = "id position version eventType timestamp \
    ticket { id reference status priority queue version } \
    changes { field oldValue newValue }";

/// One socket's subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// A requester: `myTicketUpdates`.
    Mine,
    /// An agent: `teamTicketUpdates`.
    Team,
    /// An agent: `supportTicketEvents(filter: {queues, eventTypes: [COMMENTED]})`.
    Comments,
    /// An agent: `supportTicketEvents(filter: {queues, priorities: [HIGH, CRITICAL]})`.
    Urgent,
}

/// One socket: its user and subscription.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub user: String,
    pub interest: Interest,
    /// The agent's team (and filter queue); unused for requesters.
    pub queue: &'static str,
}

/// A ticket the driver works on.
#[derive(Debug, Clone)]
pub struct TicketSpec {
    /// Filled in once created.
    pub id: String,
    pub queue: &'static str,
    pub creator: String,
}

pub struct Population {
    pub clients: Vec<ClientSpec>,
    pub tickets: Vec<TicketSpec>,
}

impl Population {
    /// The population of `sockets` sockets.
    pub fn plan(sockets: usize) -> Population {
        let mut clients = Vec::with_capacity(sockets);
        let mut tickets = Vec::new();
        for i in 0..sockets {
            let group = i / 10;
            let queue = QUEUES[group % QUEUES.len()];
            let (user, interest) = match i % 10 {
                0..=5 => (format!("requester-{i}"), Interest::Mine),
                6..=8 => (format!("agent-{i}"), Interest::Team),
                _ if group.is_multiple_of(2) => (format!("agent-{i}"), Interest::Comments),
                _ => (format!("agent-{i}"), Interest::Urgent),
            };
            if interest == Interest::Mine && (matches!(i % 10, 0 | 3) || tickets.is_empty()) {
                tickets.push(TicketSpec {
                    id: String::new(),
                    queue: QUEUES[tickets.len() % QUEUES.len()],
                    creator: user.clone(),
                });
            }
            clients.push(ClientSpec {
                user,
                interest,
                queue,
            });
        }
        Population { clients, tickets }
    }

    /// Deliveries one mutation causes on average (to size the driver's rate
    /// for a target number of deliveries per second): half comments, half
    /// priority changes of which half leave the ticket HIGH.
    pub fn mean_fanout(&self) -> f64 {
        let mut total = 0.0;
        for ticket in &self.tickets {
            for client in &self.clients {
                let weight = match client.interest {
                    Interest::Mine if client.user == ticket.creator => 1.0,
                    Interest::Team if client.queue == ticket.queue => 1.0,
                    Interest::Comments if client.queue == ticket.queue => 0.5,
                    // Comments keep the priority; priority changes alternate.
                    Interest::Urgent if client.queue == ticket.queue => 0.5,
                    _ => 0.0,
                };
                total += weight;
            }
        }
        (total / self.tickets.len().max(1) as f64).max(1.0)
    }
}

impl ClientSpec {
    pub fn roles(&self) -> Vec<Role> {
        match self.interest {
            Interest::Mine => vec![Role::Requester],
            _ => vec![Role::Agent],
        }
    }

    pub fn teams(&self) -> Vec<String> {
        match self.interest {
            Interest::Mine => vec![],
            _ => vec![self.queue.to_string()],
        }
    }

    /// The subscription document and its variables, resuming after `after`.
    pub fn subscription(&self, after: &str) -> (String, Value) {
        let q = json!([self.queue]);
        match self.interest {
            Interest::Mine => (
                format!("subscription($after: String) {{ e: myTicketUpdates(after: $after) {{ {SELECTION} }} }}"),
                json!({ "after": after }),
            ),
            Interest::Team => (
                format!("subscription($after: String) {{ e: teamTicketUpdates(after: $after) {{ {SELECTION} }} }}"),
                json!({ "after": after }),
            ),
            Interest::Comments => (
                format!("subscription($after: String, $q: [String!]) {{ e: supportTicketEvents(after: $after, filter: {{queues: $q, eventTypes: [COMMENTED]}}) {{ {SELECTION} }} }}"),
                json!({ "after": after, "q": q }),
            ),
            Interest::Urgent => (
                format!("subscription($after: String, $q: [String!]) {{ e: supportTicketEvents(after: $after, filter: {{queues: $q, priorities: [HIGH, CRITICAL]}}) {{ {SELECTION} }} }}"),
                json!({ "after": after, "q": q }),
            ),
        }
    }

    /// Whether this socket must receive `m` (auth.md's rule narrowed by the
    /// subscription's own arguments).
    pub fn expects(&self, m: &Mutation, tickets: &[TicketSpec]) -> bool {
        let ticket = &tickets[m.ticket];
        match self.interest {
            Interest::Mine => ticket.creator == self.user,
            Interest::Team => ticket.queue == self.queue,
            Interest::Comments => ticket.queue == self.queue && m.kind == Kind::Comment,
            Interest::Urgent => ticket.queue == self.queue && m.urgent_after,
        }
    }
}
