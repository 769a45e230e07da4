package keycache_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/keycache"
	"github.com/apikeyd/apikeyd/metrics"
	"github.com/apikeyd/apikeyd/sqlite"
)

// store is a real SQLite store that counts the lookups the index makes, and
// can fail them or hold them up, as a store under load or away would.
type store struct {
	*sqlite.Store
	byHash atomic.Int64
	fail   atomic.Pointer[error]
	// hold, when set, is received from after a lookup has read the store
	// and before it returns, so that a test can act in between.
	hold chan struct{}
	// read is signalled once a held lookup has read the store.
	read chan struct{}
}

func (s *store) KeyByHash(ctx context.Context, h apikey.Hash) (*apikey.Key, error) {
	s.byHash.Add(1)
	if err := s.fail.Load(); err != nil {
		return nil, *err
	}
	k, err := s.Store.KeyByHash(ctx, h)
	if s.hold != nil {
		s.read <- struct{}{}
		<-s.hold
	}
	return k, err
}

func (s *store) ScanKeys(ctx context.Context, fn func(k *apikey.Key) error) error {
	if err := s.fail.Load(); err != nil {
		return *err
	}
	return s.Store.ScanKeys(ctx, fn)
}

func openStore(t testing.TB) *store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "apikeyd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &store{Store: st}
}

var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// newKey returns a key numbered i with a few varied fields.
func newKey(i int) *apikey.Key {
	s := fmt.Sprintf("sk_test%08d", i)
	k := &apikey.Key{
		ID:        fmt.Sprintf("key_%026d", i),
		ProjectID: fmt.Sprintf("p%d", i%3),
		Name:      fmt.Sprintf("key number %d", i),
		KeyPrefix: s[:12],
		Hash:      apikey.HashKey(s),
		Scopes:    [][]string{{}, {"orders:read"}, {"orders:*", "profile"}}[i%3],
		CreatedAt: now,
		UpdatedAt: now,
	}
	if i%2 == 0 {
		k.EnvironmentID = "prod"
	}
	if i%5 == 0 {
		k.ExpiresAt = now.Add(time.Duration(i) * time.Hour)
	}
	return k
}

func insert(t testing.TB, st *store, keys ...*apikey.Key) {
	t.Helper()
	err := st.Update(t.Context(), func(tx apikey.Tx) error {
		for _, k := range keys {
			if err := tx.InsertKey(t.Context(), k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// change applies fn to the stored key and returns it as committed.
func change(t testing.TB, st *store, id string, fn func(k *apikey.Key)) *apikey.Key {
	t.Helper()
	var out *apikey.Key
	err := st.Update(t.Context(), func(tx apikey.Tx) error {
		k, err := tx.KeyForUpdate(t.Context(), id)
		if err != nil {
			return err
		}
		fn(k)
		out = k
		return tx.UpdateKey(t.Context(), k)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func lookup(t *testing.T, c *keycache.Cache, h apikey.Hash) (apikey.Record, bool) {
	t.Helper()
	rec, found, err := c.Lookup(t.Context(), h)
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	return rec, found
}

// sameRecord fails unless got is the record of k.
func sameRecord(t *testing.T, got apikey.Record, k *apikey.Key) {
	t.Helper()
	want := k.Record()
	if want.Scopes == nil {
		want.Scopes = []string{}
	}
	for _, p := range []*apikey.Record{&got, &want} {
		// Compare instants, not representations.
		p.ExpiresAt, p.RevokedAt, p.GraceExpiresAt = p.ExpiresAt.UTC(), p.RevokedAt.UTC(), p.GraceExpiresAt.UTC()
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("record\n got %+v\nwant %+v", got, want)
	}
}

func TestLoad(t *testing.T) {
	st := openStore(t)
	keys := make([]*apikey.Key, 2500)
	for i := range keys {
		keys[i] = newKey(i)
	}
	keys[7].RevokedAt = now
	keys[8].ReplacedByKeyID = keys[9].ID
	keys[8].GraceExpiresAt = now.Add(time.Hour)
	insert(t, st, keys...)

	c := keycache.New(keycache.Options{Store: st})
	if c.Loaded() {
		t.Fatal("Loaded before Load")
	}
	if err := c.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !c.Loaded() || c.Len() != len(keys) {
		t.Fatalf("Loaded %v, Len %d", c.Loaded(), c.Len())
	}
	for _, k := range keys {
		rec, found := lookup(t, c, k.Hash)
		if !found {
			t.Fatalf("%s not found", k.ID)
		}
		sameRecord(t, rec, k)
	}
	if n := st.byHash.Load(); n != 0 {
		t.Fatalf("%d store lookups after a full load, want 0", n)
	}
}

func TestLoadFails(t *testing.T) {
	st := openStore(t)
	insert(t, st, newKey(1))
	down := error(&apikey.Error{Code: apikey.EUNAVAILABLE, Message: "down"})
	st.fail.Store(&down)
	c := keycache.New(keycache.Options{Store: st})
	if err := c.Load(t.Context()); apikey.ErrorCode(err) != apikey.EUNAVAILABLE {
		t.Fatalf("Load = %v, want EUNAVAILABLE", err)
	}
	if c.Loaded() {
		t.Fatal("Loaded after a failed Load")
	}
	st.fail.Store(nil)
	if err := c.Load(t.Context()); err != nil || !c.Loaded() {
		t.Fatalf("second Load = %v, Loaded %v", err, c.Loaded())
	}
}

// TestLookupDuringLoad: before the load is done, a lookup of a key that is
// not in memory yet is answered by the store.
func TestLookupDuringLoad(t *testing.T) {
	st := openStore(t)
	k := newKey(1)
	insert(t, st, k)
	c := keycache.New(keycache.Options{Store: st})
	rec, found := lookup(t, c, k.Hash)
	if !found {
		t.Fatal("not found before load")
	}
	sameRecord(t, rec, k)
	if err := c.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 1 {
		t.Fatalf("Len %d after fill and load of the same key", c.Len())
	}
}

func TestMissFillsOnce(t *testing.T) {
	st := openStore(t)
	k := newKey(1)
	insert(t, st, k)
	c := keycache.New(keycache.Options{Store: st})
	for range 3 {
		if _, found := lookup(t, c, k.Hash); !found {
			t.Fatal("not found")
		}
	}
	if n := st.byHash.Load(); n != 1 {
		t.Fatalf("%d store lookups, want 1", n)
	}
}

func TestNegativeCache(t *testing.T) {
	st := openStore(t)
	c := keycache.New(keycache.Options{Store: st})
	k := newKey(1)
	for range 3 {
		if _, found := lookup(t, c, k.Hash); found {
			t.Fatal("unknown hash found")
		}
	}
	if n := st.byHash.Load(); n != 1 {
		t.Fatalf("%d store lookups of an unknown hash, want 1", n)
	}
	// The key is created: Apply after the commit clears the negative entry.
	insert(t, st, k)
	c.Apply(k)
	rec, found := lookup(t, c, k.Hash)
	if !found {
		t.Fatal("created key still unknown")
	}
	sameRecord(t, rec, k)
	if n := st.byHash.Load(); n != 1 {
		t.Fatalf("%d store lookups, want 1", n)
	}
}

// TestNegativeCacheBound: with room for one unknown hash per shard, a second
// unknown hash of the same shard pushes the first out.
func TestNegativeCacheBound(t *testing.T) {
	st := openStore(t)
	c := keycache.New(keycache.Options{Store: st, NegativeSize: 1})
	var a, b apikey.Hash // same first byte, so the same shard
	a[0], b[0] = 7, 7
	a[31], b[31] = 1, 2
	lookup(t, c, a)
	lookup(t, c, a)
	if n := st.byHash.Load(); n != 1 {
		t.Fatalf("%d store lookups, want 1", n)
	}
	lookup(t, c, b)
	lookup(t, c, a)
	if n := st.byHash.Load(); n != 3 {
		t.Fatalf("%d store lookups, want 3: the bound was not kept", n)
	}
	// Another shard has room of its own.
	var other apikey.Hash
	other[0] = 8
	lookup(t, c, other)
	lookup(t, c, a)
	if n := st.byHash.Load(); n != 4 {
		t.Fatalf("%d store lookups, want 4", n)
	}
}

func TestApplyVersions(t *testing.T) {
	st := openStore(t)
	c := keycache.New(keycache.Options{Store: st})
	k := newKey(1)
	insert(t, st, k) // version 1
	c.Apply(k)
	revoked := change(t, st, k.ID, func(k *apikey.Key) { k.RevokedAt = now }) // version 2
	c.Apply(revoked)
	// An older copy arriving late changes nothing.
	c.Apply(k)
	rec, _ := lookup(t, c, k.Hash)
	if rec.Version != 2 || rec.RevokedAt.IsZero() {
		t.Fatalf("record %+v, want version 2, revoked", rec)
	}
	renamed := revoked.Clone()
	renamed.Name = "renamed"
	renamed.Scopes = []string{"x"}
	renamed.Version = 3
	c.Apply(renamed)
	rec, _ = lookup(t, c, k.Hash)
	sameRecord(t, rec, renamed)
	if st.byHash.Load() != 0 {
		t.Fatal("Apply made lookups go to the store")
	}
}

// TestFillRacingRevoke: a miss reads the key from the store; before its
// answer is kept, the key is revoked and the revocation applied. The late
// fill must not bring the key back.
func TestFillRacingRevoke(t *testing.T) {
	st := openStore(t)
	k := newKey(1)
	insert(t, st, k)
	st.hold, st.read = make(chan struct{}), make(chan struct{})
	c := keycache.New(keycache.Options{Store: st})

	type result struct {
		rec apikey.Record
		err error
	}
	filled := make(chan result)
	go func() {
		rec, _, err := c.Lookup(context.Background(), k.Hash)
		filled <- result{rec, err}
	}()
	<-st.read // the fill has read version 1, not revoked

	revoked := change(t, st, k.ID, func(k *apikey.Key) { k.RevokedAt = now })
	c.Apply(revoked)
	close(st.hold)

	r := <-filled
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.rec.RevokedAt.IsZero() {
		t.Fatalf("the racing lookup answered with the stale record %+v", r.rec)
	}
	rec, _ := lookup(t, c, k.Hash)
	if rec.Version != revoked.Version || rec.RevokedAt.IsZero() {
		t.Fatalf("stale fill resurrected the key: %+v", rec)
	}
}

// TestConcurrentFillAndRevoke races many fills against revocations and
// checks that every key ends revoked and no reader saw a version go back.
// Run it with -race.
func TestConcurrentFillAndRevoke(t *testing.T) {
	st := openStore(t)
	const n = 200
	keys := make([]*apikey.Key, n)
	for i := range keys {
		keys[i] = newKey(i)
	}
	insert(t, st, keys...)
	c := keycache.New(keycache.Options{Store: st})

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := make([]int64, n)
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				i := (j*7 + r) % n
				rec, found, err := c.Lookup(context.Background(), keys[i].Hash)
				if err != nil || !found {
					t.Errorf("Lookup %d: found %v, err %v", i, found, err)
					return
				}
				if rec.Version < seen[i] {
					t.Errorf("key %d went back from version %d to %d", i, seen[i], rec.Version)
					return
				}
				seen[i] = rec.Version
			}
		}()
	}
	for i, k := range keys {
		revoked := change(t, st, k.ID, func(k *apikey.Key) { k.RevokedAt = now })
		c.Apply(revoked)
		if i%2 == 0 { // and once more, so that versions go to 3
			c.Apply(change(t, st, k.ID, func(k *apikey.Key) { k.Name = "again" }))
		}
	}
	close(stop)
	wg.Wait()
	for i, k := range keys {
		rec, _ := lookup(t, c, k.Hash)
		want := int64(2 + (i+1)%2)
		if rec.RevokedAt.IsZero() || rec.Version != want {
			t.Fatalf("key %d: %+v, want revoked at version %d", i, rec, want)
		}
	}
}

// TestConcurrentMissesShareOneRead: many lookups of one new hash at once
// make one store read, counted as the one miss; every other lookup, answered
// without a read of its own, counts as a hit.
func TestConcurrentMissesShareOneRead(t *testing.T) {
	st := openStore(t)
	k := newKey(1)
	insert(t, st, k)
	st.hold, st.read = make(chan struct{}), make(chan struct{})
	m := metrics.New()
	c := keycache.New(keycache.Options{Store: st, Metrics: m})
	var wg sync.WaitGroup
	start := func() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, found, err := c.Lookup(context.Background(), k.Hash); err != nil || !found {
				t.Errorf("found %v, err %v", found, err)
			}
		}()
	}
	start()
	<-st.read // the first lookup is reading the store
	for range 10 {
		start()
	}
	// The others cannot be observed waiting; give them a moment to reach
	// the index before the read completes. Whether they did or came later,
	// there must be one store read only.
	time.Sleep(10 * time.Millisecond)
	close(st.hold)
	wg.Wait()
	if n := st.byHash.Load(); n != 1 {
		t.Fatalf("%d store reads, want 1", n)
	}
	if hits, found := counter(t, m, "apikeyd_cache_hits_total", ""), counter(t, m, "apikeyd_cache_misses_total", "found"); hits != 10 || found != 1 {
		t.Fatalf("%v hits and %v misses (found) of 11 lookups, want 10 and 1", hits, found)
	}
}

// counter returns the value of a counter of m, the one whose single label
// has the value label ("" for a counter without labels).
func counter(t *testing.T, m *metrics.Metrics, name, label string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			if l := s.GetLabel(); label == "" && len(l) == 0 || len(l) == 1 && l[0].GetValue() == label {
				return s.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{%s} in the registry", name, label)
	return 0
}

func TestStoreErrors(t *testing.T) {
	st := openStore(t)
	k := newKey(1)
	insert(t, st, k)
	c := keycache.New(keycache.Options{Store: st})
	for name, err := range map[string]error{
		"Unavailable": &apikey.Error{Code: apikey.EUNAVAILABLE, Message: "down"},
		"Other":       errors.New("disk on fire"),
	} {
		t.Run(name, func(t *testing.T) {
			st.fail.Store(&err)
			_, found, got := c.Lookup(t.Context(), k.Hash)
			if found || apikey.ErrorCode(got) != apikey.EUNAVAILABLE {
				t.Fatalf("Lookup = %v, %v; want EUNAVAILABLE", found, got)
			}
			if !errors.Is(got, err) {
				t.Fatalf("the cause %v is lost in %v", err, got)
			}
		})
	}
	// Failures are not remembered: once the store is back, the key is found.
	st.fail.Store(nil)
	if _, found := lookup(t, c, k.Hash); !found {
		t.Fatal("not found once the store is back")
	}
}

// TestLookupAllocs: a hit allocates nothing.
func TestLookupAllocs(t *testing.T) {
	st := openStore(t)
	k := newKey(2)
	insert(t, st, k)
	c := keycache.New(keycache.Options{Store: st})
	if err := c.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	allocs := testing.AllocsPerRun(100, func() {
		if _, found, _ := c.Lookup(ctx, k.Hash); !found {
			t.Fatal("not found")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per hit, want 0", allocs)
	}
}
