-- Times are Unix microseconds (INTEGER), NULL when unset. Empty strings are
-- stored as NULL too, so that "unset" has one representation.

CREATE TABLE keys (
	id                     TEXT PRIMARY KEY,
	project_id             TEXT NOT NULL,
	environment_id         TEXT,
	name                   TEXT NOT NULL,
	key_prefix             TEXT NOT NULL,
	key_hash               BLOB NOT NULL UNIQUE CHECK (length(key_hash) = 32),
	scopes                 TEXT NOT NULL, -- JSON array of strings
	expires_at             INTEGER,
	last_used_at           INTEGER,
	created_at             INTEGER NOT NULL,
	updated_at             INTEGER NOT NULL,
	revoked_at             INTEGER,
	replaced_by_key_id     TEXT,
	grace_expires_at       INTEGER,
	replaces_key_id        TEXT,
	rotation_interval_days INTEGER,
	next_rotation_at       INTEGER,
	rotation_webhook_url   TEXT,
	webhook_secret_sealed  BLOB,
	version                INTEGER NOT NULL
) STRICT;

-- Listing a project's keys, newest first.
CREATE INDEX keys_project_created ON keys (project_id, created_at DESC, id DESC);
-- Keys of a project that expire, soonest first.
CREATE INDEX keys_project_expires ON keys (project_id, expires_at, id) WHERE expires_at IS NOT NULL;
-- Scheduled rotations that have come due.
CREATE INDEX keys_next_rotation ON keys (next_rotation_at) WHERE next_rotation_at IS NOT NULL;

CREATE TABLE audit_events (
	id             TEXT PRIMARY KEY,
	project_id     TEXT NOT NULL,
	environment_id TEXT,
	key_id         TEXT NOT NULL,
	action         TEXT NOT NULL,
	actor_type     TEXT NOT NULL,
	actor_key_id   TEXT,
	details        TEXT NOT NULL, -- JSON object
	created_at     INTEGER NOT NULL
) STRICT;

-- A project's audit log, newest first.
CREATE INDEX audit_events_project_created ON audit_events (project_id, created_at DESC, id DESC);
-- One key's history.
CREATE INDEX audit_events_key ON audit_events (key_id, created_at DESC, id DESC);
