package keycache_test

import (
	"testing"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/keycache"
)

func TestVersion(t *testing.T) {
	st := openStore(t)
	c := keycache.New(keycache.Options{Store: st})
	k := newKey(1)
	insert(t, st, k)
	if v, ok := c.Version(k.Hash); ok {
		t.Errorf("Version of a key never seen = %d, true", v)
	}
	c.Apply(k)
	if v, ok := c.Version(k.Hash); !ok || v != 1 {
		t.Errorf("Version = %d, %v, want 1, true", v, ok)
	}
	c.Apply(change(t, st, k.ID, func(k *apikey.Key) { k.Name = "renamed" }))
	if v, ok := c.Version(k.Hash); !ok || v != 2 {
		t.Errorf("Version after a change = %d, %v, want 2, true", v, ok)
	}
	// An unknown hash in the negative cache has no version either.
	unknown := newKey(2)
	if _, found := lookup(t, c, unknown.Hash); found {
		t.Fatal("unknown key found")
	}
	if v, ok := c.Version(unknown.Hash); ok {
		t.Errorf("Version of an unknown key = %d, true", v)
	}
	if st.byHash.Load() != 1 {
		t.Errorf("%d store reads, want 1 (the lookup of the unknown key)", st.byHash.Load())
	}
}
