//! [`Board`]: who is present on which ticket, as one process knows it. Plain
//! data with no clock and no I/O: the instant and the time are passed in, so
//! every rule is tested here without waiting.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::UserProfile;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a present user is doing (`LEFT` is no entry at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Activity {
    Viewing,
    Typing,
}

/// Where an entry was set: the process (`origin`) and, when it came over a
/// WebSocket, that socket (numbered within its process). The entry ends with
/// that socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    pub origin: Uuid,
    pub socket: Option<u64>,
}

/// One user present on one ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The user as their token described them when they last set it.
    pub user: UserProfile,
    pub activity: Activity,
    /// When the user entered this activity on this ticket (a refresh with the
    /// same activity keeps it).
    pub since: DateTime<Utc>,
    pub holder: Holder,
    /// Gone at this instant unless refreshed.
    pub expires: Instant,
}

impl Entry {
    /// Whether `other` shows the same thing to a reader (the expiry and the
    /// holder are not shown).
    fn shows_as(&self, other: &Entry) -> bool {
        self.user == other.user && self.activity == other.activity && self.since == other.since
    }
}

/// A new entry the caps refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The ticket already has this many users present.
    Ticket(u32),
    /// The user is already present on this many tickets.
    User(u32),
}

/// The caps and the lifetime of entries.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub ttl: Duration,
    pub max_per_ticket: u32,
    pub max_per_user: u32,
}

/// What a change did to what readers see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// The list shows something else now.
    Shown,
    /// Only the expiry (or the holder) moved: a refresh.
    Refreshed,
}

/// Every entry one process knows of, per ticket, one per user.
#[derive(Debug)]
pub struct Board {
    bounds: Bounds,
    tickets: HashMap<Uuid, BTreeMap<String, Entry>>,
    /// Tickets each user is present on.
    per_user: HashMap<String, u32>,
}

impl Board {
    pub fn new(bounds: Bounds) -> Board {
        Board {
            bounds,
            tickets: HashMap::new(),
            per_user: HashMap::new(),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.bounds.ttl
    }

    /// `user` is doing `activity` on `ticket`, set here (through `holder`) at
    /// `now` / `at`. A new entry past a cap is refused; a refresh or a change
    /// of activity of an existing one never is. Returns the entry as stored.
    pub fn set(
        &mut self,
        ticket: Uuid,
        user: UserProfile,
        activity: Activity,
        holder: Holder,
        now: DateTime<Utc>,
        at: Instant,
    ) -> Result<(Entry, Changed), Full> {
        let existing = self
            .tickets
            .get(&ticket)
            .and_then(|entries| entries.get(&user.id));
        let since = match existing {
            Some(old) if old.activity == activity => old.since,
            Some(_) => now,
            None => {
                let on_ticket = self.tickets.get(&ticket).map_or(0, BTreeMap::len);
                if on_ticket >= self.bounds.max_per_ticket as usize {
                    return Err(Full::Ticket(self.bounds.max_per_ticket));
                }
                if self.per_user.get(&user.id).copied().unwrap_or(0) >= self.bounds.max_per_user {
                    return Err(Full::User(self.bounds.max_per_user));
                }
                now
            }
        };
        let entry = Entry {
            user,
            activity,
            since,
            holder,
            expires: at + self.bounds.ttl,
        };
        let changed = self.put(ticket, entry.clone());
        Ok((entry, changed))
    }

    /// Stores `entry` as another process set it (that process checked the
    /// caps), expiring `ttl` after `at`, when it was heard.
    pub fn put(&mut self, ticket: Uuid, entry: Entry) -> Changed {
        let entries = self.tickets.entry(ticket).or_default();
        match entries.insert(entry.user.id.clone(), entry.clone()) {
            Some(old) if old.shows_as(&entry) => Changed::Refreshed,
            Some(_) => Changed::Shown,
            None => {
                *self.per_user.entry(entry.user.id.clone()).or_insert(0) += 1;
                Changed::Shown
            }
        }
    }

    /// Removes `user` from `ticket`; whether there was an entry.
    pub fn remove(&mut self, ticket: Uuid, user: &str) -> bool {
        let Some(entries) = self.tickets.get_mut(&ticket) else {
            return false;
        };
        let removed = entries.remove(user).is_some();
        if entries.is_empty() {
            self.tickets.remove(&ticket);
        }
        if removed {
            self.forget_one(user);
        }
        removed
    }

    fn forget_one(&mut self, user: &str) {
        if let Some(count) = self.per_user.get_mut(user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_user.remove(user);
            }
        }
    }

    /// Removes every entry held by `holder` (a socket that closed); returns
    /// the (ticket, user) of each.
    pub fn release(&mut self, holder: Holder) -> Vec<(Uuid, String)> {
        self.remove_where(|entry| entry.holder == holder)
    }

    /// Removes every entry whose time is up at `at`; returns the (ticket,
    /// user) of each.
    pub fn expire(&mut self, at: Instant) -> Vec<(Uuid, String)> {
        self.remove_where(|entry| entry.expires <= at)
    }

    fn remove_where(&mut self, gone: impl Fn(&Entry) -> bool) -> Vec<(Uuid, String)> {
        let removed: Vec<(Uuid, String)> = self
            .tickets
            .iter()
            .flat_map(|(ticket, entries)| {
                entries
                    .values()
                    .filter(|e| gone(e))
                    .map(|e| (*ticket, e.user.id.clone()))
            })
            .collect();
        for (ticket, user) in &removed {
            self.remove(*ticket, user);
        }
        removed
    }

    /// The entries of `ticket`, longest present first (then by user id).
    pub fn list(&self, ticket: Uuid) -> Vec<Entry> {
        let mut entries: Vec<Entry> = self
            .tickets
            .get(&ticket)
            .map(|entries| entries.values().cloned().collect())
            .unwrap_or_default();
        entries.sort_by(|a, b| {
            a.since
                .cmp(&b.since)
                .then_with(|| a.user.id.cmp(&b.user.id))
        });
        entries
    }

    /// Every entry set in process `origin`, with its ticket.
    pub fn set_in(&self, origin: Uuid) -> Vec<(Uuid, Entry)> {
        self.tickets
            .iter()
            .flat_map(|(ticket, entries)| {
                entries
                    .values()
                    .filter(|e| e.holder.origin == origin)
                    .map(|e| (*ticket, e.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> UserProfile {
        UserProfile {
            id: id.into(),
            first_name: None,
            last_name: None,
            email: None,
            roles: vec![domain::Role::Agent],
            teams: vec![],
        }
    }

    fn board(max_per_ticket: u32, max_per_user: u32) -> Board {
        Board::new(Bounds {
            ttl: Duration::from_secs(30),
            max_per_ticket,
            max_per_user,
        })
    }

    const HTTP: Holder = Holder {
        origin: Uuid::nil(),
        socket: None,
    };

    /// A refresh with the same activity keeps `since` and changes nothing a
    /// reader sees; a new activity starts a new `since`.
    #[test]
    fn a_refresh_keeps_since_and_a_new_activity_restarts_it() {
        let mut board = board(10, 10);
        let t = Uuid::new_v4();
        let (start, at) = (Utc::now(), Instant::now());
        let (first, changed) = board
            .set(t, user("ada"), Activity::Viewing, HTTP, start, at)
            .unwrap();
        assert_eq!(changed, Changed::Shown);
        let later = start + chrono::Duration::seconds(5);
        let (again, changed) = board
            .set(t, user("ada"), Activity::Viewing, HTTP, later, at)
            .unwrap();
        assert_eq!((again.since, changed), (first.since, Changed::Refreshed));
        let (typing, changed) = board
            .set(t, user("ada"), Activity::Typing, HTTP, later, at)
            .unwrap();
        assert_eq!((typing.since, changed), (later, Changed::Shown));
        assert_eq!(board.list(t).len(), 1);
    }

    /// A ticket takes at most `max_per_ticket` users and a user at most
    /// `max_per_user` tickets; those already present may still refresh, and
    /// a removal makes room.
    #[test]
    fn the_caps_refuse_new_entries_only() {
        let mut board = board(2, 2);
        let (t1, t2, t3) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let (now, at) = (Utc::now(), Instant::now());
        let set = |board: &mut Board, t, who: &str| {
            board.set(t, user(who), Activity::Viewing, HTTP, now, at)
        };
        set(&mut board, t1, "ada").unwrap();
        set(&mut board, t1, "bob").unwrap();
        assert_eq!(set(&mut board, t1, "cy").unwrap_err(), Full::Ticket(2));
        assert!(set(&mut board, t1, "bob").is_ok(), "a refresh");
        set(&mut board, t2, "ada").unwrap();
        assert_eq!(set(&mut board, t3, "ada").unwrap_err(), Full::User(2));
        assert!(board.remove(t2, "ada"));
        assert!(set(&mut board, t3, "ada").is_ok());
    }

    /// Entries end with their socket, or once their time is up; others stay.
    #[test]
    fn entries_end_with_their_socket_or_their_time() {
        let mut board = board(10, 10);
        let t = Uuid::new_v4();
        let (now, at) = (Utc::now(), Instant::now());
        let socket = Holder {
            origin: Uuid::nil(),
            socket: Some(7),
        };
        board
            .set(t, user("ada"), Activity::Typing, socket, now, at)
            .unwrap();
        board
            .set(t, user("bob"), Activity::Viewing, HTTP, now, at)
            .unwrap();
        assert_eq!(board.release(socket), vec![(t, "ada".to_string())]);
        assert_eq!(board.list(t).len(), 1);
        assert!(board.expire(at + Duration::from_secs(29)).is_empty());
        assert_eq!(
            board.expire(at + Duration::from_secs(30)),
            vec![(t, "bob".to_string())]
        );
        assert!(board.list(t).is_empty());
        assert!(board.per_user.is_empty() && board.tickets.is_empty());
    }
}
