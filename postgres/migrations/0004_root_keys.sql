-- Root keys (SPEC §8): the platform's own credentials, beside the keys of
-- its customers. project_ids is NULL for every project. created_by is the
-- actor that created the key.
--
-- Replicas learn of changes to root keys exactly as of changes to keys
-- (0003): the same trigger function records the writing transaction in
-- change_xid and notifies the same channel with "<id> <version> <hash>";
-- the ID's kind (root_…) tells the listener which table to read. Positions
-- are snapshots, so one position covers both tables.

CREATE TABLE root_keys (
	id                 text COLLATE "C" PRIMARY KEY,
	name               text NOT NULL,
	key_prefix         text NOT NULL,
	key_hash           bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
	permissions        text[] NOT NULL,
	project_ids        text[],
	expires_at         timestamptz,
	last_used_at       timestamptz,
	created_at         timestamptz NOT NULL,
	updated_at         timestamptz NOT NULL,
	revoked_at         timestamptz,
	replaced_by_key_id text,
	grace_expires_at   timestamptz,
	replaces_key_id    text,
	created_by_type    text NOT NULL,
	created_by_key_id  text,
	created_by_name    text,
	version            bigint NOT NULL,
	change_xid         xid8 NOT NULL DEFAULT pg_current_xact_id()
);

-- Listing root keys, newest first.
CREATE INDEX root_keys_created ON root_keys (created_at DESC, id DESC);
CREATE INDEX root_keys_change_xid ON root_keys (change_xid);

CREATE TRIGGER root_keys_changed BEFORE INSERT OR UPDATE ON root_keys
	FOR EACH ROW EXECUTE FUNCTION apikeyd_key_changed();

-- Changes to root keys belong to no project; every actor has a name (the
-- acting key's, when it acted).
ALTER TABLE audit_events ALTER COLUMN project_id DROP NOT NULL;
ALTER TABLE audit_events ADD COLUMN actor_name text;
