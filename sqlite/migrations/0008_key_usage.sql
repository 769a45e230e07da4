-- Usage control on keys (docs/limits.md). lineage_id names the allowance a
-- key draws on (usage subject "key:<lineage_id>"): a new key's own ID, a
-- replacement's predecessor's. ratelimits is a JSON array, NULL for none;
-- has_credits says the key has a balance in usage_balances.

ALTER TABLE keys ADD COLUMN lineage_id TEXT NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN ratelimits TEXT;
ALTER TABLE keys ADD COLUMN has_credits INTEGER NOT NULL DEFAULT 0;

-- Keys from before this migration start a lineage of their own.
UPDATE keys SET lineage_id = id WHERE lineage_id = '';

-- Owners' shared allowances (usage subject "owner:<project_id>/<owner_id>";
-- the balance is in usage_balances). meta is a compact JSON object.
CREATE TABLE usage_owners (
	project_id  TEXT    NOT NULL,
	owner_id    TEXT    NOT NULL,
	ratelimits  TEXT,
	has_credits INTEGER NOT NULL,
	meta        TEXT,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	PRIMARY KEY (project_id, owner_id)
) STRICT, WITHOUT ROWID;
