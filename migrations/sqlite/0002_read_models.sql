-- Read models: tables derived from the event log by the `projections` crate.
-- They can be dropped and rebuilt from the log at any time; see
-- migrations/README.md for the meaning of every column (a stable interface).
--
-- SQLite has no native uuid, timestamp or json types: ids are canonical
-- lowercase uuid text, times are RFC 3339 UTC text with exactly nine fraction
-- digits (so text order is time order), JSON is text, booleans are 0/1.

CREATE TABLE projection_checkpoints (
    name       TEXT PRIMARY KEY,
    position   TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('running', 'failed')),
    error      TEXT
);

CREATE TABLE tickets (
    id                TEXT    PRIMARY KEY,
    reference         TEXT    NOT NULL,
    request           TEXT    NOT NULL,
    description       TEXT,
    status            TEXT    NOT NULL,
    priority          TEXT    NOT NULL,
    queue             TEXT    NOT NULL,
    created_by        TEXT    NOT NULL,
    assigned_to       TEXT,
    created_at        TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL,
    first_response_at TEXT,
    resolved_at       TEXT,
    deleted           INTEGER NOT NULL CHECK (deleted IN (0, 1)),
    version           INTEGER NOT NULL,
    state             TEXT    NOT NULL,
    position          INTEGER NOT NULL,
    CONSTRAINT tickets_reference_key UNIQUE (reference)
);
-- Keyset pagination is (created_at, id); each filter index ends with the same
-- pair so a filtered page is one index range scan.
CREATE INDEX tickets_created_idx     ON tickets (created_at, id);
CREATE INDEX tickets_status_idx      ON tickets (status, created_at, id);
CREATE INDEX tickets_priority_idx    ON tickets (priority, created_at, id);
CREATE INDEX tickets_queue_idx       ON tickets (queue, created_at, id);
CREATE INDEX tickets_assigned_to_idx ON tickets (assigned_to, created_at, id);
CREATE INDEX tickets_created_by_idx  ON tickets (created_by, created_at, id);
-- Text search (reference, request, description) is a lower(...) LIKE scan for now.

CREATE TABLE ticket_comments (
    ticket_id  TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    internal   INTEGER NOT NULL CHECK (internal IN (0, 1)),
    author     TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, id)
);

CREATE TABLE ticket_attachments (
    ticket_id TEXT    NOT NULL,
    id        TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    url       TEXT    NOT NULL,
    mime_type TEXT,
    size      INTEGER,
    added_by  TEXT    NOT NULL,
    added_at  TEXT    NOT NULL,
    position  INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, id)
);

CREATE TABLE ticket_watchers (
    ticket_id TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    PRIMARY KEY (ticket_id, user_id)
);
CREATE INDEX ticket_watchers_user_idx ON ticket_watchers (user_id);

CREATE TABLE ticket_tags (
    ticket_id TEXT NOT NULL,
    tag       TEXT NOT NULL,
    PRIMARY KEY (ticket_id, tag)
);
CREATE INDEX ticket_tags_tag_idx ON ticket_tags (tag);

CREATE TABLE ticket_relations (
    ticket_id  TEXT NOT NULL,
    related_id TEXT NOT NULL,
    PRIMARY KEY (ticket_id, related_id)
);

CREATE TABLE ticket_activity (
    position    INTEGER PRIMARY KEY,
    event_id    TEXT    NOT NULL,
    ticket_id   TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    event_type  TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    occurred_at TEXT    NOT NULL,
    changes     TEXT    NOT NULL
);
CREATE INDEX ticket_activity_ticket_idx ON ticket_activity (ticket_id, version);

CREATE TABLE users (
    id         TEXT    PRIMARY KEY,
    first_name TEXT,
    last_name  TEXT,
    email      TEXT,
    roles      TEXT    NOT NULL,
    teams      TEXT    NOT NULL,
    position   INTEGER NOT NULL
);
