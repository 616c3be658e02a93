-- The uniqueness of `notifications` as indexes of their own instead of
-- constraints inside CREATE TABLE. Same columns, same rows, same rules (the
-- id was already never NULL). Why: a rebuild loads the table before building
-- these two indexes, one sort each, instead of inserting every row into two
-- b-trees of random keys (about 15 s of a 1,000,000-event rebuild), and
-- SQLite can leave out only a separate index, never an inline constraint.
-- See `insert_only_tables` in projections/src/runner.rs.
CREATE TABLE notifications_0005 (
    id                  TEXT    NOT NULL,
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
    prepare_offset      INTEGER NOT NULL DEFAULT 0
);
INSERT INTO notifications_0005
    (id, recipient, event_id, position, ticket_id, event_type, title, body, url, tag,
     require_interaction, created_at, prepare_offset)
    SELECT id, recipient, event_id, position, ticket_id, event_type, title, body, url, tag,
     require_interaction, created_at, prepare_offset
    FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_0005 RENAME TO notifications;
CREATE UNIQUE INDEX notifications_pkey ON notifications (id);
CREATE UNIQUE INDEX notifications_recipient_position_key
    ON notifications (recipient, position, prepare_offset);
