//! Queries of the tickets read model: the `supportTickets` list with its
//! filter, the caller's visibility and keyset pagination.
//!
//! Visibility is `domain::visibility`, the rule `domain::can_see` checks on
//! one ticket, turned into a WHERE clause here.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use domain::{Actor, Ticket, Visibility};
use uuid::Uuid;

use crate::bind::{fetch_db, sqlite_time, Arg};
use crate::db::{Dialect, ReadDb};
use crate::error::QueryError;

/// The contract's `SupportTicketFilter`, in domain terms.
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

/// One page of tickets, in `(created_at, id)` order, each with its cursor.
#[derive(Debug, Clone)]
pub struct TicketPage {
    pub tickets: Vec<(String, Ticket)>,
    pub has_next_page: bool,
    pub total_count: i64,
}

/// The opaque cursor of a ticket in the list: its `(created_at, id)` key.
pub fn encode_cursor(ticket: &Ticket) -> String {
    let key = format!("{}|{}", sqlite_time(ticket.created_at), ticket.id);
    URL_SAFE_NO_PAD.encode(key)
}

fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, Uuid), QueryError> {
    let bad = || QueryError::InvalidCursor(cursor.to_string());
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (time, id) = text.split_once('|').ok_or_else(bad)?;
    let time = DateTime::parse_from_rfc3339(time)
        .map_err(|_| bad())?
        .with_timezone(&Utc);
    Ok((time, id.parse().map_err(|_| bad())?))
}

/// An owned query parameter (see [`Arg`]).
#[derive(Debug, Clone)]
enum Param {
    Text(String),
    Texts(Vec<String>),
    Time(DateTime<Utc>),
    Id(Uuid),
}

impl Param {
    fn arg(&self) -> Arg<'_> {
        match self {
            Param::Text(text) => Arg::Text(text),
            Param::Texts(texts) => Arg::Texts(texts),
            Param::Time(at) => Arg::Time(*at),
            Param::Id(id) => Arg::Id(*id),
        }
    }
}

/// A WHERE clause under construction, numbering its placeholders.
#[derive(Debug)]
struct Where {
    dialect: Dialect,
    clauses: Vec<String>,
    params: Vec<Param>,
}

impl Where {
    fn new(dialect: Dialect) -> Where {
        Where {
            dialect,
            clauses: Vec::new(),
            params: Vec::new(),
        }
    }

    fn bind(&mut self, value: Param) -> String {
        self.params.push(value);
        format!("${}", self.params.len())
    }

    /// `column` is one of `values`, bound as one list parameter.
    fn any(&mut self, column: &str, values: Vec<String>) -> String {
        self.params.push(Param::Texts(values));
        self.dialect.any(column, self.params.len())
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    fn args(&self) -> Vec<Arg<'_>> {
        self.params.iter().map(Param::arg).collect()
    }
}

/// `domain::visibility` as SQL over `tickets`.
fn visibility(viewer: &Actor, w: &mut Where) {
    let Visibility::Involved {
        user,
        assigned,
        queues,
    } = domain::visibility(viewer)
    else {
        return;
    };
    let me = w.bind(Param::Text(user.to_string()));
    let mut any = vec![
        format!("created_by = {me}"),
        format!(
            "EXISTS (SELECT 1 FROM ticket_watchers w WHERE w.ticket_id = tickets.id AND w.user_id = {me})"
        ),
    ];
    if assigned {
        any.push(format!("assigned_to = {me}"));
    }
    if !queues.is_empty() {
        any.push(w.any("queue", queues.to_vec()));
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
            let clause = w.any(column, values.clone());
            w.clauses.push(clause);
        }
    }
    if let Some(user) = &f.assigned_to {
        let p = w.bind(Param::Text(user.clone()));
        w.clauses.push(format!("assigned_to = {p}"));
    }
    if let Some(user) = &f.created_by {
        let p = w.bind(Param::Text(user.clone()));
        w.clauses.push(format!("created_by = {p}"));
    }
    if !f.tags.is_empty() {
        let tags = f.tags.iter().map(|t| t.trim().to_lowercase()).collect();
        let tag = w.any("t.tag", tags);
        w.clauses.push(format!(
            "EXISTS (SELECT 1 FROM ticket_tags t WHERE t.ticket_id = tickets.id AND {tag})"
        ));
    }
    if let Some(term) = f.search.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let escaped = term
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let p = w.bind(Param::Text(format!("%{escaped}%")));
        w.clauses.push(format!(
            "(lower(reference) LIKE {p} ESCAPE '\\' OR lower(request) LIKE {p} ESCAPE '\\' \
             OR lower(coalesce(description, '')) LIKE {p} ESCAPE '\\')"
        ));
    }
    if !f.include_deleted {
        w.clauses.push("NOT deleted".into());
    }
}

/// A page of the tickets `viewer` may see, matching `f`, after the cursor
/// `after`, with the number of all matching tickets.
#[tracing::instrument(name = "list tickets", skip_all, fields(viewer = %viewer.user_id, first), err)]
pub async fn list_tickets(
    db: &ReadDb,
    viewer: &Actor,
    f: &TicketFilter,
    first: usize,
    after: Option<&str>,
) -> Result<TicketPage, QueryError> {
    let mut w = Where::new(db.dialect());
    visibility(viewer, &mut w);
    filter(f, &mut w);
    let count_sql = format!("SELECT COUNT(*) AS n FROM tickets{}", w.sql());
    let count = fetch_db(db, &count_sql, &w.args()).await?;
    let total_count = match count.first() {
        Some(row) => row.int("n")?,
        None => 0,
    };
    if let Some(cursor) = after {
        let (time, id) = decode_cursor(cursor)?;
        let t = w.bind(Param::Time(time));
        let i = w.bind(Param::Id(id));
        w.clauses.push(format!(
            "(created_at > {t} OR (created_at = {t} AND id > {i}))"
        ));
    }
    let page_sql = format!(
        "SELECT state FROM tickets{} ORDER BY created_at, id LIMIT {}",
        w.sql(),
        first + 1
    );
    let mut tickets = fetch_db(db, &page_sql, &w.args())
        .await?
        .iter()
        .map(|row| row.decode::<Ticket>("state"))
        .collect::<Result<Vec<_>, _>>()?;
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

/// The current state of those of `ids` the read model holds, in one query.
pub async fn find_tickets(db: &ReadDb, ids: &[Uuid]) -> Result<Vec<Ticket>, QueryError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT state FROM tickets WHERE {}",
        db.dialect().any("id", 1)
    );
    Ok(fetch_db(db, &sql, &[Arg::Ids(ids)])
        .await?
        .iter()
        .map(|row| row.decode::<Ticket>("state"))
        .collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::Role;

    /// A cursor is opaque but round-trips to the ticket's key; garbage is refused.
    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        let id = Uuid::new_v4();
        let key = URL_SAFE_NO_PAD.encode(format!("{}|{id}", sqlite_time(at)));
        assert_eq!(decode_cursor(&key).unwrap(), (at, id));
        assert!(matches!(
            decode_cursor("nope!"),
            Err(QueryError::InvalidCursor(_))
        ));
    }

    /// A requester's visibility is created-or-watching; an agent's adds queues
    /// and assignment; an admin's is everything.
    #[test]
    fn visibility_follows_the_domain_rule() {
        let teams = vec!["support".to_string()];
        let mut w = Where::new(Dialect::Sqlite);
        visibility(
            &Actor::new("r", vec![Role::Requester], teams.clone()),
            &mut w,
        );
        assert!(
            !w.sql().contains("queue") && !w.sql().contains("assigned_to"),
            "{}",
            w.sql()
        );
        let mut w = Where::new(Dialect::Postgres);
        visibility(&Actor::new("a", vec![Role::Agent], teams), &mut w);
        assert!(
            w.sql().contains("queue = ANY") && w.sql().contains("assigned_to"),
            "{}",
            w.sql()
        );
        let mut w = Where::new(Dialect::Sqlite);
        visibility(&Actor::new("x", vec![Role::Admin], vec![]), &mut w);
        assert_eq!(w.sql(), "");
    }
}
