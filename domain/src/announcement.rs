//! Announcements: a message an ADMIN publishes to an audience of roles and
//! teams (auth.md, "Next round"), recorded as one `AnnouncementPublished`
//! event in an `announcement-<id>` stream of its own. How it is stored is
//! [`crate::codec::announcement`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::actor::{Actor, Role};
use crate::error::DomainError;
use crate::validate;

/// Every announcement's stream is named `announcement-<uuid>`.
pub const ANNOUNCEMENT_STREAM_PREFIX: &str = "announcement-";

pub fn announcement_stream_name(id: Uuid) -> String {
    format!("{ANNOUNCEMENT_STREAM_PREFIX}{id}")
}

/// Longest title, in bytes.
pub const MAX_TITLE: usize = 200;
/// Longest body, in bytes.
pub const MAX_BODY: usize = 10_000;
/// At most this many teams in an audience.
pub const MAX_TEAMS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Announcement {
    pub id: Uuid,
    pub title: String,
    pub body: String,
    /// Users with any of these roles (empty: everyone). Sorted, unique.
    pub roles: Vec<Role>,
    /// And, when not empty, in any of these teams. Sorted, unique.
    pub teams: Vec<String>,
    pub published_by: String,
    pub published_at: DateTime<Utc>,
}

/// What an ADMIN asks to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub title: String,
    pub body: String,
    pub roles: Vec<Role>,
    pub teams: Vec<String>,
}

impl Announcement {
    /// The announcement `actor` publishes: ADMIN only; title and body
    /// trimmed, required and bounded; teams validated as queue names.
    pub fn publish(
        actor: &Actor,
        id: Uuid,
        draft: Draft,
        now: DateTime<Utc>,
    ) -> Result<Announcement, DomainError> {
        if !actor.has_role(Role::Admin) {
            return Err(DomainError::forbidden(
                "only an admin may publish an announcement",
            ));
        }
        let title = bounded("title", &draft.title, MAX_TITLE)?;
        let body = bounded("body", &draft.body, MAX_BODY)?;
        if draft.teams.len() > MAX_TEAMS {
            return Err(DomainError::Invalid(format!(
                "an announcement names at most {MAX_TEAMS} teams"
            )));
        }
        let mut teams = draft
            .teams
            .iter()
            .map(|t| validate::queue(t))
            .collect::<Result<Vec<_>, _>>()?;
        teams.sort();
        teams.dedup();
        let mut roles = draft.roles;
        roles.sort_by_key(|r| *r as u8);
        roles.dedup();
        Ok(Announcement {
            id,
            title,
            body,
            roles,
            teams,
            published_by: actor.user_id.clone(),
            published_at: now,
        })
    }

    /// auth.md: a user receives it if they have any of its roles (or it
    /// names none) and, when it names teams, are in one of them.
    pub fn is_addressed_to(&self, actor: &Actor) -> bool {
        let role = self.roles.is_empty() || self.roles.iter().any(|r| actor.has_role(*r));
        let team = self.teams.is_empty() || self.teams.iter().any(|t| actor.teams.contains(t));
        role && team
    }
}

fn bounded(field: &str, value: &str, max: usize) -> Result<String, DomainError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(DomainError::Invalid(format!("{field} must not be empty")));
    }
    if value.len() > max {
        return Err(DomainError::Invalid(format!(
            "{field} is longer than {max} bytes"
        )));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(roles: Vec<Role>, teams: Vec<&str>) -> Draft {
        Draft {
            title: " Maintenance ".into(),
            body: "Tonight 22:00-23:00".into(),
            roles,
            teams: teams.into_iter().map(String::from).collect(),
        }
    }

    fn admin() -> Actor {
        Actor::new("dave", vec![Role::Admin], vec![])
    }

    #[test]
    fn only_an_admin_publishes_and_the_text_is_trimmed_and_required() {
        let agent = Actor::new("bob", vec![Role::Agent], vec![]);
        let now = chrono::Utc::now();
        assert!(matches!(
            Announcement::publish(&agent, Uuid::nil(), draft(vec![], vec![]), now),
            Err(DomainError::Forbidden(_))
        ));
        let published =
            Announcement::publish(&admin(), Uuid::nil(), draft(vec![], vec![]), now).unwrap();
        assert_eq!(published.title, "Maintenance");
        let mut empty = draft(vec![], vec![]);
        empty.body = "  ".into();
        assert!(matches!(
            Announcement::publish(&admin(), Uuid::nil(), empty, now),
            Err(DomainError::Invalid(_))
        ));
    }

    #[test]
    fn the_audience_is_any_of_the_roles_and_any_of_the_teams() {
        let now = chrono::Utc::now();
        let agents_of_billing = Announcement::publish(
            &admin(),
            Uuid::nil(),
            draft(vec![Role::Agent], vec!["billing"]),
            now,
        )
        .unwrap();
        let billing_agent = Actor::new("bob", vec![Role::Agent], vec!["billing".into()]);
        let support_agent = Actor::new("carol", vec![Role::Agent], vec!["support".into()]);
        let requester = Actor::new("alice", vec![Role::Requester], vec!["billing".into()]);
        assert!(agents_of_billing.is_addressed_to(&billing_agent));
        assert!(!agents_of_billing.is_addressed_to(&support_agent));
        assert!(!agents_of_billing.is_addressed_to(&requester));
        let everyone =
            Announcement::publish(&admin(), Uuid::nil(), draft(vec![], vec![]), now).unwrap();
        assert!(everyone.is_addressed_to(&requester));
    }
}
