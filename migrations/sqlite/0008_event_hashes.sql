-- Tamper evidence: each event's hash chains it to the previous event of its
-- stream (SHA-256, see migrations/README.md, "Event hashes"). SQLite has no
-- SHA-256 in SQL, so this adds the column empty and the store fills every
-- empty hash at open, in Rust, in one transaction (store/src/chain.rs): a log
-- written before this migration gets its chains the first time it is opened.
ALTER TABLE events ADD COLUMN hash TEXT NOT NULL DEFAULT '';
-- Only the rows still to fill: empty once the store has opened, so the check
-- at every open is one look into an empty index.
CREATE INDEX events_missing_hash ON events (position) WHERE hash = '';
