package postgres_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/latency"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/postgres"
	"github.com/apikeyd/apikeyd/postgres/pgtest"
)

func testRootKey(i int) *apikey.RootKey {
	now := time.Now().UTC()
	id := fmt.Sprintf("root_%026d", i)
	return &apikey.RootKey{
		ID:          id,
		Name:        "guard",
		KeyPrefix:   "apikeyd_0123",
		Hash:        apikey.HashKey(id),
		Permissions: []string{apikey.ScopeVerify},
		CreatedAt:   now,
		UpdatedAt:   now,
		CreatedBy:   apikey.Actor{Type: apikey.ActorAdmin},
	}
}

func insertRootKey(t testing.TB, s *postgres.Store, rk *apikey.RootKey) {
	t.Helper()
	if err := s.Update(t.Context(), func(tx apikey.Tx) error { return tx.InsertRootKey(t.Context(), rk) }); err != nil {
		t.Fatal(err)
	}
}

// revokeRoot revokes the root key through s.
func revokeRoot(t testing.TB, s *postgres.Store, id string) {
	t.Helper()
	err := s.Update(t.Context(), func(tx apikey.Tx) error {
		rk, err := tx.RootKeyForUpdate(t.Context(), id)
		if err != nil {
			return err
		}
		rk.RevokedAt = time.Now().UTC()
		return tx.UpdateRootKey(t.Context(), rk)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (r *replica) rootVersion(rk *apikey.RootKey) int64 {
	v, _ := r.index.RootVersion(rk.Hash)
	return v
}

// TestFollowerRootKeys: root keys travel the keys' path between replicas.
// A root key created and revoked through another replica reaches the
// index by notification, and one written without a notification by the
// reconcile; neither is ever taken for a key.
func TestFollowerRootKeys(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	dbURL := pgtest.Schema(t)
	writer := openWriter(t, dbURL)
	loaded := testRootKey(1)
	insertRootKey(t, writer, loaded)
	r := startReplica(t, dbURL, "apikeyd-follow-root", postgres.FollowOptions{ReconcileInterval: 200 * time.Millisecond})
	if r.rootVersion(loaded) != 1 {
		t.Fatal("the load did not read the root key")
	}

	for i := range 10 {
		rk := testRootKey(10 + i)
		insertRootKey(t, writer, rk)
		waitUntil(t, 5*time.Second, "the new root key", func() bool { return r.rootVersion(rk) == 1 })
		revokeRoot(t, writer, rk.ID)
		waitUntil(t, 5*time.Second, "the revocation", func() bool { return r.rootVersion(rk) == 2 })
		rec, found, err := r.index.LookupRoot(t.Context(), rk.Hash)
		if err != nil || !found || !rec.Root || rec.Usable(time.Now(), netip.Addr{}) {
			t.Fatalf("root key after the revocation: %+v %v %v", rec, found, err)
		}
		if _, ok := r.index.Version(rk.Hash); ok {
			t.Fatal("a root key reached the index as a key")
		}
	}
	if n := r.index.applied.Load(); n != 0 {
		t.Errorf("the follower applied %d keys, want none", n)
	}

	unnotified := testRootKey(99)
	pgtest.Exec(t, dbURL, "ALTER TABLE root_keys DISABLE TRIGGER root_keys_changed")
	insertRootKey(t, writer, unnotified)
	pgtest.Exec(t, dbURL, "ALTER TABLE root_keys ENABLE TRIGGER root_keys_changed")
	waitUntil(t, 10*time.Second, "the reconcile to read the root key", func() bool { return r.rootVersion(unnotified) == 1 })
}

// BenchmarkRevocationPropagation measures how long a revocation committed
// through one store takes to reach another replica's index, for keys and
// root keys alternately (the same notification path): the time from the
// commit returning to the follower having applied it. p50 and p99 are
// reported per kind.
func BenchmarkRevocationPropagation(b *testing.B) {
	pgtest.URL(b)
	dbURL := pgtest.Schema(b)
	r := startReplica(b, dbURL, "apikeyd-propagation-bench", postgres.FollowOptions{ReconcileInterval: time.Hour})
	writer := openWriter(b, dbURL)
	var keys, roots []time.Duration
	for i := 0; b.Loop(); i++ {
		k, rk := testKey(1000+i), testRootKey(1000+i)
		insertKey(b, writer, k)
		insertRootKey(b, writer, rk)
		waitUntil(b, 5*time.Second, "the new keys", func() bool { return r.version(k) == 1 && r.rootVersion(rk) == 1 })
		revoke(b, writer, k.ID)
		keys = append(keys, waitUntil(b, 5*time.Second, "the revocation", func() bool { return r.version(k) == 2 }))
		revokeRoot(b, writer, rk.ID)
		roots = append(roots, waitUntil(b, 5*time.Second, "the root revocation", func() bool { return r.rootVersion(rk) == 2 }))
	}
	b.ReportMetric(float64(latency.Percentile(keys, 50).Microseconds()), "key-p50-µs")
	b.ReportMetric(float64(latency.Percentile(keys, 99).Microseconds()), "key-p99-µs")
	b.ReportMetric(float64(latency.Percentile(roots, 50).Microseconds()), "root-p50-µs")
	b.ReportMetric(float64(latency.Percentile(roots, 99).Microseconds()), "root-p99-µs")
}
