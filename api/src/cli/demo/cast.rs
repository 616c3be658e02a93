//! The people of the demo: an admin, a team of agents per queue and a few
//! hundred requesters from a handful of companies, all drawn from the seed.

use std::collections::HashSet;

use domain::Role;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::words;
use crate::users::UserProfile;

/// The admin's id; its profile is recorded first, so its presence says a demo
/// ran on this database.
pub const ADMIN_ID: &str = "demo-admin";

/// Agents per queue's team.
const TEAM_SIZE: usize = 4;

pub struct Cast {
    pub admin: UserProfile,
    pub agents: Vec<UserProfile>,
    pub requesters: Vec<UserProfile>,
}

impl Cast {
    /// The same seed gives the same people.
    pub fn draw(rng: &mut ChaCha8Rng, requesters: usize) -> Cast {
        let mut taken = HashSet::from([ADMIN_ID.to_string()]);
        let admin = UserProfile {
            id: ADMIN_ID.into(),
            first_name: Some("Ada".into()),
            last_name: Some("Admin".into()),
            email: Some("ada.admin@support.example".into()),
            roles: vec![Role::Admin],
            teams: vec![],
        };
        let mut agents = Vec::new();
        for (index, (queue, _)) in words::QUEUES.iter().enumerate() {
            for member in 0..TEAM_SIZE {
                let mut teams = vec![queue.to_string()];
                // The first of each team also helps out in the next queue.
                if member == 0 {
                    let next = words::QUEUES[(index + 1) % words::QUEUES.len()].0;
                    teams.push(next.to_string());
                }
                agents.push(person(
                    rng,
                    &mut taken,
                    "support.example",
                    Role::Agent,
                    teams,
                ));
            }
        }
        let requesters = (0..requesters)
            .map(|_| {
                let company = words::COMPANIES
                    .choose(rng)
                    .copied()
                    .unwrap_or("example.com");
                person(rng, &mut taken, company, Role::Requester, vec![])
            })
            .collect();
        Cast {
            admin,
            agents,
            requesters,
        }
    }

    /// Everybody, the admin first.
    pub fn everyone(&self) -> impl Iterator<Item = &UserProfile> {
        std::iter::once(&self.admin)
            .chain(&self.agents)
            .chain(&self.requesters)
    }

    /// The agents whose teams work `queue`.
    pub fn team(&self, queue: &str) -> Vec<&UserProfile> {
        self.agents
            .iter()
            .filter(|a| a.teams.iter().any(|t| t == queue))
            .collect()
    }
}

/// A person with a unique `first.last` id (a number added on a clash).
fn person(
    rng: &mut ChaCha8Rng,
    taken: &mut HashSet<String>,
    domain: &str,
    role: Role,
    teams: Vec<String>,
) -> UserProfile {
    let first = words::FIRST_NAMES[rng.gen_range(0..words::FIRST_NAMES.len())];
    let last = words::LAST_NAMES[rng.gen_range(0..words::LAST_NAMES.len())];
    let base = format!("{}.{}", first.to_lowercase(), last.to_lowercase());
    let mut id = base.clone();
    let mut n = 2;
    while !taken.insert(id.clone()) {
        id = format!("{base}{n}");
        n += 1;
    }
    UserProfile {
        email: Some(format!("{id}@{domain}")),
        id,
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        roles: vec![role],
        teams,
    }
}
