-- Read models of queue metrics (projection `queue_metrics`) and notification
-- inboxes (projection `notifications`); see migrations/README.md.
--
-- SQLite types as in 0002: ids and times as text (times RFC 3339 UTC with nine
-- fraction digits), days as 'YYYY-MM-DD' text, JSON as text, booleans 0/1.

-- One row per ticket ever created: what the queue figures are summed from.
CREATE TABLE queue_ticket_facts (
    ticket_id              TEXT           PRIMARY KEY,
    queue                  TEXT        NOT NULL,
    status                 TEXT        NOT NULL,
    priority               TEXT        NOT NULL,
    assigned_to            TEXT,
    created_at             TEXT        NOT NULL,
    first_response_at      TEXT       ,
    resolved_at            TEXT       ,
    deleted                INTEGER     NOT NULL,
    response_elapsed_ms    INTEGER      NOT NULL,
    response_running_since TEXT       ,
    response_due_at        TEXT       ,
    breached               INTEGER     NOT NULL,
    state                  TEXT        NOT NULL,
    position               INTEGER      NOT NULL
);
CREATE INDEX queue_ticket_facts_created_idx  ON queue_ticket_facts (queue, created_at);
CREATE INDEX queue_ticket_facts_resolved_idx ON queue_ticket_facts (queue, resolved_at);
CREATE INDEX queue_ticket_facts_status_idx   ON queue_ticket_facts (queue, status, created_at);
CREATE INDEX queue_ticket_facts_due_idx      ON queue_ticket_facts (response_due_at)
    WHERE breached = 0 AND response_due_at IS NOT NULL;

CREATE TABLE queue_metrics (
    queue                  TEXT        PRIMARY KEY,
    open                   INTEGER      NOT NULL,
    in_progress            INTEGER      NOT NULL,
    on_hold                INTEGER      NOT NULL,
    resolved               INTEGER      NOT NULL,
    closed                 INTEGER      NOT NULL,
    unassigned             INTEGER      NOT NULL,
    priority_low           INTEGER      NOT NULL,
    priority_medium        INTEGER      NOT NULL,
    priority_high          INTEGER      NOT NULL,
    priority_critical      INTEGER      NOT NULL,
    first_responses        INTEGER      NOT NULL,
    first_response_ms      INTEGER      NOT NULL,
    resolutions            INTEGER      NOT NULL,
    resolution_ms          INTEGER      NOT NULL,
    sla_breaches           INTEGER      NOT NULL,
    oldest_open_created_at TEXT       ,
    day                    TEXT        NOT NULL,
    created_today          INTEGER      NOT NULL,
    resolved_today         INTEGER      NOT NULL,
    position               INTEGER      NOT NULL,
    updated_at             TEXT        NOT NULL
);

CREATE TABLE queue_metrics_daily (
    queue             TEXT   NOT NULL,
    day               TEXT   NOT NULL,
    created           INTEGER NOT NULL,
    first_responses   INTEGER NOT NULL,
    first_response_ms INTEGER NOT NULL,
    resolved          INTEGER NOT NULL,
    resolution_ms     INTEGER NOT NULL,
    sla_warnings      INTEGER NOT NULL,
    sla_breaches      INTEGER NOT NULL,
    PRIMARY KEY (queue, day)
);

CREATE TABLE notifications (
    id                  TEXT           PRIMARY KEY,
    recipient           TEXT        NOT NULL,
    event_id            TEXT           NOT NULL,
    position            INTEGER      NOT NULL,
    ticket_id           TEXT           NOT NULL,
    event_type          TEXT        NOT NULL,
    title               TEXT        NOT NULL,
    body                TEXT        NOT NULL,
    url                 TEXT        NOT NULL,
    tag                 TEXT        NOT NULL,
    require_interaction INTEGER     NOT NULL,
    created_at          TEXT        NOT NULL,
    CONSTRAINT notifications_recipient_position_key UNIQUE (recipient, position)
);

CREATE TABLE notification_counts (
    recipient TEXT   PRIMARY KEY,
    total     INTEGER NOT NULL
);

-- The projection's own view of tickets and users, as of each event.
CREATE TABLE notification_tickets (
    ticket_id TEXT      PRIMARY KEY,
    state     TEXT   NOT NULL,
    position  INTEGER NOT NULL
);

CREATE TABLE notification_users (
    id       TEXT   PRIMARY KEY,
    roles    TEXT   NOT NULL,
    teams    TEXT   NOT NULL,
    position INTEGER NOT NULL
);

-- Written by users marking notifications read, not by a projection: a
-- rebuild leaves these two tables alone (notification ids are deterministic).
CREATE TABLE notification_reads (
    recipient       TEXT        NOT NULL,
    notification_id TEXT           NOT NULL,
    read_at         TEXT        NOT NULL,
    PRIMARY KEY (recipient, notification_id)
);

CREATE TABLE notification_read_counts (
    recipient TEXT   PRIMARY KEY,
    read_count INTEGER NOT NULL
);
