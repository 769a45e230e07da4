package service_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/seal"
	"github.com/apikeyd/apikeyd/service"
	"github.com/apikeyd/apikeyd/sqlite"
)

// clock is a settable time source, so that expiry and grace are tested
// without sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

const adminToken = "test-admin-token-0123456789"

// newService returns a service on a fresh SQLite store with a settable
// clock; each option may change its options (the index, say) first.
func newService(t *testing.T, options ...func(*service.Options)) (*service.Service, *clock) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir()+"/apikeyd.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, err := seal.New(make([]byte, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
	o := service.Options{Store: st, Box: box, AdminToken: adminToken, KeyPrefix: "sk", Now: c.now}
	for _, opt := range options {
		opt(&o)
	}
	svc, err := service.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return svc, c
}

func verdict(t *testing.T, svc *service.Service, key string) apikey.VerifyCode {
	t.Helper()
	v, err := svc.Verify(context.Background(), apikey.AdminPrincipal, service.VerifyInput{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return v.Code
}

func TestExpiryFollowsTheClock(t *testing.T) {
	svc, c := newService(t)
	ctx := context.Background()
	days := 3
	k, err := svc.Create(ctx, apikey.AdminPrincipal, service.CreateInput{ProjectID: "p", Name: "n", ExpiresInDays: &days})
	if err != nil {
		t.Fatal(err)
	}
	c.advance(72*time.Hour - time.Microsecond)
	if got := verdict(t, svc, k.Plaintext); got != apikey.CodeValid {
		t.Fatalf("just before expiry: %s", got)
	}
	if _, err := svc.Authenticate(ctx, k.Plaintext); err != nil {
		t.Fatalf("bearer just before expiry: %v", err)
	}
	c.advance(time.Microsecond)
	if got := verdict(t, svc, k.Plaintext); got != apikey.CodeExpired {
		t.Fatalf("at expiry: %s", got)
	}
	if _, err := svc.Authenticate(ctx, k.Plaintext); apikey.ErrorCode(err) != apikey.EUNAUTHENTICATED {
		t.Fatalf("bearer at expiry: %v", err)
	}
	// An expired key cannot be rotated back to life.
	if _, err := svc.Rotate(ctx, apikey.AdminPrincipal, k.Key.ID, 60); apikey.ErrorCode(err) != apikey.ECONFLICT {
		t.Fatalf("rotate expired key: %v", err)
	}
}

func TestGraceFollowsTheClock(t *testing.T) {
	svc, c := newService(t)
	ctx := context.Background()
	days := 10
	k, err := svc.Create(ctx, apikey.AdminPrincipal, service.CreateInput{ProjectID: "p", Name: "n", ExpiresInDays: &days})
	if err != nil {
		t.Fatal(err)
	}
	c.advance(24 * time.Hour)
	r, err := svc.Rotate(ctx, apikey.AdminPrincipal, k.Key.ID, 90)
	if err != nil {
		t.Fatal(err)
	}
	if life := r.New.ExpiresAt.Sub(r.New.CreatedAt); life != 10*24*time.Hour {
		t.Fatalf("replacement lifetime %v, want the original 240h", life)
	}
	c.advance(90*time.Minute - time.Second)
	if got := verdict(t, svc, k.Plaintext); got != apikey.CodeValid {
		t.Fatalf("old key inside grace: %s", got)
	}
	c.advance(time.Second)
	if got := verdict(t, svc, k.Plaintext); got != apikey.CodeRotated {
		t.Fatalf("old key at end of grace: %s", got)
	}
	if got := verdict(t, svc, r.Plaintext); got != apikey.CodeValid {
		t.Fatalf("replacement: %s", got)
	}
	old, err := svc.Get(ctx, apikey.AdminPrincipal, k.Key.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st := old.Status(c.now()); st != apikey.StatusRotated {
		t.Fatalf("old key status %s", st)
	}
}

func TestPatchScheduleFromCreation(t *testing.T) {
	svc, c := newService(t)
	ctx := context.Background()
	url := "https://hooks.example.com/x"
	k, err := svc.Create(ctx, apikey.AdminPrincipal, service.CreateInput{ProjectID: "p", Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	c.advance(10 * 24 * time.Hour)
	p, err := svc.Patch(ctx, apikey.AdminPrincipal, k.Key.ID, service.PatchInput{
		RotationIntervalDays: apikey.Some(30),
		RotationWebhookURL:   apikey.Some(url),
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := k.Key.CreatedAt.Add(30 * 24 * time.Hour); !p.Key.NextRotationAt.Equal(want) {
		t.Fatalf("next_rotation_at %v, want created_at+30d %v", p.Key.NextRotationAt, want)
	}
	if p.WebhookSecret == "" {
		t.Fatal("first webhook URL did not create a secret")
	}
	// A key already older than its new interval comes due at once.
	p, err = svc.Patch(ctx, apikey.AdminPrincipal, k.Key.ID, service.PatchInput{
		RotationIntervalDays: apikey.Some(5),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Key.NextRotationAt.Equal(c.now()) || p.WebhookSecret != "" {
		t.Fatalf("next_rotation_at %v, want now %v; secret re-issued: %v", p.Key.NextRotationAt, c.now(), p.WebhookSecret != "")
	}
}
