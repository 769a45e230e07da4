-- Replicas keep their verification index in step with each other's
-- changes. Every insert of a key, and every update that bumps its version,
--
--   - records the writing transaction in change_xid, so that KeyChanges can
--     list the keys whose change committed after a snapshot (a position),
--     in commit order rather than by any clock: a key is changed since a
--     snapshot when that snapshot does not see change_xid;
--   - sends a notification on the channel of the table's schema, which
--     PostgreSQL delivers to every listening replica when the transaction
--     commits, and never if it rolls back. The payload is the key's ID, its
--     new version and the hex of its hash, so that a replica holding that
--     version already need not read the key.
--
-- Updates that leave the version alone (last_used_at) do neither. The
-- channel name is derived from the schema, so that deployments in different
-- schemas of one database do not hear each other; hashtext keeps it short
-- whatever the schema's name. It is computed the same way by the listener.

-- The default covers the keys written before this migration, and writes
-- made while triggers are off (session_replication_role = replica).
ALTER TABLE keys ADD COLUMN change_xid xid8 NOT NULL DEFAULT pg_current_xact_id();

CREATE INDEX keys_change_xid ON keys (change_xid);

CREATE FUNCTION apikeyd_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'UPDATE' THEN
		IF NEW.version IS NOT DISTINCT FROM OLD.version THEN
			RETURN NEW;
		END IF;
	END IF;
	NEW.change_xid := pg_current_xact_id();
	PERFORM pg_notify('apikeyd_keys_' || to_hex(hashtext(TG_TABLE_SCHEMA::text)),
		NEW.id || ' ' || NEW.version || ' ' || encode(NEW.key_hash, 'hex'));
	RETURN NEW;
END
$$;

CREATE TRIGGER keys_changed BEFORE INSERT OR UPDATE ON keys
	FOR EACH ROW EXECUTE FUNCTION apikeyd_key_changed();
