package apikey

import (
	"context"
	"time"
)

// Store keeps keys and their audit trail. Implementations: sqlite (the
// embedded default) and postgres (several replicas on one database). Both
// pass the conformance suite in package storetest.
//
// All times a store returns are UTC, truncated to microseconds, so that both
// backends round-trip them identically. Nil or empty Scopes and Details come
// back empty but non-nil. Details round-trip as JSON does: numbers come back
// as float64 and times as RFC 3339 strings.
type Store interface {
	// Key returns the key with the given ID, or ENOTFOUND.
	Key(ctx context.Context, id string) (*Key, error)
	// KeyByHash returns the key whose plaintext hashes to h, or ENOTFOUND.
	KeyByHash(ctx context.Context, h Hash) (*Key, error)
	// Keys lists a project's keys newest first (created_at, then ID,
	// descending), starting after f.After.
	Keys(ctx context.Context, f KeyFilter) ([]*Key, error)
	// ExpiringKeys lists keys that are usable at f.Now and expire no later
	// than f.Before, soonest first (expires_at, then ID, ascending).
	ExpiringKeys(ctx context.Context, f ExpiringFilter) ([]*Key, error)
	// AuditEvents lists a project's audit events newest first.
	AuditEvents(ctx context.Context, f AuditFilter) ([]*AuditEvent, error)
	// ScanKeys calls fn for every key, in ID order, reading in pages so that
	// memory stays flat however many keys there are. fn must not keep k.
	ScanKeys(ctx context.Context, fn func(k *Key) error) error

	// Update runs fn inside one write transaction and commits when fn returns
	// nil. A nil return from Update means the change is durable. fn may be
	// called again if the backend asks for a retry, so it must have no side
	// effects outside tx; it must not call Update itself (on SQLite that
	// would wait forever for the single writer).
	Update(ctx context.Context, fn func(tx Tx) error) error

	// TouchKeys records when keys were last used. Updates only move
	// last_used_at forward, so batches from several replicas may arrive in
	// any order. Unknown IDs are ignored. It does not change Version.
	TouchKeys(ctx context.Context, uses []KeyUse) error

	// Ping reports whether the store answers; EUNAVAILABLE when it does not.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}

// Tx is the write side of a store, valid inside Store.Update only.
type Tx interface {
	// KeyForUpdate returns the key with the given ID and locks it until the
	// transaction ends, so that concurrent changes to one key are serialised.
	// ENOTFOUND if there is none.
	KeyForUpdate(ctx context.Context, id string) (*Key, error)
	// InsertKey stores a new key and sets k.Version to 1. ECONFLICT if its ID
	// or hash exists already.
	InsertKey(ctx context.Context, k *Key) error
	// UpdateKey writes every mutable field of k — name, scopes, expires_at,
	// updated_at, revoked_at, replaced_by_key_id, grace_expires_at,
	// replaces_key_id, the rotation settings and the sealed webhook secret —
	// and increments k.Version. ID, project, environment, prefix, hash,
	// created_at and last_used_at never change.
	// ENOTFOUND if the key does not exist; ECONFLICT if its stored version is
	// not k.Version (the key changed since it was read).
	UpdateKey(ctx context.Context, k *Key) error
	// InsertAuditEvent appends an event to the audit log.
	InsertAuditEvent(ctx context.Context, e *AuditEvent) error
}

// Cursor marks a position in a listing: the sort time and ID of the last
// item returned.
type Cursor struct {
	Time time.Time
	ID   string
}

// KeyFilter selects keys for Store.Keys.
type KeyFilter struct {
	ProjectID     string    // required
	EnvironmentID string    // empty for every environment
	Status        Status    // empty for every status; decided at Now
	Now           time.Time // required when Status is set
	After         *Cursor
	Limit         int // > 0; callers cap it
}

// ExpiringFilter selects keys for Store.ExpiringKeys.
type ExpiringFilter struct {
	ProjectID     string // required
	EnvironmentID string
	Now           time.Time // required
	Before        time.Time // inclusive upper bound of expires_at
	After         *Cursor
	Limit         int // > 0; callers cap it
}

// AuditFilter selects events for Store.AuditEvents.
type AuditFilter struct {
	ProjectID     string // required
	EnvironmentID string
	KeyID         string
	Action        string
	After         *Cursor
	Limit         int
}

// KeyUse is one key's most recent use.
type KeyUse struct {
	KeyID string
	At    time.Time
}
