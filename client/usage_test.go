package client_test

import (
	"testing"

	"github.com/apikeyd/apikeyd/client"
)

// TestUsageControl: a key with a rate limit and credits, verified with a
// cost, and its balance changed through the client.
func TestUsageControl(t *testing.T) {
	c := newClient(t, srv.AdminToken)
	k, err := c.CreateKey(t.Context(), client.CreateParams{ProjectID: "usage", Name: "metered",
		RateLimits: []client.RateLimit{{Name: "per_minute", Limit: 3, DurationMS: 60000}},
		Credits:    &client.Credits{Remaining: 10, Refill: &client.Refill{Interval: "monthly", Amount: 10, Mode: "replace", DayOfMonth: 31}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(k.RateLimits) != 1 || k.Credits == nil || k.Credits.Remaining != 10 || k.Credits.NextRefillAt == nil || k.Credits.Refill.DayOfMonth != 31 {
		t.Fatalf("created: ratelimits %+v credits %+v", k.RateLimits, k.Credits)
	}
	v, err := c.Verify(t.Context(), client.VerifyParams{Key: k.Secret, Cost: client.Cost(4)})
	if err != nil {
		t.Fatal(err)
	}
	if v.Code != client.CodeValid || v.Credits == nil || v.Credits.Remaining != 6 || len(v.RateLimits) != 1 || v.RateLimits[0].Remaining != 2 {
		t.Fatalf("verify: %+v credits %+v limits %+v", v, v.Credits, v.RateLimits)
	}
	if v, err = c.Verify(t.Context(), client.VerifyParams{Key: k.Secret, Cost: client.Cost(7)}); err != nil || v.Code != client.CodeUsageExceeded {
		t.Fatalf("verify over the balance: %+v, %v", v, err)
	}
	n, err := c.AdjustCredits(t.Context(), k.ID, client.CreditParams{Op: "increment", Amount: 5})
	if err != nil || n != 11 {
		t.Fatalf("increment: %d, %v", n, err)
	}
	if _, err := c.AdjustCredits(t.Context(), k.ID, client.CreditParams{Op: "double", Amount: 5}); err == nil {
		t.Fatal("an unknown op was accepted")
	}
	u, err := c.UpdateKey(t.Context(), k.ID, client.UpdateParams{RateLimits: client.Null[[]client.RateLimit](), Credits: client.Null[client.Credits]()})
	if err != nil || u.RateLimits != nil || u.Credits != nil {
		t.Fatalf("update to unlimited: %+v, %v", u, err)
	}
}
