-- Root keys (SPEC §8): the platform's own credentials, beside the keys of
-- its customers. permissions is a JSON array; project_ids a JSON array, or
-- NULL for every project. created_by is the actor that created the key.
-- change_seq orders changes as for keys, from the same sequence: the next
-- number is one more than any in either table, so one position covers both
-- (KeyChanges and RootKeyChanges).

CREATE TABLE root_keys (
	id                 TEXT PRIMARY KEY,
	name               TEXT NOT NULL,
	key_prefix         TEXT NOT NULL,
	key_hash           BLOB NOT NULL UNIQUE CHECK (length(key_hash) = 32),
	permissions        TEXT NOT NULL, -- JSON array of strings
	project_ids        TEXT,          -- JSON array of strings; NULL = every project
	expires_at         INTEGER,
	last_used_at       INTEGER,
	created_at         INTEGER NOT NULL,
	updated_at         INTEGER NOT NULL,
	revoked_at         INTEGER,
	replaced_by_key_id TEXT,
	grace_expires_at   INTEGER,
	replaces_key_id    TEXT,
	created_by_type    TEXT NOT NULL,
	created_by_key_id  TEXT,
	created_by_name    TEXT,
	version            INTEGER NOT NULL,
	change_seq         INTEGER NOT NULL
) STRICT;

-- Listing root keys, newest first.
CREATE INDEX root_keys_created ON root_keys (created_at DESC, id DESC);
CREATE INDEX root_keys_change_seq ON root_keys (change_seq);

-- Changes to root keys belong to no project, so project_id may be NULL
-- now; and every actor has a name (the acting key's, when it acted).
-- SQLite cannot drop a NOT NULL, so the table is rebuilt.
CREATE TABLE audit_events_new (
	id             TEXT PRIMARY KEY,
	project_id     TEXT,
	environment_id TEXT,
	key_id         TEXT NOT NULL,
	action         TEXT NOT NULL,
	actor_type     TEXT NOT NULL,
	actor_key_id   TEXT,
	actor_name     TEXT,
	details        TEXT NOT NULL, -- JSON object
	created_at     INTEGER NOT NULL
) STRICT;

INSERT INTO audit_events_new (id, project_id, environment_id, key_id, action, actor_type, actor_key_id, details, created_at)
	SELECT id, project_id, environment_id, key_id, action, actor_type, actor_key_id, details, created_at FROM audit_events;
DROP TABLE audit_events;
ALTER TABLE audit_events_new RENAME TO audit_events;

-- A project's audit log, newest first; with project_id IS NULL, the root
-- keys' log.
CREATE INDEX audit_events_project_created ON audit_events (project_id, created_at DESC, id DESC);
-- One key's history.
CREATE INDEX audit_events_key ON audit_events (key_id, created_at DESC, id DESC);
