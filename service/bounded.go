package service

import (
	"context"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// Freshness tells whether an in-memory index may have fallen too far behind
// the store: with several replicas, it learns of the others' changes
// through the database (postgres.Follower), and stops vouching for what it
// holds when it cannot confirm that it is in step.
type Freshness interface {
	// Stale reports whether the index may be further behind the store than
	// the bound allows. It is called on every lookup: it must be cheap.
	Stale() bool
}

// BoundedIndex is an Index whose answers from memory are trusted only
// while Freshness says they are recent enough. While stale, a lookup that
// finds a key that might still be usable answers EUNAVAILABLE (503), since
// another replica may have revoked, rotated or narrowed it meanwhile. A key
// that can never be usable again (apikey.Record.Final: revoked, or replaced
// and past its grace) is still answered, as is an unknown hash: keys are
// 256 random bits, so a hash nobody held cannot become a key. A stale
// replica therefore never says VALID, nor anything that depends on the
// key's current scopes, environment or expiry.
type BoundedIndex struct {
	Index
	Freshness Freshness
	// Now is the clock deciding whether a grace period is over; nil means
	// time.Now.
	Now func() time.Time
}

// errStale is the answer of a stale index about a key that may be usable.
var errStale = &apikey.Error{
	Code:       apikey.EUNAVAILABLE,
	Message:    "the key store is unavailable",
	RetryAfter: time.Second,
}

// HasImported passes the question on to the index it bounds.
func (b BoundedIndex) HasImported() bool { return hasImported(b.Index) }

// Lookup implements Index.
func (b BoundedIndex) Lookup(ctx context.Context, h apikey.Hash) (apikey.Record, bool, error) {
	return b.bound(b.Index.Lookup(ctx, h))
}

// LookupRoot implements Index: a root key's revocation reaches a replica
// the same way a key's does, so a stale replica vouches for neither.
func (b BoundedIndex) LookupRoot(ctx context.Context, h apikey.Hash) (apikey.Record, bool, error) {
	return b.bound(b.Index.LookupRoot(ctx, h))
}

// bound passes an answer of the index on unless the index is stale and the
// key found might still be usable.
func (b BoundedIndex) bound(rec apikey.Record, found bool, err error) (apikey.Record, bool, error) {
	if err != nil || !found || !b.Freshness.Stale() {
		return rec, found, err
	}
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	if rec.Final(now()) {
		return rec, found, nil
	}
	return apikey.Record{}, false, errStale
}
