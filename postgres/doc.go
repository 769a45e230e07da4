// Package postgres is the apikey.Store for several apikeyd replicas sharing
// one PostgreSQL database (APIKEYD_DATABASE_URL), through pgx v5 and its
// connection pool, pgxpool. It passes the same conformance suite as the
// sqlite store (package storetest).
//
// # Connections
//
// The database URL is a postgres:// URL or a key=value connection string,
// as libpq and pgx read them. Its pool_* parameters size the pool
// (pool_max_conns, default the greater of 4 and the number of CPUs;
// pool_max_conn_lifetime, pool_max_conn_idle_time, …). A connection idle
// for more than a second is pinged before use, so a pool that outlived a
// database restart hands out only live connections.
//
// An outage must fail requests fast, with EUNAVAILABLE (503 in the API),
// not hang them. Unless the URL sets them otherwise, every connection gets
//
//   - connect_timeout 5s;
//   - statement_timeout 10s, lock_timeout 5s;
//   - idle_in_transaction_session_timeout 30s, so that the row locks of a
//     replica that vanished mid-transaction do not outlive it for long;
//   - application_name apikeyd.
//
// Each store call is also bounded by its context and by 15 s, which covers
// waiting for a pooled connection and a server that stopped answering
// without closing the connection.
//
// Besides its pool, a replica holds one connection for its Follower
// (application_name apikeyd-listen, see below): at most pool_max_conns + 1
// in all. (Migrations at start use a connection of their own, closed
// before the pool opens.)
//
// # Transactions
//
// Store.Update runs in a READ COMMITTED transaction; Tx.KeyForUpdate reads
// with SELECT … FOR UPDATE, so concurrent changes to one key queue up and
// each sees the key as the one before left it, and Tx.UpdateKey checks the
// version it was given. When PostgreSQL rolls a transaction back with a
// serialization failure or a deadlock, Update runs fn again in a new one
// (fn may be called more than once, as the apikey.Store contract allows). A
// COMMIT without an answer is never retried: it may have committed.
//
// # Scheduled rotation across replicas
//
// Every replica runs the rotation scheduler; each due rotation is still
// claimed exactly once. Tx.DueKeysForUpdate and Tx.DueDeliveriesForUpdate
// read with SELECT … ORDER BY … LIMIT n FOR UPDATE SKIP LOCKED: rows that
// another replica's transaction holds are skipped rather than waited for,
// so the replicas split the due work between them. A row that another
// transaction changed and committed after the statement began is judged
// again in its committed version (READ COMMITTED's re-check), and the
// scheduler makes what it takes no longer match in the same transaction —
// a claimed key loses its next_rotation_at, a leased delivery gets a
// leased_until — so a second replica never takes it again. Behind the
// queries, a unique index over the key of pending deliveries
// (deliveries_pending_key) refuses a second rotation in flight for a key
// with ECONFLICT, whatever a query missed.
//
// A nil error from Update means PostgreSQL acknowledged the COMMIT, which
// with the default synchronous_commit=on means the change is on disk.
//
// # Coherence across replicas
//
// Each replica verifies from an in-memory index (keycache), which a
// Follower keeps in step with what every replica commits:
//
//   - The keys_changed trigger (migration 0003) fires on every insert of a
//     key and every update that changes its version. It stores the writing
//     transaction's ID in change_xid and calls pg_notify on the channel
//     apikeyd_keys_<hex of hashtext(schema)>, with the payload
//     "<key id> <version> <hex SHA-256 of the key>". PostgreSQL delivers
//     it to every listening session at commit, and drops it on rollback.
//   - The Follower holds one connection outside the pool (application_name
//     <name>-listen) that LISTENs on that channel. For each batch of
//     notifications it reads, on that connection, the keys whose version
//     the index does not hold yet, and applies them. Versions make
//     duplicate and out-of-order deliveries harmless.
//   - After every (re)connection and every ReconcileInterval (10 s) it
//     calls Store.KeyChanges from its last position, which catches what
//     committed while it was not listening. Positions are pg_snapshot
//     values: a key has changed since a position when that snapshot does
//     not see its change_xid, so transactions that were open when the
//     position was taken are caught once they commit, and no process's
//     clock is involved.
//   - Coherence is confirmed by a round trip on the listening connection
//     (the read of notified keys, or a ping at least every MaxStaleness/4)
//     whose answer brings no unapplied notification: PostgreSQL signals
//     listeners while a transaction commits, before acknowledging it, and
//     a listening session sends pending notifications before answering its
//     next query. So after such a round trip the index holds every change
//     acknowledged before the round trip began.
//   - Past MaxStaleness (APIKEYD_MAX_STALENESS, 2 s) without a
//     confirmation, Follower.Stale reports true: service.BoundedIndex then
//     answers EUNAVAILABLE (503) for every key that could still be usable,
//     and the server's readiness fails. A key revoked on one replica is
//     therefore accepted by another for at most MaxStaleness after the
//     revocation was acknowledged, whatever fails meanwhile.
//
// LISTEN needs a session of its own: a pooler in transaction mode between
// the replicas and PostgreSQL would lose notifications. Any role that may
// connect to the database may LISTEN, and so learn key IDs, versions and
// hashes (never keys).
//
// # Errors
//
// Driver errors are translated: no rows is ENOTFOUND, a unique violation
// ECONFLICT, and everything that means the database cannot answer now —
// refused or broken connections, a failed connection attempt, the server
// shutting down or starting up (57P01, 57P02, 57P03), too many connections,
// a standby that cannot write, a statement or lock timeout, a call that ran
// out of time, a closed pool — EUNAVAILABLE. Error texts carry no values:
// the key hash of a unique violation is in the server's detail, which is
// left out.
//
// # Schema
//
// Open applies the migrations in migrations/, ordered SQL files embedded in
// the binary, each in its own transaction together with its row in the
// schema_migrations table. Replicas that start at once take turns through a
// session advisory lock, keyed by the schema being migrated (the first of
// the URL's search_path that exists), so exactly one applies each migration
// and the others find it recorded. Times are timestamptz (microseconds);
// unset times and strings are NULL; IDs collate bytewise ("C") so that they
// sort as Go sorts them. Only the SHA-256 of a key is stored. Every key row
// carries a version, bumped by each change, which caches can compare, and
// the ID of the transaction that last changed it (change_xid, xid8,
// indexed), which KeyChanges compares with a snapshot.
package postgres
