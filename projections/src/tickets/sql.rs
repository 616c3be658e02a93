//! The tickets projection's statements, each table's columns spelled once:
//! SQLite gets the head and tail of a multi-row `INSERT ... VALUES`
//! (`sqlite_values`), PostgreSQL the same insert fed by `UNNEST` of one array
//! per column, or a binary `COPY` for a bulk load (`postgres_unnest`). Both
//! take the rows in the column order given here.

use std::sync::LazyLock;

/// A table the projection inserts into: its columns in bind order, each
/// with its PostgreSQL type, and what a conflicting row does.
pub(super) struct Table {
    name: &'static str,
    /// `(column, PostgreSQL type)`. A `jsonb` column is bound as text and
    /// cast, as SQLite stores it.
    columns: &'static [(&'static str, &'static str)],
    conflict: Conflict,
}

/// What inserting a row whose key exists does.
pub(super) enum Conflict {
    /// Keeps the stored row (`ON CONFLICT DO NOTHING`; with no target, any
    /// unique index counts, so a bulk load may add the key afterwards).
    Keep,
    /// Keeps the stored row when one with this key exists.
    KeepKey(&'static str),
    /// Overwrites every other column when the new row holds a later log
    /// position than the stored one.
    NewerWins(&'static str),
}

/// The statements of one [`Table`], built once.
pub(super) struct Statements {
    /// `INSERT INTO t (columns) `, before SQLite's `VALUES (...), (...)`.
    pub values_head: String,
    /// The conflict clause, after the values.
    pub tail: String,
    /// The whole PostgreSQL insert, `$n` an array of column n's values.
    pub unnest: String,
    /// `COPY t (columns) FROM STDIN` in binary format.
    pub copy: String,
    /// Number of columns: values per row.
    pub width: usize,
}

impl Table {
    fn statements(&self) -> Statements {
        let names: Vec<&str> = self.columns.iter().map(|(name, _)| *name).collect();
        let list = names.join(", ");
        let tail = match self.conflict {
            Conflict::Keep => " ON CONFLICT DO NOTHING".to_string(),
            Conflict::KeepKey(key) => format!(" ON CONFLICT ({key}) DO NOTHING"),
            Conflict::NewerWins(key) => {
                let set: Vec<String> = names
                    .iter()
                    .filter(|name| **name != key)
                    .map(|name| format!("{name} = excluded.{name}"))
                    .collect();
                format!(
                    " ON CONFLICT ({key}) DO UPDATE SET {} WHERE ({table}.position, \
                     {table}.prepare_offset) < (excluded.position, excluded.prepare_offset)",
                    set.join(", "),
                    table = self.name
                )
            }
        };
        let arrays: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, kind))| match *kind {
                "jsonb" => format!("${}::text[]", i + 1),
                kind => format!("${}::{kind}[]", i + 1),
            })
            .collect();
        let select: Vec<String> = self
            .columns
            .iter()
            .map(|(name, kind)| match *kind {
                "jsonb" => format!("{name}::jsonb"),
                _ => name.to_string(),
            })
            .collect();
        Statements {
            values_head: format!("INSERT INTO {} ({list}) ", self.name),
            unnest: format!(
                "INSERT INTO {} ({list}) SELECT {} FROM UNNEST({}) AS r({list}){tail}",
                self.name,
                select.join(", "),
                arrays.join(", ")
            ),
            copy: format!("COPY {} ({list}) FROM STDIN (FORMAT binary)", self.name),
            tail,
            width: names.len(),
        }
    }
}

pub(super) static TICKETS: LazyLock<Statements> = LazyLock::new(|| {
    Table {
        name: "tickets",
        columns: &[
            ("id", "uuid"),
            ("reference", "text"),
            ("request", "text"),
            ("description", "text"),
            ("status", "text"),
            ("priority", "text"),
            ("queue", "text"),
            ("created_by", "text"),
            ("assigned_to", "text"),
            ("created_at", "timestamptz"),
            ("updated_at", "timestamptz"),
            ("first_response_at", "timestamptz"),
            ("resolved_at", "timestamptz"),
            ("deleted", "bool"),
            ("version", "int8"),
            ("state", "jsonb"),
            ("position", "int8"),
            ("prepare_offset", "int8"),
        ],
        conflict: Conflict::NewerWins("id"),
    }
    .statements()
});

/// No conflict target: the primary key is the table's only unique index,
/// and a rebuild loads the table before adding it (`insert_only_tables`).
pub(super) static ACTIVITY: LazyLock<Statements> = LazyLock::new(|| {
    Table {
        name: "ticket_activity",
        columns: &[
            ("position", "int8"),
            ("prepare_offset", "int8"),
            ("event_id", "uuid"),
            ("ticket_id", "uuid"),
            ("version", "int8"),
            ("event_type", "text"),
            ("actor", "text"),
            ("occurred_at", "timestamptz"),
            ("changes", "jsonb"),
        ],
        conflict: Conflict::Keep,
    }
    .statements()
});

pub(super) static COMMENTS: LazyLock<Statements> = LazyLock::new(|| {
    Table {
        name: "ticket_comments",
        columns: &[
            ("ticket_id", "uuid"),
            ("id", "uuid"),
            ("body", "text"),
            ("internal", "bool"),
            ("author", "text"),
            ("created_at", "timestamptz"),
            ("position", "int8"),
            ("prepare_offset", "int8"),
        ],
        conflict: Conflict::KeepKey("ticket_id, id"),
    }
    .statements()
});

pub(super) static ATTACHMENTS: LazyLock<Statements> = LazyLock::new(|| {
    Table {
        name: "ticket_attachments",
        columns: &[
            ("ticket_id", "uuid"),
            ("id", "uuid"),
            ("name", "text"),
            ("url", "text"),
            ("mime_type", "text"),
            ("size", "int8"),
            ("added_by", "text"),
            ("added_at", "timestamptz"),
            ("position", "int8"),
            ("prepare_offset", "int8"),
        ],
        conflict: Conflict::KeepKey("ticket_id, id"),
    }
    .statements()
});

/// The tables of a ticket's sets (watchers, tags, relations): a row per
/// `(ticket_id, key)` present in the set, `key` of the given PostgreSQL type.
pub(super) const SETS: [(&str, &str, &str); 3] = [
    ("ticket_watchers", "user_id", "text"),
    ("ticket_tags", "tag", "text"),
    ("ticket_relations", "related_id", "uuid"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The generated statements say what the hand-written ones said.
    #[test]
    fn statements_name_each_column_once_and_in_bind_order() {
        let t = &*TICKETS;
        assert!(t
            .values_head
            .starts_with("INSERT INTO tickets (id, reference, "));
        assert!(t
            .unnest
            .contains("state::jsonb, position, prepare_offset FROM UNNEST($1::uuid[]"));
        assert!(t
            .unnest
            .contains("$16::text[], $17::int8[], $18::int8[]) AS r(id, "));
        assert!(t
            .tail
            .contains("ON CONFLICT (id) DO UPDATE SET reference = excluded.reference"));
        assert!(!t.tail.contains("id = excluded.id,"), "{}", t.tail);
        assert!(t.tail.ends_with(
            "WHERE (tickets.position, tickets.prepare_offset) < (excluded.position, excluded.prepare_offset)"
        ));
        assert_eq!(t.width, 18);
        assert_eq!(ACTIVITY.tail, " ON CONFLICT DO NOTHING");
        assert!(ACTIVITY
            .copy
            .starts_with("COPY ticket_activity (position, prepare_offset, event_id"));
        assert_eq!(COMMENTS.tail, " ON CONFLICT (ticket_id, id) DO NOTHING");
        assert_eq!(ATTACHMENTS.width, 10);
    }
}
