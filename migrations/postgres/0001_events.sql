-- The event log: the only source of truth. Rows are only ever inserted.
--
-- `position` comes from the sequence, but only while the appending transaction
-- holds the store's advisory lock (see store/src/postgres.rs): that is what makes
-- commit order equal position order. Holes left by rolled-back appends stay holes.
CREATE TABLE events (
    position       BIGSERIAL   PRIMARY KEY,
    id             UUID        NOT NULL,
    stream_id      TEXT        NOT NULL,
    version        BIGINT      NOT NULL CHECK (version >= 0),
    event_type     TEXT        NOT NULL,
    schema_version INTEGER     NOT NULL,
    data           JSONB       NOT NULL,
    metadata       JSONB       NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Named so the store can tell which uniqueness an append broke.
    CONSTRAINT events_id_unique UNIQUE (id),
    CONSTRAINT events_stream_version_unique UNIQUE (stream_id, version)
);
