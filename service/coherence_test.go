package service_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/keycache"
	"github.com/apikeyd/apikeyd/postgres"
	"github.com/apikeyd/apikeyd/postgres/pgtest"
	"github.com/apikeyd/apikeyd/seal"
	"github.com/apikeyd/apikeyd/service"
	"github.com/apikeyd/apikeyd/sqlite"
)

// coherenceStore is a store as the coherence test needs it: the service's
// store and the in-memory index's.
type coherenceStore interface {
	apikey.Store
	keycache.Store
}

// TestIndexCoherence drives random sequences of create, patch, rotate,
// revoke and clock advances (past expiry and grace periods) through the
// service over the in-memory index, and after every step compares, for
// every key ever issued and a few questions, the verdict the index gives
// with the verdict computed from the store (KeyByHash, Record.Check). The
// index learns of writes only through the service's write transaction, so
// a write it is not told of shows up as a stale verdict here.
func TestIndexCoherence(t *testing.T) {
	backends := []struct {
		name string
		open func(t *testing.T) coherenceStore
	}{
		{"sqlite", func(t *testing.T) coherenceStore {
			t.Helper()
			st, err := sqlite.Open(t.Context(), t.TempDir()+"/apikeyd.db")
			if err != nil {
				t.Fatal(err)
			}
			return st
		}},
		{"postgres", func(t *testing.T) coherenceStore {
			t.Helper()
			st, err := postgres.Open(t.Context(), pgtest.Schema(t))
			if err != nil {
				t.Fatal(err)
			}
			return st
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 4; seed++ {
				t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
					st := b.open(t)
					t.Cleanup(func() { st.Close() })
					runCoherence(t, st, seed, 80)
				})
			}
		})
	}
}

// question is one verification asked of every key after each step.
type question struct {
	scopes []string
	env    string
}

var questions = []question{
	{},
	{scopes: []string{"orders:read"}},
	{scopes: []string{"orders:write", "profile"}},
	{env: "live"},
}

func runCoherence(t *testing.T, st coherenceStore, seed uint64, steps int) {
	t.Helper()
	ctx := t.Context()
	idx := keycache.New(keycache.Options{Store: st})
	if err := idx.Load(ctx); err != nil {
		t.Fatal(err)
	}
	box, err := seal.New(make([]byte, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
	svc, err := service.New(service.Options{Store: st, Index: idx, Box: box, AdminToken: adminToken, KeyPrefix: "sk", Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	admin := apikey.AdminPrincipal
	var ids, plaintexts []string
	pick := func() string { return ids[rng.IntN(len(ids))] }
	scopeSets := [][]string{nil, {"orders:read"}, {"orders:*"}, {"orders:write", "profile"}, {"*"}}
	var log []string
	for step := range steps {
		op := rng.IntN(10)
		if len(ids) == 0 {
			op = 0
		}
		var what string
		var err error
		switch op {
		case 0, 1: // create
			in := service.CreateInput{ProjectID: "p", Name: fmt.Sprint("k", step), Scopes: scopeSets[rng.IntN(len(scopeSets))]}
			if rng.IntN(2) == 0 {
				days := 1 + rng.IntN(3)
				in.ExpiresInDays = &days
			}
			if rng.IntN(3) == 0 {
				env := "live"
				in.EnvironmentID = &env
			}
			var c *service.Created
			if c, err = svc.Create(ctx, admin, in); err == nil {
				ids, plaintexts = append(ids, c.Key.ID), append(plaintexts, c.Plaintext)
				what = "create " + c.Key.ID
			}
		case 2, 3: // patch
			id := pick()
			in := service.PatchInput{}
			switch rng.IntN(3) {
			case 0:
				s := scopeSets[rng.IntN(len(scopeSets))]
				in.Scopes = apikey.Some(s)
			case 1:
				in.ExpiresAt = apikey.Null[time.Time]()
				if rng.IntN(2) == 0 {
					in.ExpiresAt = apikey.Some(clk.now().Add(time.Duration(1+rng.IntN(48)) * time.Hour))
				}
			case 2:
				name := fmt.Sprint("renamed", step)
				in.Name = apikey.Some(name)
			}
			_, err = svc.Patch(ctx, admin, id, in)
			what = "patch " + id
		case 4, 5: // rotate
			id := pick()
			var r *service.Rotated
			if r, err = svc.Rotate(ctx, admin, id, []int{0, 30, 90}[rng.IntN(3)]); err == nil {
				ids, plaintexts = append(ids, r.New.ID), append(plaintexts, r.Plaintext)
			}
			what = "rotate " + id
		case 6: // revoke
			id := pick()
			err = svc.Revoke(ctx, admin, id, "")
			what = "revoke " + id
		default: // time passes: past grace periods, past expiry
			d := []time.Duration{time.Minute, 45 * time.Minute, 2 * time.Hour, 25 * time.Hour}[rng.IntN(4)]
			clk.advance(d)
			what = "advance " + d.String()
		}
		if code := apikey.ErrorCode(err); err != nil && code != apikey.ECONFLICT && code != apikey.EINVALID {
			t.Fatalf("step %d (%s): %v", step, what, err)
		}
		log = append(log, what)
		now := clk.now()
		for i, plain := range plaintexts {
			h := apikey.HashKey(plain)
			k, err := st.KeyByHash(ctx, h)
			if err != nil {
				t.Fatalf("step %d: key %s from the store: %v", step, ids[i], err)
			}
			rec, found, err := idx.Lookup(ctx, h)
			if err != nil || !found {
				t.Fatalf("step %d: key %s from the index: found %v, %v", step, ids[i], found, err)
			}
			want := k.Record()
			for _, q := range questions {
				if got, exp := rec.Check(now, q.scopes, q.env, netip.Addr{}), want.Check(now, q.scopes, q.env, netip.Addr{}); got != exp {
					t.Fatalf("seed %d step %d: key %s asked %v: index says %s, store says %s (index version %d, store %d)\nsteps: %v",
						seed, step, ids[i], q, got, exp, rec.Version, want.Version, log)
				}
			}
		}
	}
}
