-- Read models of queue metrics (projection `queue_metrics`) and notification
-- inboxes (projection `notifications`); see migrations/README.md.

-- One row per ticket ever created: what the queue figures are summed from.
CREATE TABLE queue_ticket_facts (
    ticket_id              UUID        PRIMARY KEY,
    queue                  TEXT        NOT NULL,
    status                 TEXT        NOT NULL,
    priority               TEXT        NOT NULL,
    assigned_to            TEXT,
    created_at             TIMESTAMPTZ NOT NULL,
    first_response_at      TIMESTAMPTZ,
    resolved_at            TIMESTAMPTZ,
    deleted                BOOLEAN     NOT NULL,
    response_elapsed_ms    BIGINT      NOT NULL,
    response_running_since TIMESTAMPTZ,
    response_due_at        TIMESTAMPTZ,
    breached               BOOLEAN     NOT NULL,
    state                  JSONB       NOT NULL,
    position               BIGINT      NOT NULL
);
CREATE INDEX queue_ticket_facts_created_idx  ON queue_ticket_facts (queue, created_at);
CREATE INDEX queue_ticket_facts_resolved_idx ON queue_ticket_facts (queue, resolved_at);
CREATE INDEX queue_ticket_facts_status_idx   ON queue_ticket_facts (queue, status, created_at);
CREATE INDEX queue_ticket_facts_due_idx      ON queue_ticket_facts (response_due_at)
    WHERE NOT breached AND response_due_at IS NOT NULL;

CREATE TABLE queue_metrics (
    queue                  TEXT        PRIMARY KEY,
    open                   BIGINT      NOT NULL,
    in_progress            BIGINT      NOT NULL,
    on_hold                BIGINT      NOT NULL,
    resolved               BIGINT      NOT NULL,
    closed                 BIGINT      NOT NULL,
    unassigned             BIGINT      NOT NULL,
    priority_low           BIGINT      NOT NULL,
    priority_medium        BIGINT      NOT NULL,
    priority_high          BIGINT      NOT NULL,
    priority_critical      BIGINT      NOT NULL,
    first_responses        BIGINT      NOT NULL,
    first_response_ms      BIGINT      NOT NULL,
    resolutions            BIGINT      NOT NULL,
    resolution_ms          BIGINT      NOT NULL,
    sla_breaches           BIGINT      NOT NULL,
    oldest_open_created_at TIMESTAMPTZ,
    day                    DATE        NOT NULL,
    created_today          BIGINT      NOT NULL,
    resolved_today         BIGINT      NOT NULL,
    position               BIGINT      NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL
);

CREATE TABLE queue_metrics_daily (
    queue             TEXT   NOT NULL,
    day               DATE   NOT NULL,
    created           BIGINT NOT NULL,
    first_responses   BIGINT NOT NULL,
    first_response_ms BIGINT NOT NULL,
    resolved          BIGINT NOT NULL,
    resolution_ms     BIGINT NOT NULL,
    sla_warnings      BIGINT NOT NULL,
    sla_breaches      BIGINT NOT NULL,
    PRIMARY KEY (queue, day)
);

CREATE TABLE notifications (
    id                  UUID        PRIMARY KEY,
    recipient           TEXT        NOT NULL,
    event_id            UUID        NOT NULL,
    position            BIGINT      NOT NULL,
    ticket_id           UUID        NOT NULL,
    event_type          TEXT        NOT NULL,
    title               TEXT        NOT NULL,
    body                TEXT        NOT NULL,
    url                 TEXT        NOT NULL,
    tag                 TEXT        NOT NULL,
    require_interaction BOOLEAN     NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    CONSTRAINT notifications_recipient_position_key UNIQUE (recipient, position)
);

CREATE TABLE notification_counts (
    recipient TEXT   PRIMARY KEY,
    total     BIGINT NOT NULL
);

-- The projection's own view of tickets and users, as of each event.
CREATE TABLE notification_tickets (
    ticket_id UUID   PRIMARY KEY,
    state     JSONB  NOT NULL,
    position  BIGINT NOT NULL
);

CREATE TABLE notification_users (
    id       TEXT   PRIMARY KEY,
    roles    JSONB  NOT NULL,
    teams    JSONB  NOT NULL,
    position BIGINT NOT NULL
);

-- Written by users marking notifications read, not by a projection: a
-- rebuild leaves these two tables alone (notification ids are deterministic).
CREATE TABLE notification_reads (
    recipient       TEXT        NOT NULL,
    notification_id UUID        NOT NULL,
    read_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (recipient, notification_id)
);

CREATE TABLE notification_read_counts (
    recipient TEXT   PRIMARY KEY,
    read_count BIGINT NOT NULL
);
