-- Read models on an EventStoreDB log, whose positions are (commit, prepare)
-- pairs. Every `position` column keeps the commit part; `prepare_offset` is
-- prepare - commit, 0 for the SQL stores (one sequence number per event, so
-- every existing row is already right). Rows order by
-- (position, prepare_offset), which is the log's (commit, prepare) order.
-- See migrations/README.md, "Log positions".

ALTER TABLE tickets            ADD COLUMN prepare_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ticket_comments    ADD COLUMN prepare_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ticket_attachments ADD COLUMN prepare_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users              ADD COLUMN prepare_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queue_ticket_facts ADD COLUMN prepare_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queue_metrics      ADD COLUMN prepare_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notification_tickets ADD COLUMN prepare_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notification_users   ADD COLUMN prepare_offset INTEGER NOT NULL DEFAULT 0;

-- Events of one EventStoreDB transaction share a commit position, so the keys
-- that held `position` alone take the pair. SQLite cannot change a key in
-- place: the two tables are copied.
CREATE TABLE ticket_activity_0004 (
    position       INTEGER NOT NULL,
    event_id       TEXT    NOT NULL,
    ticket_id      TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    event_type     TEXT    NOT NULL,
    actor          TEXT    NOT NULL,
    occurred_at    TEXT    NOT NULL,
    changes        TEXT    NOT NULL,
    prepare_offset INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (position, prepare_offset)
);
INSERT INTO ticket_activity_0004
    (position, event_id, ticket_id, version, event_type, actor, occurred_at, changes)
    SELECT position, event_id, ticket_id, version, event_type, actor, occurred_at, changes
    FROM ticket_activity;
DROP TABLE ticket_activity;
ALTER TABLE ticket_activity_0004 RENAME TO ticket_activity;
CREATE INDEX ticket_activity_ticket_idx ON ticket_activity (ticket_id, version);

CREATE TABLE notifications_0004 (
    id                  TEXT    PRIMARY KEY,
    recipient           TEXT    NOT NULL,
    event_id            TEXT    NOT NULL,
    position            INTEGER NOT NULL,
    ticket_id           TEXT    NOT NULL,
    event_type          TEXT    NOT NULL,
    title               TEXT    NOT NULL,
    body                TEXT    NOT NULL,
    url                 TEXT    NOT NULL,
    tag                 TEXT    NOT NULL,
    require_interaction INTEGER NOT NULL,
    created_at          TEXT    NOT NULL,
    prepare_offset      INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT notifications_recipient_position_key UNIQUE (recipient, position, prepare_offset)
);
INSERT INTO notifications_0004
    (id, recipient, event_id, position, ticket_id, event_type, title, body, url, tag,
     require_interaction, created_at)
    SELECT id, recipient, event_id, position, ticket_id, event_type, title, body, url, tag,
     require_interaction, created_at
    FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_0004 RENAME TO notifications;
