package service_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/service"
)

// TestAuditOwner checks that PUT and DELETE of an owner write one event
// each, in the owner's project with no environment and no key, by the
// caller, with the owner_id and the fields that changed before and after;
// that a rejected PUT and deleting no owner write none; and that the owner
// keeps its created_at when replaced.
func TestAuditOwner(t *testing.T) {
	svc, c := newService(t)
	ctx := t.Context()
	rk, ops := rootKey(t, svc, "ops", []string{"api-keys:*"}, []string{"acme"})
	perMinute := []apikey.RateLimit{{Name: "per_minute", Limit: 100, DurationMS: 60000}}

	created, err := svc.PutOwner(ctx, ops, "acme", "team_1", service.OwnerInput{
		RateLimits: perMinute, Credits: &apikey.Credits{Remaining: 500}, Meta: []byte(`{"plan": "pro"}`)})
	if err != nil {
		t.Fatal(err)
	}
	c.advance(time.Minute)
	// Rejected: bad ratelimits and meta, an unknown owner ID. Nothing is
	// written.
	for _, in := range []service.OwnerInput{
		{RateLimits: []apikey.RateLimit{{Name: "x", Limit: 0, DurationMS: 1}}},
		{Meta: []byte(`[1]`)},
		{Credits: &apikey.Credits{Remaining: -1}},
	} {
		if _, err := svc.PutOwner(ctx, ops, "acme", "team_1", in); code(err) != apikey.EINVALID {
			t.Fatalf("PUT %+v: %v, want EINVALID", in, err)
		}
	}
	if _, err := svc.PutOwner(ctx, ops, "acme", "bad id", service.OwnerInput{}); code(err) != apikey.EINVALID {
		t.Fatalf("PUT of a bad owner_id: %v", err)
	}
	// Replaced: the limits stay, the balance gets a monthly refill, the
	// meta goes.
	replaced, err := svc.PutOwner(ctx, ops, "acme", "team_1", service.OwnerInput{RateLimits: perMinute,
		Credits: &apikey.Credits{Remaining: 200, Refill: &apikey.Refill{Interval: apikey.RefillMonthly, Amount: 200, Mode: apikey.RefillReplace}}})
	if err != nil {
		t.Fatal(err)
	}
	if !replaced.Owner.CreatedAt.Equal(created.Owner.CreatedAt) || !replaced.Owner.UpdatedAt.Equal(c.now()) {
		t.Errorf("replaced owner: created_at %v updated_at %v, want %v and %v",
			replaced.Owner.CreatedAt, replaced.Owner.UpdatedAt, created.Owner.CreatedAt, c.now())
	}
	if err := svc.DeleteOwner(ctx, apikey.AdminPrincipal, "acme", "team_1"); err != nil {
		t.Fatal(err)
	}
	// Deleting it again, or an owner that never was, changes nothing.
	for _, owner := range []string{"team_1", "team_2"} {
		if err := svc.DeleteOwner(ctx, apikey.AdminPrincipal, "acme", owner); err != nil {
			t.Fatal(err)
		}
	}

	evs := events(t, svc, "acme", "")
	rootActor := apikey.Actor{Type: apikey.ActorRootKey, KeyID: rk.RootKey.ID, Name: "ops"}
	limits := `[{"name":"per_minute","limit":100,"duration_ms":60000}]`
	tests := []struct {
		action        string
		actor         apikey.Actor
		before, after string // the details' before and after, as JSON
	}{
		{apikey.ActionOwnerUpdated, rootActor, `{}`,
			`{"ratelimits":` + limits + `,"credits":{"remaining":500,"refill":null},"meta":{"plan":"pro"}}`},
		{apikey.ActionOwnerUpdated, rootActor,
			`{"credits":{"remaining":500,"refill":null},"meta":{"plan":"pro"}}`,
			`{"credits":{"remaining":200,"refill":{"interval":"monthly","amount":200,"mode":"replace","day_of_month":1}},"meta":null}`},
		{apikey.ActionOwnerDeleted, apikey.Actor{Type: apikey.ActorAdmin},
			`{"ratelimits":` + limits + `,"credits":{"remaining":200,"refill":{"interval":"monthly","amount":200,"mode":"replace","day_of_month":1}}}`,
			`{}`},
	}
	if len(evs) != len(tests) {
		t.Fatalf("%d events, want %d (rejected PUTs and deleting none write none): %v", len(evs), len(tests), evs)
	}
	for i, tt := range tests {
		e := evs[i]
		if e.Action != tt.action || e.Actor != tt.actor {
			t.Errorf("event %d: %s by %+v, want %s by %+v", i, e.Action, e.Actor, tt.action, tt.actor)
		}
		if e.ProjectID != "acme" || e.EnvironmentID != "" || e.KeyID != "" || e.Details["owner_id"] != "team_1" {
			t.Errorf("event %d: project %q environment %q key %q owner_id %v", i, e.ProjectID, e.EnvironmentID, e.KeyID, e.Details["owner_id"])
		}
		for side, want := range map[string]string{"before": tt.before, "after": tt.after} {
			if !sameJSON(t, e.Details[side], want) {
				got, _ := json.Marshal(e.Details[side])
				t.Errorf("event %d (%s): %s = %s, want %s", i, e.Action, side, got, want)
			}
		}
	}
	// The owner's events can be picked by action, and none names a key.
	deleted, _, err := svc.AuditEvents(ctx, ops, service.AuditInput{ProjectID: "acme", Action: apikey.ActionOwnerDeleted})
	if err != nil || len(deleted) != 1 {
		t.Fatalf("owner.deleted events: %v %v", deleted, err)
	}
}

// sameJSON reports whether got, a decoded JSON value, is the JSON want.
func sameJSON(t *testing.T, got any, want string) bool {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	g, _ := json.Marshal(got)
	wj, _ := json.Marshal(w)
	return string(g) == string(wj)
}
