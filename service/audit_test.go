package service_test

import (
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/service"
)

// events returns the audit events of key id, oldest first.
func events(t *testing.T, svc *service.Service, project, id string) []*apikey.AuditEvent {
	t.Helper()
	evs, _, err := svc.AuditEvents(t.Context(), apikey.AdminPrincipal, service.AuditInput{ProjectID: project, KeyID: id})
	if err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
	return evs
}

// TestAuditBeforeAfter checks that every event of a change records the
// values the key had before and has after it, beside the details it has
// always carried, and that a patch that changes nothing writes nothing.
func TestAuditBeforeAfter(t *testing.T) {
	svc, c := newService(t)
	ctx := t.Context()
	admin := apikey.AdminPrincipal
	k, err := svc.Create(ctx, admin, service.CreateInput{ProjectID: "p", Name: "before", Scopes: []string{"orders:read"}})
	if err != nil {
		t.Fatal(err)
	}
	id := k.Key.ID
	c.advance(time.Minute)
	if _, err := svc.Patch(ctx, admin, id, service.PatchInput{Name: apikey.Some("after"), Scopes: apikey.Some([]string{"orders:read"})}); err != nil {
		t.Fatal(err)
	}
	// The same values again, and an empty patch: nothing changes.
	for _, in := range []service.PatchInput{{Name: apikey.Some("after")}, {}} {
		p, err := svc.Patch(ctx, admin, id, in)
		if err != nil {
			t.Fatal(err)
		}
		if p.Key.Name != "after" {
			t.Fatalf("name %q", p.Key.Name)
		}
	}
	if err := svc.Revoke(ctx, admin, id, ""); err != nil {
		t.Fatal(err)
	}
	evs := events(t, svc, "p", id)
	tests := []struct {
		action        string
		detail        string // a detail key the event has always had
		before, after map[string]any
	}{
		{apikey.ActionCreated, "key_prefix", map[string]any{}, map[string]any{"name": "before", "scopes": []any{"orders:read"}}},
		{apikey.ActionUpdated, "name", map[string]any{"name": "before"}, map[string]any{"name": "after"}},
		{apikey.ActionRevoked, "", map[string]any{"revoked_at": nil}, map[string]any{"revoked_at": c.now().UTC().Format(time.RFC3339Nano)}},
	}
	if len(evs) != len(tests) {
		t.Fatalf("%d events, want %d (a patch that changes nothing writes none)", len(evs), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			e := evs[i]
			if e.Action != tt.action || e.Actor.Type != apikey.ActorAdmin {
				t.Fatalf("event %d: %s by %s", i, e.Action, e.Actor.Type)
			}
			if _, ok := e.Details[tt.detail]; tt.detail != "" && !ok {
				t.Errorf("details lack %q: %v", tt.detail, e.Details)
			}
			for side, want := range map[string]map[string]any{"before": tt.before, "after": tt.after} {
				got, _ := e.Details[side].(map[string]any)
				if len(got) != len(want) {
					t.Errorf("%s = %v, want %v", side, got, want)
				}
				for f, w := range want {
					if g, ok := got[f]; !ok || !equalJSON(g, w) {
						t.Errorf("%s[%s] = %v, want %v", side, f, g, w)
					}
				}
			}
		})
	}
}

func equalJSON(a, b any) bool {
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok {
		if len(as) != len(bs) {
			return false
		}
		for i := range as {
			if as[i] != bs[i] {
				return false
			}
		}
		return true
	}
	return a == b
}

// TestWriteIncludesRead checks that a key holding api-keys:write may issue
// a key with api-keys:read (write includes read), and still no more.
func TestWriteIncludesRead(t *testing.T) {
	svc, _ := newService(t)
	ctx := t.Context()
	w, err := svc.Create(ctx, apikey.AdminPrincipal, service.CreateInput{ProjectID: "p", Name: "writer", Scopes: []string{apikey.ScopeWrite}})
	if err != nil {
		t.Fatal(err)
	}
	writer, err := svc.Authenticate(ctx, w.Plaintext)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		scopes []string
		code   string
	}{
		{"OK read", []string{apikey.ScopeRead}, ""},
		{"OK write and read", []string{apikey.ScopeWrite, apikey.ScopeRead}, ""},
		{"ErrVerify", []string{apikey.ScopeVerify}, apikey.EFORBIDDEN},
		{"ErrAll", []string{"api-keys:*"}, apikey.EFORBIDDEN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Create(ctx, writer, service.CreateInput{ProjectID: "p", Name: tt.name, Scopes: tt.scopes})
			if got := apikey.ErrorCode(err); got != tt.code {
				t.Fatalf("error %v (%q), want %q", err, got, tt.code)
			}
		})
	}
}
