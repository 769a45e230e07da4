package keycache

import (
	"context"

	"github.com/apikeyd/apikeyd/apikey"
)

// RootStore is the part of apikey.Store the index reads for root keys.
type RootStore interface {
	// RootKeyByHash returns the root key stored under h, or ENOTFOUND.
	RootKeyByHash(ctx context.Context, h apikey.Hash) (*apikey.RootKey, error)
	// ScanRootKeys calls fn for every root key.
	ScanRootKeys(ctx context.Context, fn func(rk *apikey.RootKey) error) error
}

// roots is the index of root keys. A platform holds tens of them, not
// millions, so they live in an ordinary map on the Go heap under one
// lock, apart from the keys' slots: a root key's hash is never looked up
// as a key's, nor the other way round, so a root key cannot pass for a
// customer's key even in memory. Otherwise the rules are the keys': a
// record is replaced only by one with a higher Version, an unknown hash is
// asked of the store once and remembered in a bounded negative set that
// ApplyRoot clears, and concurrent misses of one hash share one read.
type roots struct {
	recs    map[apikey.Hash]apikey.Record
	neg     map[apikey.Hash]struct{}
	pending map[apikey.Hash]*fillCall
}

// loadRoots reads every root key into the index.
func (c *Cache) loadRoots(ctx context.Context) error {
	return c.rootStore.ScanRootKeys(ctx, func(rk *apikey.RootKey) error {
		c.rootMu.Lock()
		c.putRoot(rk)
		c.rootMu.Unlock()
		return nil
	})
}

// LookupRoot is Lookup for root keys: the record of the root key whose
// plaintext hashes to h (Record.Root is set), answered from memory when
// held and asked of the store once otherwise. It never returns a key's
// record. The error is EUNAVAILABLE when the store had to be asked and
// could not answer.
func (c *Cache) LookupRoot(ctx context.Context, h apikey.Hash) (apikey.Record, bool, error) {
	c.rootMu.RLock()
	rec, found := c.roots.recs[h]
	_, unknown := c.roots.neg[h]
	c.rootMu.RUnlock()
	if found || unknown {
		c.metrics.CacheHit()
		return rec, found, nil
	}
	return c.fillRoot(ctx, h)
}

// ApplyRoot records a committed change to rk, as Apply does for a key.
func (c *Cache) ApplyRoot(rk *apikey.RootKey) {
	c.rootMu.Lock()
	c.putRoot(rk)
	delete(c.roots.neg, rk.Hash)
	c.rootMu.Unlock()
}

// RootVersion is Version for root keys.
func (c *Cache) RootVersion(h apikey.Hash) (int64, bool) {
	c.rootMu.RLock()
	defer c.rootMu.RUnlock()
	rec, ok := c.roots.recs[h]
	return rec.Version, ok
}

// RootLen returns the number of root keys held.
func (c *Cache) RootLen() int {
	c.rootMu.RLock()
	defer c.rootMu.RUnlock()
	return len(c.roots.recs)
}

// putRoot keeps rk unless a record of the same or a newer version is held,
// and returns the record held afterwards. c.rootMu is held for writing.
func (c *Cache) putRoot(rk *apikey.RootKey) apikey.Record {
	if old, ok := c.roots.recs[rk.Hash]; ok && old.Version >= rk.Version {
		return old
	}
	if c.roots.recs == nil {
		c.roots.recs = make(map[apikey.Hash]apikey.Record)
	}
	// A copy: the caller's key may be reused, and records are immutable.
	rec := rk.Clone().Record()
	c.roots.recs[rk.Hash] = rec
	return rec
}

// fillRoot asks the store about h and keeps the answer, as fill does.
func (c *Cache) fillRoot(ctx context.Context, h apikey.Hash) (apikey.Record, bool, error) {
	c.rootMu.Lock()
	if rec, ok := c.roots.recs[h]; ok {
		c.rootMu.Unlock()
		c.metrics.CacheHit()
		return rec, true, nil
	}
	if _, unknown := c.roots.neg[h]; unknown {
		c.rootMu.Unlock()
		c.metrics.CacheHit()
		return apikey.Record{}, false, nil
	}
	if f := c.roots.pending[h]; f != nil {
		c.rootMu.Unlock()
		select {
		case <-f.done:
			if f.err == nil {
				c.metrics.CacheHit()
			}
			return f.rec, f.found, f.err
		case <-ctx.Done():
			return apikey.Record{}, false, unavailable(ctx.Err())
		}
	}
	f := &fillCall{done: make(chan struct{})}
	if c.roots.pending == nil {
		c.roots.pending = make(map[apikey.Hash]*fillCall)
	}
	c.roots.pending[h] = f
	c.rootMu.Unlock()

	rk, err := c.rootStore.RootKeyByHash(context.WithoutCancel(ctx), h)

	c.rootMu.Lock()
	delete(c.roots.pending, h)
	switch code := apikey.ErrorCode(err); {
	case err == nil:
		c.metrics.CacheMiss(true)
		f.rec, f.found = c.putRoot(rk), true
	case code == apikey.ENOTFOUND:
		c.metrics.CacheMiss(false)
		if rec, ok := c.roots.recs[h]; ok {
			f.rec, f.found = rec, true // created meanwhile: ApplyRoot brought it
		} else {
			c.rememberRoot(h)
		}
	default:
		f.err = unavailable(err)
	}
	c.rootMu.Unlock()
	close(f.done)
	return f.rec, f.found, f.err
}

// rememberRoot adds h to the negative set of root keys, forgetting a
// random entry when it holds rootNegMax already. c.rootMu is held.
func (c *Cache) rememberRoot(h apikey.Hash) {
	if c.roots.neg == nil {
		c.roots.neg = make(map[apikey.Hash]struct{})
	}
	if len(c.roots.neg) >= c.rootNegMax {
		for old := range c.roots.neg {
			delete(c.roots.neg, old)
			break
		}
	}
	c.roots.neg[h] = struct{}{}
}
