-- The customer's user, team or service account a key belongs to (SPEC §9).
ALTER TABLE keys ADD COLUMN owner_id TEXT;

-- Listing a project's keys of one owner, newest first.
CREATE INDEX keys_project_owner_created ON keys (project_id, owner_id, created_at DESC, id DESC) WHERE owner_id IS NOT NULL;
