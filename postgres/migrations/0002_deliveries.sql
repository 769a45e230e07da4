-- The outbox of scheduled rotations, as in the SQLite store: one row per
-- due rotation, its ID the webhook-id of every attempt. payload_sealed holds
-- the replacement's plaintext, sealed with the master key, and is NULL once
-- the delivery has finished. Replicas claim rows with FOR UPDATE SKIP LOCKED.

CREATE TABLE deliveries (
	id                 text COLLATE "C" PRIMARY KEY,
	key_id             text COLLATE "C" NOT NULL REFERENCES keys (id),
	replacement_key_id text COLLATE "C" NOT NULL REFERENCES keys (id),
	state              text NOT NULL CHECK (state IN ('pending', 'delivered', 'abandoned')),
	payload_sealed     bytea,
	attempts           integer NOT NULL,
	next_attempt_at    timestamptz NOT NULL,
	leased_until       timestamptz,
	last_error         text,
	created_at         timestamptz NOT NULL,
	updated_at         timestamptz NOT NULL
);

-- A key has at most one rotation in flight, whatever the claim query does:
-- a second pending delivery for a key is a unique violation.
CREATE UNIQUE INDEX deliveries_pending_key ON deliveries (key_id) WHERE state = 'pending';
-- Pending deliveries, soonest first.
CREATE INDEX deliveries_pending_next ON deliveries (next_attempt_at, id) WHERE state = 'pending';
