-- The same tables as the SQLite store, in PostgreSQL's types. Times are
-- timestamptz (microseconds, the precision the store contract promises),
-- NULL when unset. Empty strings are stored as NULL too, so that "unset" has
-- one representation. IDs sort bytewise (COLLATE "C"), as Go compares them,
-- whatever the database's collation.

CREATE TABLE keys (
	id                     text COLLATE "C" PRIMARY KEY,
	project_id             text NOT NULL,
	environment_id         text,
	name                   text NOT NULL,
	key_prefix             text NOT NULL,
	key_hash               bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
	scopes                 text[] NOT NULL,
	expires_at             timestamptz,
	last_used_at           timestamptz,
	created_at             timestamptz NOT NULL,
	updated_at             timestamptz NOT NULL,
	revoked_at             timestamptz,
	replaced_by_key_id     text,
	grace_expires_at       timestamptz,
	replaces_key_id        text,
	rotation_interval_days integer,
	next_rotation_at       timestamptz,
	rotation_webhook_url   text,
	webhook_secret_sealed  bytea,
	version                bigint NOT NULL
);

-- Listing a project's keys, newest first.
CREATE INDEX keys_project_created ON keys (project_id, created_at DESC, id DESC);
-- Keys of a project that expire, soonest first.
CREATE INDEX keys_project_expires ON keys (project_id, expires_at, id) WHERE expires_at IS NOT NULL;
-- Scheduled rotations that have come due.
CREATE INDEX keys_next_rotation ON keys (next_rotation_at) WHERE next_rotation_at IS NOT NULL;

CREATE TABLE audit_events (
	id             text COLLATE "C" PRIMARY KEY,
	project_id     text NOT NULL,
	environment_id text,
	key_id         text NOT NULL,
	action         text NOT NULL,
	actor_type     text NOT NULL,
	actor_key_id   text,
	details        jsonb NOT NULL,
	created_at     timestamptz NOT NULL
);

-- A project's audit log, newest first.
CREATE INDEX audit_events_project_created ON audit_events (project_id, created_at DESC, id DESC);
-- One key's history.
CREATE INDEX audit_events_key ON audit_events (key_id, created_at DESC, id DESC);
