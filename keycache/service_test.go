package keycache_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/keycache"
	"github.com/apikeyd/apikeyd/seal"
	"github.com/apikeyd/apikeyd/service"
)

func newService(st *store, idx service.Index, now func() time.Time) (*service.Service, error) {
	box, err := seal.New(make([]byte, 32))
	if err != nil {
		return nil, err
	}
	return service.New(service.Options{
		Store: st, Index: idx, Box: box, AdminToken: "admin-token", KeyPrefix: "sk", Now: now,
	})
}

// clock is a settable clock for the service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestCoherence drives the real service over the index: every change is
// seen by the very next verification, and none of them reads the store.
func TestCoherence(t *testing.T) {
	st := openStore(t)
	c := keycache.New(keycache.Options{Store: st})
	if err := c.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	svc, err := newService(st, c, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	admin := apikey.AdminPrincipal
	create := func(in service.CreateInput) *service.Created {
		t.Helper()
		out, err := svc.Create(ctx, admin, in)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	verify := func(key string, scopes ...string) apikey.VerifyCode {
		t.Helper()
		v, err := svc.Verify(ctx, admin, service.VerifyInput{Key: key, Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		return v.Code
	}
	expect := func(key string, want apikey.VerifyCode, scopes ...string) {
		t.Helper()
		if got := verify(key, scopes...); got != want {
			t.Fatalf("verdict %s, want %s", got, want)
		}
	}
	days := func(n int) *int { return &n }

	k := create(service.CreateInput{ProjectID: "p1", Name: "k", Scopes: []string{"orders:read"}})
	expect(k.Plaintext, apikey.CodeValid, "orders:read")

	t.Run("Patch", func(t *testing.T) {
		scopes := []string{"profile"}
		if _, err := svc.Patch(ctx, admin, k.Key.ID, service.PatchInput{Scopes: apikey.Some(scopes)}); err != nil {
			t.Fatal(err)
		}
		expect(k.Plaintext, apikey.CodeInsufficientScope, "orders:read")
		expect(k.Plaintext, apikey.CodeValid, "profile")
	})
	t.Run("PatchExpiry", func(t *testing.T) {
		at := clk.Now().Add(time.Hour)
		if _, err := svc.Patch(ctx, admin, k.Key.ID, service.PatchInput{ExpiresAt: apikey.Some(at)}); err != nil {
			t.Fatal(err)
		}
		expect(k.Plaintext, apikey.CodeValid)
		// Expiry is decided against the clock at every lookup, with no
		// change to the key.
		clk.Add(time.Hour)
		expect(k.Plaintext, apikey.CodeExpired)
		if _, err := svc.Authenticate(ctx, k.Plaintext); apikey.ErrorCode(err) != apikey.EUNAUTHENTICATED {
			t.Fatalf("expired key authenticates: %v", err)
		}
		if _, err := svc.Patch(ctx, admin, k.Key.ID, service.PatchInput{ExpiresAt: apikey.Null[time.Time]()}); err != nil {
			t.Fatal(err)
		}
		expect(k.Plaintext, apikey.CodeValid)
	})
	t.Run("Rotate", func(t *testing.T) {
		old := create(service.CreateInput{ProjectID: "p1", Name: "old", ExpiresInDays: days(30)})
		r, err := svc.Rotate(ctx, admin, old.Key.ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		expect(r.Plaintext, apikey.CodeValid)
		expect(old.Plaintext, apikey.CodeValid) // in grace
		v, _ := svc.Verify(ctx, admin, service.VerifyInput{Key: old.Plaintext})
		if !v.Known || !v.Record.Replaced || !v.Record.GraceExpiresAt.Equal(clk.Now().Add(10*time.Minute)) {
			t.Fatalf("record of the rotated key: %+v", v.Record)
		}
		clk.Add(10 * time.Minute)
		expect(old.Plaintext, apikey.CodeRotated) // grace over, by the clock alone
		expect(r.Plaintext, apikey.CodeValid)

		now := create(service.CreateInput{ProjectID: "p1", Name: "now"})
		r, err = svc.Rotate(ctx, admin, now.Key.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		expect(now.Plaintext, apikey.CodeRotated)
		expect(r.Plaintext, apikey.CodeValid)
	})
	t.Run("Revoke", func(t *testing.T) {
		if _, err := svc.Authenticate(ctx, k.Plaintext); err != nil {
			t.Fatalf("before revoke: %v", err)
		}
		if err := svc.Revoke(ctx, admin, k.Key.ID, ""); err != nil {
			t.Fatal(err)
		}
		expect(k.Plaintext, apikey.CodeRevoked)
		if _, err := svc.Authenticate(ctx, k.Plaintext); apikey.ErrorCode(err) != apikey.EUNAUTHENTICATED {
			t.Fatalf("revoked key authenticates: %v", err)
		}
	})
	t.Run("RevokeInGrace", func(t *testing.T) {
		old := create(service.CreateInput{ProjectID: "p1", Name: "old"})
		if _, err := svc.Rotate(ctx, admin, old.Key.ID, 60); err != nil {
			t.Fatal(err)
		}
		expect(old.Plaintext, apikey.CodeValid)
		if err := svc.Revoke(ctx, admin, old.Key.ID, ""); err != nil {
			t.Fatal(err)
		}
		expect(old.Plaintext, apikey.CodeRevoked)
	})
	if n := st.byHash.Load(); n != 0 {
		t.Fatalf("%d store lookups: every key was known from its creation", n)
	}
	t.Run("Unknown", func(t *testing.T) {
		s, _ := apikey.GenerateKey("sk")
		expect(s.Plaintext, apikey.CodeNotFound)
		expect(s.Plaintext, apikey.CodeNotFound)
		if _, err := svc.Authenticate(ctx, s.Plaintext); apikey.ErrorCode(err) != apikey.EUNAUTHENTICATED {
			t.Fatalf("unknown key authenticates: %v", err)
		}
		if n := st.byHash.Load(); n != 1 {
			t.Fatalf("%d store lookups of one unknown key, want 1", n)
		}
		// A checksum failure never reaches the index, nor the store.
		last := "0"
		if strings.HasSuffix(s.Plaintext, last) {
			last = "1"
		}
		malformed := s.Plaintext[:len(s.Plaintext)-1] + last
		expect(malformed, apikey.CodeMalformed)
		// Nor does it as a bearer token, whatever its shape.
		for _, bearer := range []string{malformed, "sk_short", strings.Repeat("x", 4096), "not a key at all"} {
			if _, err := svc.Authenticate(ctx, bearer); apikey.ErrorCode(err) != apikey.EUNAUTHENTICATED {
				t.Fatalf("bearer %.20q: %v, want unauthenticated", bearer, err)
			}
		}
		if n := st.byHash.Load(); n != 1 {
			t.Fatalf("a malformed key reached the store")
		}
	})
}

// TestStoreUnavailable: with the store away, a key the index holds still
// verifies and an unknown one is EUNAVAILABLE, not NOT_FOUND.
func TestStoreUnavailable(t *testing.T) {
	st := openStore(t)
	c := keycache.New(keycache.Options{Store: st})
	svc, err := newService(st, c, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	k, err := svc.Create(ctx, apikey.AdminPrincipal, service.CreateInput{ProjectID: "p1", Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	down := error(&apikey.Error{Code: apikey.EUNAVAILABLE, Message: "down"})
	st.fail.Store(&down)
	if v, err := svc.Verify(ctx, apikey.AdminPrincipal, service.VerifyInput{Key: k.Plaintext}); err != nil || !v.Valid() {
		t.Fatalf("known key with the store away: %v, %v", v.Code, err)
	}
	s, _ := apikey.GenerateKey("sk")
	if _, err := svc.Verify(ctx, apikey.AdminPrincipal, service.VerifyInput{Key: s.Plaintext}); apikey.ErrorCode(err) != apikey.EUNAVAILABLE {
		t.Fatalf("unknown key with the store away: %v", err)
	}
	if _, err := svc.Authenticate(ctx, s.Plaintext); apikey.ErrorCode(err) != apikey.EUNAVAILABLE {
		t.Fatalf("unknown bearer with the store away: %v", err)
	}
}
