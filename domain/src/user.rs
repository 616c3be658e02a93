//! A user's profile as recorded from the claims of their token (auth.md: the
//! first time a user is seen and whenever it changes), in a `user-<id>`
//! stream of its own, so the log stays the one source of truth about users
//! too. How a profile is stored is [`crate::codec::user`].

use serde::{Deserialize, Serialize};

use crate::actor::{Actor, Role};

/// Every user's event stream is named `user-<id>`.
pub const USER_STREAM_PREFIX: &str = "user-";

/// The name of the event stream holding one user's profiles.
pub fn user_stream_name(id: &str) -> String {
    format!("{USER_STREAM_PREFIX}{id}")
}

/// What is known of a user: who they are and what they may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserProfile {
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub roles: Vec<Role>,
    pub teams: Vec<String>,
}

impl UserProfile {
    /// The user as an actor, with the roles and teams of this profile.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.id.clone(),
            roles: self.roles.clone(),
            teams: self.teams.clone(),
        }
    }
}
