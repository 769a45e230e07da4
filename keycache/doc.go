// Package keycache is the in-memory index that answers verifications and
// bearer authentication without a store round trip: a service.Index from
// key hash to a compact, immutable record of what a verdict needs.
//
// # Coherence
//
// Every record carries the Version of the key it was made from. A record is
// only ever replaced by one with a higher Version, whoever brings it: the
// service's Apply after a committed change, the load at start, a fill
// after a miss, or, with replicas, the follower of the other replicas'
// changes (postgres.Follower). So a fill that read the store before a revoke committed can
// never overwrite the revoked record, and records are never removed — a
// revoked or replaced key stays as a record that says so. Expiry and grace
// are not decided here: the caller checks the record against its clock on
// every hit (apikey.Record.Check and Usable).
//
// A hash that is not in the index goes to the store once: the answer is
// kept, as a record or, for an unknown hash, in a bounded negative cache
// that Apply of a key with that hash clears. Concurrent misses of one hash
// share one store read. Store errors are not cached; they surface as
// EUNAVAILABLE.
//
// Root keys (apikey.RootKey) are held beside the keys, under the same
// rules, through LookupRoot, ApplyRoot and RootVersion: they are few, so
// they sit in an ordinary map rather than in slots, and a hash asked as a
// key never finds a root key nor the other way round.
//
// # Memory
//
// With a million keys the index must stay small and cost the garbage
// collector nothing. Records are fixed-size, pointer-free slots in chunks
// of memory taken from the operating system (outside the Go heap, so they
// neither count towards the heap goal nor get scanned); their strings live
// in an append-only byte arena of the same kind and are handed out with
// unsafe.String. Projects, environments and scope sets are interned. Each
// of 256 shards finds slots through an open-addressing table of uint64
// entries (a tag of the hash and a slot number).
// Because nothing is ever removed, no memory is ever freed either: an update
// that changes a key's name appends the new name, so the arena grows with
// renames (rare) but not with verifications.
package keycache
