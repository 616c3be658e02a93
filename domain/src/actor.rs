//! Who is acting: the authenticated user behind a command or a subscription
//! and their roles. What each role may see and do is [`crate::access`].

use serde::{Deserialize, Serialize};

/// A role of the token's `roles` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Requester,
    Agent,
    Admin,
}

/// The authenticated user behind a command or a subscription, as the token's
/// claims describe them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: String,
    pub roles: Vec<Role>,
    /// Queue names whose tickets an agent sees.
    pub teams: Vec<String>,
}

impl Actor {
    pub fn new(user_id: impl Into<String>, roles: Vec<Role>, teams: Vec<String>) -> Actor {
        Actor {
            user_id: user_id.into(),
            roles,
            teams,
        }
    }

    /// The actor of automated changes (imports, migrations, scheduled jobs).
    pub fn system() -> Actor {
        Actor::new("system", vec![Role::Admin], vec![])
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Agents and admins. Anyone else (including a user with no roles at
    /// all) is treated as a requester: the least privilege that exists.
    pub fn is_staff(&self) -> bool {
        self.has_role(Role::Agent) || self.has_role(Role::Admin)
    }
}
