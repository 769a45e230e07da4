-- change_seq orders the changes to keys for KeyChanges: every insert and
-- every update that bumps a key's version takes the next number, inside
-- its write transaction. SQLite has one writer, so the numbers follow
-- commit order. Keys written before this migration keep 0, older than any
-- position.

ALTER TABLE keys ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;

CREATE INDEX keys_change_seq ON keys (change_seq);
