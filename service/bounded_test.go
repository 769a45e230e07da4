package service_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/service"
)

// freshness is a Freshness the test sets.
type freshness struct{ stale atomic.Bool }

func (f *freshness) Stale() bool { return f.stale.Load() }

// TestBoundedIndex: while the index may be stale, a key that may be usable
// is answered with EUNAVAILABLE, by verification and as a bearer alike;
// keys that can never be usable again and unknown keys are answered as
// usual; once fresh, everything is answered again.
func TestBoundedIndex(t *testing.T) {
	ctx := context.Background()
	fresh := &freshness{}
	svc, c := newService(t, func(o *service.Options) {
		o.Index = service.BoundedIndex{Index: service.StoreIndex{Store: o.Store}, Freshness: fresh, Now: o.Now}
	})
	admin := apikey.AdminPrincipal
	create := func(in service.CreateInput) *service.Created {
		t.Helper()
		in.ProjectID, in.Name = "p", "n"
		k, err := svc.Create(ctx, admin, in)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	day := 1
	active := create(service.CreateInput{Scopes: []string{"orders:read"}})
	expired := create(service.CreateInput{ExpiresInDays: &day})
	revoked := create(service.CreateInput{})
	if err := svc.Revoke(ctx, admin, revoked.Key.ID, ""); err != nil {
		t.Fatal(err)
	}
	rotated := create(service.CreateInput{})
	if _, err := svc.Rotate(ctx, admin, rotated.Key.ID, 0); err != nil {
		t.Fatal(err)
	}
	rotating := create(service.CreateInput{})
	if _, err := svc.Rotate(ctx, admin, rotating.Key.ID, 60); err != nil {
		t.Fatal(err)
	}
	// A day later, expired is past its expiry and rotating past its grace.
	c.advance(25 * time.Hour)
	rotating2 := create(service.CreateInput{})
	if _, err := svc.Rotate(ctx, admin, rotating2.Key.ID, 60); err != nil {
		t.Fatal(err)
	}
	unknown, err := apikey.GenerateKey("sk")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		key  string
		want apikey.VerifyCode // "" for EUNAVAILABLE
	}{
		{"ErrActive", active.Plaintext, ""},
		{"ErrExpired", expired.Plaintext, ""},
		{"ErrRotating", rotating2.Plaintext, ""},
		{"OKRevoked", revoked.Plaintext, apikey.CodeRevoked},
		{"OKRotated", rotated.Plaintext, apikey.CodeRotated},
		{"OKGraceOver", rotating.Plaintext, apikey.CodeRotated},
		{"OKUnknown", unknown.Plaintext, apikey.CodeNotFound},
	}
	fresh.stale.Store(true)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := svc.Verify(ctx, admin, service.VerifyInput{Key: tt.key})
			switch {
			case tt.want == "" && apikey.ErrorCode(err) != apikey.EUNAVAILABLE:
				t.Errorf("stale: Verify = %v, %v, want EUNAVAILABLE", v.Code, err)
			case tt.want != "" && (err != nil || v.Code != tt.want):
				t.Errorf("stale: Verify = %v, %v, want %s", v.Code, err, tt.want)
			}
			_, err = svc.Authenticate(ctx, tt.key)
			want := apikey.EUNAUTHENTICATED
			if tt.want == "" {
				want = apikey.EUNAVAILABLE
			}
			if apikey.ErrorCode(err) != want {
				t.Errorf("stale: Authenticate = %v, want %s", err, want)
			}
		})
	}
	fresh.stale.Store(false)
	for key, want := range map[string]apikey.VerifyCode{
		active.Plaintext: apikey.CodeValid, expired.Plaintext: apikey.CodeExpired, rotating2.Plaintext: apikey.CodeValid,
	} {
		if got := verdict(t, svc, key); got != want {
			t.Errorf("fresh again: %s, want %s", got, want)
		}
	}
}
