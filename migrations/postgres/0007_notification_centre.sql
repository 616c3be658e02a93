-- The notification centre (issue 23): every notification says why it was
-- sent (`reason`), which tickets it covers (`ticket_ids`, a JSON array; the
-- first is `ticket_id`) and who caused it (`actor`, NULL for the SLA
-- process). The projection now also notifies queue agents and mentioned
-- users and applies preferences, so the notification read model is
-- rebuilt from the log: its derived rows and its checkpoint are cleared here
-- and the runner refills them on start. Notification ids are unchanged
-- (uuid v5 of event id and recipient), so the users' read flags, kept in
-- `notification_reads`, still apply.
ALTER TABLE notifications ADD COLUMN reason TEXT NOT NULL DEFAULT 'WATCHING';
ALTER TABLE notifications ADD COLUMN ticket_ids JSONB NOT NULL DEFAULT '[]';
ALTER TABLE notifications ADD COLUMN actor TEXT;
-- A user's notification preferences as of the projection's position (the
-- last `NotificationPreferencesSet` of their stream), `{}` for none.
ALTER TABLE notification_users ADD COLUMN preferences JSONB NOT NULL DEFAULT '{}';
DELETE FROM notifications;
DELETE FROM notification_counts;
DELETE FROM notification_tickets;
DELETE FROM notification_users;
DELETE FROM projection_checkpoints WHERE name = 'notifications';

-- Notifications their recipients deleted: written by the users, not by a
-- projection, and kept by a rebuild like `notification_reads`. A deleted
-- notification is also marked read, so unread counts stay
-- `total - read_count`.
CREATE TABLE notification_deletions (
    recipient       TEXT        NOT NULL,
    notification_id UUID        NOT NULL,
    deleted_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (recipient, notification_id)
);

-- Every change to an inbox, in commit order: ADDED (written by the
-- projection in its batch's transaction), READ, UNREAD and DELETED (written
-- by the user's action in its transaction), and ANNOUNCED (an announcement,
-- `recipient` NULL: its audience is decided by each reader). Writers take a
-- transaction-scoped advisory lock before inserting, so `seq` order is
-- commit order and a reader tailing by `seq` skips nothing. Every server
-- node tails this table to push `notificationsChanged`, `notificationAdded`
-- and `announcementPublished`; a client resumes after the `seq` it last saw.
-- Old rows are pruned (see projections::notifications::changes).
CREATE TABLE notification_changes (
    seq             BIGSERIAL   PRIMARY KEY,
    recipient       TEXT,
    kind            TEXT        NOT NULL,
    ids             JSONB       NOT NULL,
    unread_count    BIGINT      NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX notification_changes_recipient_idx ON notification_changes (recipient, seq);

-- Published announcements (projection `notifications`), newest last.
CREATE TABLE announcements (
    id             UUID        PRIMARY KEY,
    title          TEXT        NOT NULL,
    body           TEXT        NOT NULL,
    roles          JSONB       NOT NULL,
    teams          JSONB       NOT NULL,
    published_by   TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    position       BIGINT      NOT NULL,
    prepare_offset BIGINT      NOT NULL
);
CREATE INDEX announcements_position_idx ON announcements (position, prepare_offset);
