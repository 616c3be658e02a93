//! Queries of the read models (see `migrations/README.md` for the tables): the
//! `supportTickets` list with its filter, visibility and keyset pagination, and
//! user profiles. The SQL is shared by SQLite and PostgreSQL; only how values
//! are bound differs (ids and times are text on SQLite).
//!
//! Read-your-writes, across nodes: before a query of a read model,
//! [`wait_for_log_head`] waits (at most `--read-your-writes-ms`) for that
//! projection to reach the head of the log as it stood when the query began.
//! A write acknowledged by any node is in the log before its response leaves,
//! so a client that writes through node B and then reads through node A sees
//! its write, with no token to carry between requests and no sticky sessions.
//! The price is one cheap `store.head()` per query (`MAX(position)` on the SQL
//! stores), and on a busy log a wait of about one projection batch.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use domain::{Actor, Role, Ticket};
use projections::ReadDb;
use sqlx::Row;
use store::{EventStore, Position};
use tokio::time::Instant;
use uuid::Uuid;

use crate::error::ApiError;
use crate::users::UserProfile;

/// A value bound to a `$n` placeholder.
#[derive(Debug, Clone)]
enum Bind {
    Text(String),
    Time(DateTime<Utc>),
    Id(Uuid),
}

/// A WHERE clause under construction, numbering its placeholders.
#[derive(Debug, Default)]
struct Where {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

impl Where {
    fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    fn list(&mut self, values: &[String]) -> String {
        let marks: Vec<String> = values
            .iter()
            .map(|v| self.bind(Bind::Text(v.clone())))
            .collect();
        marks.join(", ")
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// The `SupportTicketFilter`, in domain terms.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub statuses: Vec<String>,
    pub priorities: Vec<String>,
    pub queues: Vec<String>,
    pub assigned_to: Option<String>,
    pub created_by: Option<String>,
    /// A ticket matches when it has any of these tags.
    pub tags: Vec<String>,
    pub search: Option<String>,
    pub include_deleted: bool,
}

/// One page of tickets, in `(created_at, id)` order.
#[derive(Debug, Clone)]
pub struct TicketPage {
    pub tickets: Vec<(String, Ticket)>,
    pub has_next_page: bool,
    pub total_count: i64,
}

/// The opaque cursor of a ticket in the list: its `(created_at, id)` key.
pub fn encode_cursor(ticket: &Ticket) -> String {
    let key = format!("{}|{}", sql_time(ticket.created_at), ticket.id);
    URL_SAFE_NO_PAD.encode(key)
}

fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let bad = || {
        ApiError::Invalid(format!(
            "{} is not a cursor of this list",
            crate::graphql::bounds::quoted(cursor)
        ))
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (time, id) = text.split_once('|').ok_or_else(bad)?;
    let time = DateTime::parse_from_rfc3339(time)
        .map_err(|_| bad())?
        .with_timezone(&Utc);
    Ok((time, id.parse().map_err(|_| bad())?))
}

/// Times as the SQLite read model stores them: fixed width, nine fraction digits.
fn sql_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// auth.md "Who sees a ticket", as SQL over `tickets`.
fn visibility(viewer: &Actor, w: &mut Where) {
    if viewer.has_role(Role::Admin) {
        return;
    }
    let me = w.bind(Bind::Text(viewer.user_id.clone()));
    let watching = format!(
        "EXISTS (SELECT 1 FROM ticket_watchers w WHERE w.ticket_id = tickets.id AND w.user_id = {me})"
    );
    let mut any = vec![format!("created_by = {me}"), watching];
    if viewer.has_role(Role::Agent) {
        any.push(format!("assigned_to = {me}"));
        if !viewer.teams.is_empty() {
            any.push(format!("queue IN ({})", w.list(&viewer.teams)));
        }
    }
    w.clauses.push(format!("({})", any.join(" OR ")));
}

fn filter(f: &TicketFilter, w: &mut Where) {
    for (column, values) in [
        ("status", &f.statuses),
        ("priority", &f.priorities),
        ("queue", &f.queues),
    ] {
        if !values.is_empty() {
            let list = w.list(values);
            w.clauses.push(format!("{column} IN ({list})"));
        }
    }
    if let Some(user) = &f.assigned_to {
        let p = w.bind(Bind::Text(user.clone()));
        w.clauses.push(format!("assigned_to = {p}"));
    }
    if let Some(user) = &f.created_by {
        let p = w.bind(Bind::Text(user.clone()));
        w.clauses.push(format!("created_by = {p}"));
    }
    if !f.tags.is_empty() {
        let tags: Vec<String> = f.tags.iter().map(|t| t.trim().to_lowercase()).collect();
        let list = w.list(&tags);
        w.clauses.push(format!(
            "EXISTS (SELECT 1 FROM ticket_tags t WHERE t.ticket_id = tickets.id AND t.tag IN ({list}))"
        ));
    }
    if let Some(term) = f.search.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let escaped = term
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let p = w.bind(Bind::Text(format!("%{escaped}%")));
        w.clauses.push(format!(
            "(lower(reference) LIKE {p} ESCAPE '\\' OR lower(request) LIKE {p} ESCAPE '\\' \
             OR lower(coalesce(description, '')) LIKE {p} ESCAPE '\\')"
        ));
    }
    if !f.include_deleted {
        w.clauses.push("NOT deleted".into());
    }
}

/// A page of the tickets `viewer` may see, matching `f`, after `after`.
#[tracing::instrument(name = "list tickets", skip_all, fields(viewer = %viewer.user_id, first), err)]
pub async fn list_tickets(
    db: &ReadDb,
    viewer: &Actor,
    f: &TicketFilter,
    first: usize,
    after: Option<&str>,
) -> Result<TicketPage, ApiError> {
    let mut w = Where::default();
    visibility(viewer, &mut w);
    filter(f, &mut w);
    let count_sql = format!("SELECT COUNT(*) FROM tickets{}", w.sql());
    let count_binds = w.binds.clone();
    if let Some(cursor) = after {
        let (time, id) = decode_cursor(cursor)?;
        let t1 = w.bind(Bind::Time(time));
        let t2 = w.bind(Bind::Time(time));
        let i = w.bind(Bind::Id(id));
        w.clauses.push(format!(
            "(created_at > {t1} OR (created_at = {t2} AND id > {i}))"
        ));
    }
    let page_sql = format!(
        "SELECT state FROM tickets{} ORDER BY created_at, id LIMIT {}",
        w.sql(),
        first + 1
    );
    let (states, total_count) = match db {
        ReadDb::Sqlite(pool) => {
            let mut q = sqlx::query(&page_sql);
            for b in &w.binds {
                q = match b {
                    Bind::Text(s) => q.bind(s.clone()),
                    Bind::Time(t) => q.bind(sql_time(*t)),
                    Bind::Id(id) => q.bind(id.to_string()),
                };
            }
            let rows = q.fetch_all(pool).await?;
            let mut states = Vec::with_capacity(rows.len());
            for row in rows {
                let text: String = row.try_get(0)?;
                states.push(serde_json::from_str(&text).map_err(ApiError::internal)?);
            }
            let mut c = sqlx::query_scalar::<_, i64>(&count_sql);
            for b in &count_binds {
                c = match b {
                    Bind::Text(s) => c.bind(s.clone()),
                    Bind::Time(t) => c.bind(sql_time(*t)),
                    Bind::Id(id) => c.bind(id.to_string()),
                };
            }
            (states, c.fetch_one(pool).await?)
        }
        ReadDb::Postgres(pool) => {
            let mut q = sqlx::query(&page_sql);
            for b in &w.binds {
                q = match b {
                    Bind::Text(s) => q.bind(s.clone()),
                    Bind::Time(t) => q.bind(*t),
                    Bind::Id(id) => q.bind(*id),
                };
            }
            let rows = q.fetch_all(pool).await?;
            let mut states = Vec::with_capacity(rows.len());
            for row in rows {
                let value: serde_json::Value = row.try_get(0)?;
                states.push(serde_json::from_value(value).map_err(ApiError::internal)?);
            }
            let mut c = sqlx::query_scalar::<_, i64>(&count_sql);
            for b in &count_binds {
                c = match b {
                    Bind::Text(s) => c.bind(s.clone()),
                    Bind::Time(t) => c.bind(*t),
                    Bind::Id(id) => c.bind(*id),
                };
            }
            (states, c.fetch_one(pool).await?)
        }
    };
    let mut tickets: Vec<Ticket> = states;
    let has_next_page = tickets.len() > first;
    tickets.truncate(first);
    Ok(TicketPage {
        tickets: tickets
            .into_iter()
            .map(|t| (encode_cursor(&t), t))
            .collect(),
        has_next_page,
        total_count,
    })
}

/// How a [`wait_for_log_head`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// The projection holds every event up to the target.
    Reached,
    /// The time ran out first: the query answers from the model as it stands.
    TimedOut,
    /// The projection is stopped on a poison event: waiting would not help.
    Stopped,
    /// Its checkpoint could not be read: the query itself will tell.
    Unknown,
}

/// Waits, at most `timeout`, until `projection` has applied the log up to its
/// head as of now, and at least up to `own_write` (the caller's last write in
/// this process, in case the head cannot be read). Never an error: a read model
/// that does not catch up in time is answered as it stands.
#[tracing::instrument(name = "wait for the read model", skip(store, db), ret)]
pub async fn wait_for_log_head(
    store: &dyn EventStore,
    db: &ReadDb,
    projection: &str,
    own_write: Option<Position>,
    timeout: Duration,
) -> Freshness {
    let deadline = Instant::now() + timeout;
    let head = match store.head().await {
        Ok(head) => Some(head),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the head of the log");
            None
        }
    };
    let Some(target) = head.max(own_write) else {
        return Freshness::Unknown;
    };
    if target == Position::START {
        return Freshness::Reached;
    }
    // Short pauses first: on an idle node one batch is a few milliseconds.
    let mut pause = Duration::from_millis(2);
    loop {
        let status = match projections::status(db).await {
            Ok(all) => all.into_iter().find(|s| s.name == projection),
            Err(_) => return Freshness::Unknown,
        };
        match status {
            Some(s) if s.state == projections::ProjectionState::Failed => {
                return Freshness::Stopped
            }
            Some(s) if s.position >= target => return Freshness::Reached,
            _ => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Freshness::TimedOut;
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}

/// first name, last name, email, roles, teams (JSON as `J`).
type UserRow<J> = (Option<String>, Option<String>, Option<String>, J, J);

/// The latest profile of `id` in the `users` read model.
#[tracing::instrument(name = "find user", skip(db), err)]
pub async fn find_user(db: &ReadDb, id: &str) -> Result<Option<UserProfile>, ApiError> {
    const SQL: &str = "SELECT first_name, last_name, email, roles, teams FROM users WHERE id = $1";
    let row = match db {
        ReadDb::Sqlite(pool) => {
            let row: Option<UserRow<String>> =
                sqlx::query_as(SQL).bind(id).fetch_optional(pool).await?;
            match row {
                None => None,
                Some((f, l, e, roles, teams)) => Some((
                    f,
                    l,
                    e,
                    serde_json::from_str(&roles).map_err(ApiError::internal)?,
                    serde_json::from_str(&teams).map_err(ApiError::internal)?,
                )),
            }
        }
        ReadDb::Postgres(pool) => {
            let row: Option<UserRow<serde_json::Value>> =
                sqlx::query_as(SQL).bind(id).fetch_optional(pool).await?;
            row
        }
    };
    let Some((first_name, last_name, email, roles, teams)) = row else {
        return Ok(None);
    };
    Ok(Some(UserProfile {
        id: id.to_string(),
        first_name,
        last_name,
        email,
        roles: serde_json::from_value(roles).map_err(ApiError::internal)?,
        teams: serde_json::from_value(teams).map_err(ApiError::internal)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cursor is opaque but round-trips to the ticket's key; garbage is INVALID.
    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        let id = Uuid::new_v4();
        let key = URL_SAFE_NO_PAD.encode(format!("{}|{id}", sql_time(at)));
        assert_eq!(decode_cursor(&key).unwrap(), (at, id));
        assert!(matches!(decode_cursor("nope!"), Err(ApiError::Invalid(_))));
    }

    /// A requester's visibility is created-or-watching; an agent's adds queues and
    /// assignment; an admin's is everything.
    #[test]
    fn visibility_follows_auth_md() {
        let mut w = Where::default();
        visibility(
            &Actor::new("r", vec![Role::Requester], vec!["support".into()]),
            &mut w,
        );
        assert!(!w.sql().contains("queue"), "{}", w.sql());
        let mut w = Where::default();
        visibility(
            &Actor::new("a", vec![Role::Agent], vec!["support".into()]),
            &mut w,
        );
        assert!(
            w.sql().contains("queue IN") && w.sql().contains("assigned_to"),
            "{}",
            w.sql()
        );
        let mut w = Where::default();
        visibility(&Actor::new("x", vec![Role::Admin], vec![]), &mut w);
        assert_eq!(w.sql(), "");
    }
}
