-- Tamper evidence: each event's hash chains it to the previous event of its
-- stream (SHA-256, see migrations/README.md, "Event hashes"). The hash covers a
-- canonical JSON encoding that SQL cannot reproduce byte for byte, so, as on
-- SQLite, this adds the column empty and the store fills every empty hash at
-- open, in Rust, in one transaction under the append lock (store/src/chain.rs).
-- A constant default rewrites nothing on PostgreSQL 11 and later.
ALTER TABLE events ADD COLUMN hash TEXT NOT NULL DEFAULT '';
-- Only the rows still to fill: empty once the store has opened, so the check
-- at every open is one look into an empty index.
CREATE INDEX events_missing_hash ON events (position) WHERE hash = '';
