-- The event log: the only source of truth. Rows are only ever inserted.
--
-- `position` is the global order. AUTOINCREMENT (rather than a plain rowid) so
-- a position is never handed out twice, even after the last row is rolled back
-- or deleted by hand: a subscriber's checkpoint must never point at a reused value.
-- Ids, payloads and times are stored as text so the file stays readable with the
-- sqlite3 shell; the store validates them on the way out (a bad row is `Corrupt`).
CREATE TABLE events (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT    NOT NULL,
    stream_id      TEXT    NOT NULL,
    version        INTEGER NOT NULL CHECK (version >= 0),
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    data           TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    recorded_at    TEXT    NOT NULL,
    -- Named so the store can tell which uniqueness an append broke.
    CONSTRAINT events_id_unique UNIQUE (id),
    CONSTRAINT events_stream_version_unique UNIQUE (stream_id, version)
);
