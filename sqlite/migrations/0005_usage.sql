-- Usage control (docs/limits.md). Subjects are "key:<lineage>" or
-- "owner:<project>/<owner>"; slices are numbered by Unix milliseconds
-- divided by the limit's slice width; times are Unix microseconds.

-- One row per (subject, limit): the lock that serialises grants.
CREATE TABLE usage_limits (
	subject     TEXT    NOT NULL,
	limit_name  TEXT    NOT NULL,
	lim         INTEGER NOT NULL,
	duration_ms INTEGER NOT NULL,
	PRIMARY KEY (subject, limit_name)
) STRICT, WITHOUT ROWID;

-- Admissions granted to the replicas together, per slice of time.
CREATE TABLE usage_slices (
	subject    TEXT    NOT NULL,
	limit_name TEXT    NOT NULL,
	slice      INTEGER NOT NULL,
	granted    INTEGER NOT NULL,
	PRIMARY KEY (subject, limit_name, slice)
) STRICT, WITHOUT ROWID;

-- The balance not yet reserved (negative: a debt the leases pay off), and
-- its refill schedule.
CREATE TABLE usage_balances (
	subject         TEXT    PRIMARY KEY,
	remaining       INTEGER NOT NULL,
	refill_interval TEXT,
	refill_amount   INTEGER,
	refill_mode     TEXT,
	refill_day      INTEGER,
	refilled_at     INTEGER,
	next_refill_at  INTEGER
) STRICT;

CREATE INDEX usage_balances_next_refill ON usage_balances (next_refill_at) WHERE next_refill_at IS NOT NULL;

-- What each replica holds of a balance, unspent as of its last report.
CREATE TABLE usage_leases (
	subject    TEXT    NOT NULL REFERENCES usage_balances (subject) ON DELETE CASCADE,
	replica_id TEXT    NOT NULL,
	held       INTEGER NOT NULL,
	PRIMARY KEY (subject, replica_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX usage_leases_replica ON usage_leases (replica_id);

-- Replica heartbeats: the divisor of reservation sizes, and who is dead.
CREATE TABLE usage_replicas (
	id      TEXT    PRIMARY KEY,
	seen_at INTEGER NOT NULL
) STRICT;

-- Verdicts per key, hour and code.
CREATE TABLE usage_hours (
	key_id         TEXT    NOT NULL,
	hour           INTEGER NOT NULL,
	code           TEXT    NOT NULL,
	project_id     TEXT    NOT NULL,
	environment_id TEXT    NOT NULL,
	owner_id       TEXT    NOT NULL,
	count          INTEGER NOT NULL,
	credits_spent  INTEGER NOT NULL,
	PRIMARY KEY (key_id, hour, code)
) STRICT, WITHOUT ROWID;

CREATE INDEX usage_hours_project ON usage_hours (project_id, hour);
CREATE INDEX usage_hours_hour ON usage_hours (hour);
