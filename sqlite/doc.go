// Package sqlite is the embedded apikey.Store, the default backend of
// apikeyd: one SQLite file under the data directory, through the cgo-free
// driver modernc.org/sqlite. It suits a single apikeyd process; several
// replicas need the postgres store. Each process keeps its own key index
// and learns only of its own changes, so a second process on the same file
// would go on verifying keys the first revoked: LockDir, which apikeyd
// serve and bench/seed take on the data directory, makes it refuse to
// start instead.
//
// # Connections
//
// The database runs in WAL mode, where readers never block the writer nor
// the writer the readers. The Store holds two pools on the same file:
//
//   - a writer of exactly one connection, whose transactions begin with
//     BEGIN IMMEDIATE. They take SQLite's write lock up front, so writes are
//     serialised in Go's connection pool instead of failing halfway with
//     SQLITE_BUSY, and a key read inside Store.Update is locked already;
//   - a pool of a few query_only connections for every read outside
//     Store.Update.
//
// Every connection waits up to five seconds for a lock held by another
// process (busy_timeout) before the store reports EUNAVAILABLE.
//
// # Durability
//
// synchronous=FULL makes SQLite sync the write-ahead log on every commit: a
// nil error from Store.Update or Store.TouchKeys means the change survives a
// crash or power loss.
//
// # Schema
//
// Open applies the migrations in migrations/, ordered files embedded in the
// binary. Each runs in its own transaction together with its row in the
// schema_migrations table, so a failed migration leaves the schema as it
// was and a restart picks up where it stopped. Times are stored as INTEGER
// Unix microseconds, the precision the store contract promises; unset times
// and strings are NULL. Only the SHA-256 of a key is stored.
package sqlite
