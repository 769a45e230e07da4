-- Usage control on keys (docs/limits.md). lineage_id names the allowance a
-- key draws on (usage subject "key:<lineage_id>"): a new key's own ID, a
-- replacement's predecessor's. ratelimits is a JSON array, NULL for none;
-- has_credits says the key has a balance in usage_balances.

ALTER TABLE keys ADD COLUMN lineage_id text NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN ratelimits jsonb;
ALTER TABLE keys ADD COLUMN has_credits boolean NOT NULL DEFAULT false;

-- Keys from before this migration start a lineage of their own.
UPDATE keys SET lineage_id = id WHERE lineage_id = '';

-- Owners' shared allowances (usage subject "owner:<project_id>/<owner_id>";
-- the balance is in usage_balances). meta is a JSON object.
CREATE TABLE usage_owners (
	project_id  text        NOT NULL,
	owner_id    text        NOT NULL,
	ratelimits  jsonb,
	has_credits boolean     NOT NULL,
	meta        text,
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL,
	PRIMARY KEY (project_id, owner_id)
);
