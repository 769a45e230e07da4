-- The outbox of scheduled rotations: one row per due rotation, its ID the
-- webhook-id of every attempt. payload_sealed holds the replacement's
-- plaintext, sealed with the master key, and is NULL once the delivery has
-- finished.

CREATE TABLE deliveries (
	id                 TEXT PRIMARY KEY,
	key_id             TEXT NOT NULL REFERENCES keys (id),
	replacement_key_id TEXT NOT NULL REFERENCES keys (id),
	state              TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'abandoned')),
	payload_sealed     BLOB,
	attempts           INTEGER NOT NULL,
	next_attempt_at    INTEGER NOT NULL,
	leased_until       INTEGER,
	last_error         TEXT,
	created_at         INTEGER NOT NULL,
	updated_at         INTEGER NOT NULL
) STRICT;

-- A key has at most one rotation in flight.
CREATE UNIQUE INDEX deliveries_pending_key ON deliveries (key_id) WHERE state = 'pending';
-- Pending deliveries, soonest first.
CREATE INDEX deliveries_pending_next ON deliveries (next_attempt_at, id) WHERE state = 'pending';
