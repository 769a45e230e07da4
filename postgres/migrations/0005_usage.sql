-- Usage control (docs/limits.md). Subjects are "key:<lineage>" or
-- "owner:<project>/<owner>"; slices are numbered by Unix milliseconds
-- divided by the limit's slice width.

-- One row per (subject, limit): the row lock that serialises grants.
CREATE TABLE usage_limits (
	subject     text   NOT NULL,
	limit_name  text   NOT NULL,
	lim         bigint NOT NULL,
	duration_ms bigint NOT NULL,
	PRIMARY KEY (subject, limit_name)
);

-- Admissions granted to the replicas together, per slice of time.
CREATE TABLE usage_slices (
	subject    text   NOT NULL,
	limit_name text   NOT NULL,
	slice      bigint NOT NULL,
	granted    bigint NOT NULL,
	PRIMARY KEY (subject, limit_name, slice)
);

-- The balance not yet reserved (negative: a debt the leases pay off), and
-- its refill schedule.
CREATE TABLE usage_balances (
	subject         text   PRIMARY KEY,
	remaining       bigint NOT NULL,
	refill_interval text,
	refill_amount   bigint,
	refill_mode     text,
	refill_day      integer,
	refilled_at     timestamptz,
	next_refill_at  timestamptz
);

CREATE INDEX usage_balances_next_refill ON usage_balances (next_refill_at) WHERE next_refill_at IS NOT NULL;

-- What each replica holds of a balance, unspent as of its last report.
CREATE TABLE usage_leases (
	subject    text   NOT NULL REFERENCES usage_balances (subject) ON DELETE CASCADE,
	replica_id text   NOT NULL,
	held       bigint NOT NULL,
	PRIMARY KEY (subject, replica_id)
);

CREATE INDEX usage_leases_replica ON usage_leases (replica_id);

-- Replica heartbeats: the divisor of reservation sizes, and who is dead.
CREATE TABLE usage_replicas (
	id      text        PRIMARY KEY,
	seen_at timestamptz NOT NULL
);

-- Verdicts per key, hour and code.
CREATE TABLE usage_hours (
	key_id         text        NOT NULL,
	hour           timestamptz NOT NULL,
	code           text        NOT NULL,
	project_id     text        NOT NULL,
	environment_id text        NOT NULL,
	owner_id       text        NOT NULL,
	count          bigint      NOT NULL,
	credits_spent  bigint      NOT NULL,
	PRIMARY KEY (key_id, hour, code)
);

CREATE INDEX usage_hours_project ON usage_hours (project_id, hour);
CREATE INDEX usage_hours_hour ON usage_hours (hour);
