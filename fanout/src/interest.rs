//! What a subscriber is interested in, and the index that finds the
//! subscribers an event concerns without looking at the others.
//!
//! An event touches a handful of keys: its ticket, the users involved with the
//! ticket right before or right after it (creator, assignee, watchers) and the
//! queue it was in or moved to. The hub looks up only those keys, so the cost of
//! an event grows with the subscribers interested in it, not with the number
//! connected. Subscribers with [`Interest::All`] (an admin's unfiltered
//! `supportTicketEvents`) are offered every event: they are interested in all.

use std::collections::{HashMap, HashSet};

use domain::Ticket;
use uuid::Uuid;

use crate::Delivery;

/// One thing an event can be about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// The ticket itself.
    Ticket(Uuid),
    /// A user who created, is assigned to or watches the ticket, before or
    /// after the event.
    User(String),
    /// The ticket's queue, before or after the event.
    Queue(String),
}

/// The events a subscriber is offered; its predicate has the final word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interest {
    /// Every ticket event.
    All,
    /// Events touching at least one of these keys (none: no event at all).
    Keys(Vec<Key>),
}

impl Interest {
    pub fn ticket(id: Uuid) -> Interest {
        Interest::Keys(vec![Key::Ticket(id)])
    }

    pub fn user(user_id: impl Into<String>) -> Interest {
        Interest::Keys(vec![Key::User(user_id.into())])
    }

    pub fn queues<I: IntoIterator<Item = S>, S: Into<String>>(queues: I) -> Interest {
        Interest::Keys(queues.into_iter().map(|q| Key::Queue(q.into())).collect())
    }

    /// Whether `delivery` touches this interest: the test the index makes, for
    /// the replay path, which reads the log instead of using the index.
    pub fn touches(&self, delivery: &Delivery) -> bool {
        match self {
            Interest::All => true,
            Interest::Keys(keys) => {
                let touched = keys_of(delivery);
                keys.iter().any(|k| touched.contains(k))
            }
        }
    }
}

/// Every key `delivery` touches, without repeats.
pub fn keys_of(delivery: &Delivery) -> Vec<Key> {
    let mut keys = vec![Key::Ticket(delivery.after.id)];
    let mut add = |key: Key| {
        if !keys.contains(&key) {
            keys.push(key);
        }
    };
    for ticket in delivery.before.iter().chain([&delivery.after]) {
        add(Key::Queue(ticket.queue.clone()));
        for user in users_of(ticket) {
            add(Key::User(user.to_string()));
        }
    }
    keys
}

fn users_of(ticket: &Ticket) -> impl Iterator<Item = &str> {
    std::iter::once(ticket.created_by.as_str())
        .chain(ticket.assigned_to.as_deref())
        .chain(ticket.watchers.iter().map(String::as_str))
}

/// Subscriber ids by key.
#[derive(Debug, Default)]
pub(crate) struct Index {
    all: HashSet<u64>,
    by_key: HashMap<Key, HashSet<u64>>,
}

impl Index {
    pub fn insert(&mut self, id: u64, interest: &Interest) {
        match interest {
            Interest::All => {
                self.all.insert(id);
            }
            Interest::Keys(keys) => {
                for key in keys {
                    self.by_key.entry(key.clone()).or_default().insert(id);
                }
            }
        }
    }

    pub fn remove(&mut self, id: u64, interest: &Interest) {
        match interest {
            Interest::All => {
                self.all.remove(&id);
            }
            Interest::Keys(keys) => {
                for key in keys {
                    if let Some(ids) = self.by_key.get_mut(key) {
                        ids.remove(&id);
                        if ids.is_empty() {
                            self.by_key.remove(key);
                        }
                    }
                }
            }
        }
    }

    /// The subscribers `delivery` concerns, each once, in registration order
    /// (so two subscribers of one event see it in a stable order).
    pub fn interested(&self, delivery: &Delivery) -> Vec<u64> {
        let mut ids: Vec<u64> = self.all.iter().copied().collect();
        for key in keys_of(delivery) {
            if let Some(found) = self.by_key.get(&key) {
                ids.extend(found.iter().copied());
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}
