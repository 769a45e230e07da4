package keycache_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/keycache"
)

// rootCounting counts the root-key lookups the index makes, and can fail
// them.
type rootCounting struct {
	*store
	rootReads atomic.Int64
	rootFail  atomic.Pointer[error]
}

func (s *rootCounting) RootKeyByHash(ctx context.Context, h apikey.Hash) (*apikey.RootKey, error) {
	s.rootReads.Add(1)
	if err := s.rootFail.Load(); err != nil {
		return nil, *err
	}
	return s.Store.RootKeyByHash(ctx, h)
}

func openRootStore(t *testing.T) *rootCounting { return &rootCounting{store: openStore(t)} }

// newRootKey returns a root key numbered i, limited to two projects when i
// is odd.
func newRootKey(i int) *apikey.RootKey {
	s := fmt.Sprintf("apikeyd_test%08d", i)
	rk := &apikey.RootKey{
		ID:          fmt.Sprintf("root_%026d", i),
		Name:        fmt.Sprintf("root key %d", i),
		KeyPrefix:   s[:12],
		Hash:        apikey.HashKey(s),
		Permissions: []string{apikey.ScopeVerify},
		CreatedAt:   now,
		UpdatedAt:   now,
		CreatedBy:   apikey.Actor{Type: apikey.ActorAdmin},
	}
	if i%2 == 1 {
		rk.ProjectIDs = []string{"p1", "p2"}
	}
	return rk
}

func insertRoot(t *testing.T, st *rootCounting, keys ...*apikey.RootKey) {
	t.Helper()
	err := st.Update(t.Context(), func(tx apikey.Tx) error {
		for _, rk := range keys {
			if err := tx.InsertRootKey(t.Context(), rk); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// changeRoot applies fn to the stored root key and returns it as committed.
func changeRoot(t *testing.T, st *rootCounting, id string, fn func(rk *apikey.RootKey)) *apikey.RootKey {
	t.Helper()
	var out *apikey.RootKey
	err := st.Update(t.Context(), func(tx apikey.Tx) error {
		rk, err := tx.RootKeyForUpdate(t.Context(), id)
		if err != nil {
			return err
		}
		fn(rk)
		out = rk
		return tx.UpdateRootKey(t.Context(), rk)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func lookupRoot(t *testing.T, c *keycache.Cache, h apikey.Hash) (apikey.Record, bool) {
	t.Helper()
	rec, found, err := c.LookupRoot(t.Context(), h)
	if err != nil {
		t.Fatalf("LookupRoot: %v", err)
	}
	return rec, found
}

// sameRootRecord fails unless got is the record of rk.
func sameRootRecord(t *testing.T, got apikey.Record, rk *apikey.RootKey) {
	t.Helper()
	want := rk.Record()
	for _, p := range []*apikey.Record{&got, &want} {
		p.ExpiresAt, p.RevokedAt, p.GraceExpiresAt = p.ExpiresAt.UTC(), p.RevokedAt.UTC(), p.GraceExpiresAt.UTC()
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("record\n got %+v\nwant %+v", got, want)
	}
}

func TestRootLoad(t *testing.T) {
	st := openRootStore(t)
	roots := []*apikey.RootKey{newRootKey(0), newRootKey(1), newRootKey(2)}
	insertRoot(t, st, roots...)
	k := newKey(7)
	insert(t, st.store, k)
	c := keycache.New(keycache.Options{Store: st})
	if err := c.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c.RootLen() != 3 || c.Len() != 1 {
		t.Fatalf("RootLen %d Len %d after the load, want 3 and 1", c.RootLen(), c.Len())
	}
	for _, rk := range roots {
		rec, found := lookupRoot(t, c, rk.Hash)
		if !found {
			t.Fatalf("root key %s not found", rk.ID)
		}
		sameRootRecord(t, rec, rk)
		if !rec.Root || (rk.ProjectIDs == nil) != (rec.ProjectIDs == nil) {
			t.Errorf("record %+v of %s", rec, rk.ID)
		}
	}
	if n := st.rootReads.Load(); n != 0 {
		t.Fatalf("%d root-key store lookups after a full load, want 0", n)
	}

	// Keys and root keys never answer for each other.
	if _, found := lookup(t, c, roots[0].Hash); found {
		t.Error("Lookup found a root key")
	}
	if _, found := lookupRoot(t, c, k.Hash); found {
		t.Error("LookupRoot found a key")
	}
	if _, ok := c.Version(roots[0].Hash); ok {
		t.Error("Version knows a root key")
	}
	if v, ok := c.RootVersion(roots[0].Hash); !ok || v != 1 {
		t.Errorf("RootVersion = %d, %v, want 1, true", v, ok)
	}
}

func TestRootApply(t *testing.T) {
	st := openRootStore(t)
	c := keycache.New(keycache.Options{Store: st})
	rk := newRootKey(1)

	// Unknown: asked of the store once, then remembered.
	for range 3 {
		if _, found := lookupRoot(t, c, rk.Hash); found {
			t.Fatal("unknown root key found")
		}
	}
	if n := st.rootReads.Load(); n != 1 {
		t.Fatalf("%d store lookups of an unknown hash, want 1", n)
	}
	// Created: ApplyRoot clears the negative entry.
	insertRoot(t, st, rk)
	c.ApplyRoot(rk)
	rec, found := lookupRoot(t, c, rk.Hash)
	if !found {
		t.Fatal("created root key still unknown")
	}
	sameRootRecord(t, rec, rk)

	// Revoked: the revoked record replaces the live one, and an older copy
	// arriving later changes nothing.
	live := rk.Clone()
	revoked := changeRoot(t, st, rk.ID, func(rk *apikey.RootKey) { rk.RevokedAt = now })
	c.ApplyRoot(revoked)
	c.ApplyRoot(live)
	rec, _ = lookupRoot(t, c, rk.Hash)
	sameRootRecord(t, rec, revoked)
	if rec.Usable(now, netip.Addr{}) {
		t.Error("a revoked root key is usable from memory")
	}
	if v, _ := c.RootVersion(rk.Hash); v != 2 {
		t.Errorf("RootVersion %d, want 2", v)
	}
	// The index keeps its own copy: changing the applied key changes nothing.
	revoked.Permissions[0], revoked.ProjectIDs[0] = "*", "p9"
	rec, _ = lookupRoot(t, c, rk.Hash)
	if rec.Scopes[0] != apikey.ScopeVerify || rec.ProjectIDs[0] != "p1" {
		t.Errorf("record changed with the applied key: %+v", rec)
	}
	if n := st.rootReads.Load(); n != 1 {
		t.Fatalf("%d store lookups, want 1", n)
	}
}

func TestRootMisses(t *testing.T) {
	st := openRootStore(t)
	rk := newRootKey(2)
	insertRoot(t, st, rk)
	c := keycache.New(keycache.Options{Store: st})

	// A store that cannot answer: EUNAVAILABLE, and nothing remembered.
	down := errors.New("database down")
	st.rootFail.Store(&down)
	if _, _, err := c.LookupRoot(t.Context(), rk.Hash); apikey.ErrorCode(err) != apikey.EUNAVAILABLE {
		t.Fatalf("LookupRoot with the store down = %v, want EUNAVAILABLE", err)
	}
	st.rootFail.Store(nil)

	// Concurrent misses of one hash: the store is asked at most a few
	// times, and every caller gets the root key.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			rec, found, err := c.LookupRoot(context.Background(), rk.Hash)
			if err != nil || !found || rec.ID != rk.ID {
				t.Errorf("LookupRoot = %+v, %v, %v", rec, found, err)
			}
		})
	}
	wg.Wait()
	before := st.rootReads.Load()
	if _, found := lookupRoot(t, c, rk.Hash); !found {
		t.Fatal("root key lost")
	}
	if st.rootReads.Load() != before {
		t.Error("a root key read once is read again")
	}
}
