-- Read models on an EventStoreDB log, whose positions are (commit, prepare)
-- pairs. Every `position` column keeps the commit part; `prepare_offset` is
-- prepare - commit, 0 for the SQL stores (one sequence number per event, so
-- every existing row is already right, and adding the column rewrites
-- nothing). Rows order by (position, prepare_offset), which is the log's
-- (commit, prepare) order. See migrations/README.md, "Log positions".

ALTER TABLE tickets            ADD COLUMN prepare_offset BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ticket_comments    ADD COLUMN prepare_offset BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ticket_attachments ADD COLUMN prepare_offset BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users              ADD COLUMN prepare_offset BIGINT NOT NULL DEFAULT 0;
ALTER TABLE queue_ticket_facts ADD COLUMN prepare_offset BIGINT NOT NULL DEFAULT 0;
ALTER TABLE queue_metrics      ADD COLUMN prepare_offset BIGINT NOT NULL DEFAULT 0;
ALTER TABLE notification_tickets ADD COLUMN prepare_offset BIGINT NOT NULL DEFAULT 0;
ALTER TABLE notification_users   ADD COLUMN prepare_offset BIGINT NOT NULL DEFAULT 0;

-- Events of one EventStoreDB transaction share a commit position, so the keys
-- that held `position` alone take the pair.
ALTER TABLE ticket_activity ADD COLUMN prepare_offset BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ticket_activity DROP CONSTRAINT ticket_activity_pkey,
    ADD CONSTRAINT ticket_activity_pkey PRIMARY KEY (position, prepare_offset);

ALTER TABLE notifications ADD COLUMN prepare_offset BIGINT NOT NULL DEFAULT 0;
ALTER TABLE notifications DROP CONSTRAINT notifications_recipient_position_key,
    ADD CONSTRAINT notifications_recipient_position_key
    UNIQUE (recipient, position, prepare_offset);
