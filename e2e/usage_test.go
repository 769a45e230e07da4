package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Usage control in verify (SPEC §10), on one node: exact counting.

// verifyMany runs n verifies of body at once and returns how many got
// each code.
func (s *server) verifyMany(t *testing.T, token string, n int, body map[string]any) map[string]int {
	t.Helper()
	var mu sync.Mutex
	codes := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.try(http.MethodPost, "/v1/api-keys/verify", token, body)
			if err != nil {
				errs <- err
				return
			}
			if r.Status != http.StatusOK {
				errs <- fmt.Errorf("status %d: %s", r.Status, r.Body)
				return
			}
			var v map[string]any
			r.json(t, &v)
			mu.Lock()
			codes[v["code"].(string)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return codes
}

// remaining is the key's balance as GET shows it.
func (s *server) remaining(t *testing.T, id string) int64 {
	t.Helper()
	k := expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+id, s.Admin, nil), http.StatusOK).object(t)
	c, ok := k["credits"].(map[string]any)
	if !ok {
		t.Fatalf("key %s has no credits: %v", id, k)
	}
	return int64(c["remaining"].(float64))
}

func TestUsageBurstOnRateLimit(t *testing.T) {
	s := startServer(t)
	k := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "limited",
		"ratelimits": []map[string]any{{"name": "per_minute", "limit": 20, "duration_ms": 60000}}})
	if rl, _ := k.Object["ratelimits"].([]any); len(rl) != 1 {
		t.Fatalf("created key's ratelimits: %v", k.Object["ratelimits"])
	}
	codes := s.verifyMany(t, s.Admin, 60, map[string]any{"key": k.Secret})
	if codes["VALID"] != 20 || codes["RATE_LIMITED"] != 40 {
		t.Fatalf("60 concurrent verifies on limit 20: %v, want 20 VALID and 40 RATE_LIMITED", codes)
	}
	v := s.verify(t, s.Admin, map[string]any{"key": k.Secret})
	rl := v["ratelimits"].([]any)[0].(map[string]any)
	if v["code"] != "RATE_LIMITED" || v["valid"] != false || rl["remaining"] != 0.0 || rl["name"] != "per_minute" || rl["reset_at"] == nil {
		t.Fatalf("verify after the burst: %v", v)
	}
	if v["credits"] != nil {
		t.Fatalf("a key without credits answers credits %v, want null", v["credits"])
	}
	// Usage counts every verdict, per hour and per day; the key of another
	// project's usage is not the caller's to see.
	for _, path := range []string{"/v1/api-keys/" + k.ID + "/usage", "/v1/usage?project_id=p1&granularity=day"} {
		buckets := expect(t, s.do(t, http.MethodGet, path, s.Admin, nil), http.StatusOK).list(t)
		if len(buckets) != 1 {
			t.Fatalf("%s: %v", path, buckets)
		}
		c := buckets[0]["counts"].(map[string]any)
		if c["VALID"] != 20.0 || c["RATE_LIMITED"] != 41.0 || buckets[0]["credits_spent"] != 0.0 || buckets[0]["start"] == nil {
			t.Fatalf("%s: %v", path, buckets)
		}
	}
	problem(t, s.do(t, http.MethodGet, "/v1/usage?project_id=p1&granularity=week", s.Admin, nil), http.StatusBadRequest)
	problem(t, s.do(t, http.MethodGet, "/v1/usage", s.Admin, nil), http.StatusBadRequest)
	other := s.create(t, s.Admin, map[string]any{"project_id": "p2", "name": "reader", "scopes": []string{"api-keys:read"}})
	problem(t, s.do(t, http.MethodGet, "/v1/api-keys/"+k.ID+"/usage", other.Secret, nil), http.StatusNotFound)
	problem(t, s.do(t, http.MethodGet, "/v1/usage?project_id=p1", other.Secret, nil), http.StatusForbidden)
}

func TestUsageCredits(t *testing.T) {
	s := startServer(t)
	k := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "metered", "scopes": []string{"orders:read"},
		"credits": map[string]any{"remaining": 10}})
	if c, _ := k.Object["credits"].(map[string]any); c["remaining"] != 10.0 {
		t.Fatalf("created key's credits: %v", k.Object["credits"])
	}
	// A denied verify (a scope the key lacks) spends nothing.
	for range 3 {
		if v := s.verify(t, s.Admin, map[string]any{"key": k.Secret, "scopes": []string{"orders:write"}}); v["code"] != "INSUFFICIENT_SCOPE" {
			t.Fatalf("verify with a scope the key lacks: %v", v)
		}
	}
	// Cost 0 checks without spending.
	v := s.verify(t, s.Admin, map[string]any{"key": k.Secret, "cost": 0})
	if c, _ := v["credits"].(map[string]any); v["code"] != "VALID" || c["remaining"] != 10.0 {
		t.Fatalf("cost 0: %v", v)
	}
	if got := s.remaining(t, k.ID); got != 10 {
		t.Fatalf("after denied and cost-0 verifies remaining = %d, want 10", got)
	}
	codes := s.verifyMany(t, s.Admin, 15, map[string]any{"key": k.Secret})
	if codes["VALID"] != 10 || codes["USAGE_EXCEEDED"] != 5 {
		t.Fatalf("15 concurrent verifies on 10 credits: %v", codes)
	}
	v = s.verify(t, s.Admin, map[string]any{"key": k.Secret, "cost": 0})
	if c, _ := v["credits"].(map[string]any); v["code"] != "VALID" || c["remaining"] != 0.0 {
		t.Fatalf("cost 0 on an empty balance: %v", v)
	}
	if got := s.remaining(t, k.ID); got != 0 {
		t.Fatalf("remaining = %d, want 0", got)
	}
	buckets := expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+k.ID+"/usage?granularity=day", s.Admin, nil), http.StatusOK).list(t)
	if len(buckets) != 1 || buckets[0]["credits_spent"] != 10.0 {
		t.Fatalf("usage: %v, want 10 credits spent", buckets)
	}
	// The metrics count the new verdicts and the reservations.
	metrics := string(expect(t, s.do(t, http.MethodGet, "/metrics", "", nil), http.StatusOK).Body)
	if !strings.Contains(metrics, `apikeyd_verify_total{code="USAGE_EXCEEDED"} 5`) {
		t.Errorf("/metrics lacks the USAGE_EXCEEDED verdicts")
	}
	series := func(name string) float64 {
		for _, line := range strings.Split(metrics, "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				var f float64
				fmt.Sscan(v, &f)
				return f
			}
		}
		t.Fatalf("/metrics lacks %s", name)
		return 0
	}
	taken := series(`apikeyd_usage_reservations_total{kind="credits",outcome="taken"}`)
	returned := series(`apikeyd_usage_reservations_total{kind="credits",outcome="returned"}`)
	if taken-returned != 10 {
		t.Errorf("credits taken %v − returned %v, want the 10 spent", taken, returned)
	}
	if n := series(`apikeyd_usage_reservation_seconds_count{kind="credits"}`); n < 1 {
		t.Errorf("%v credit reservation transactions timed, want at least the first", n)
	}
}

// TestUsageDeniedSpendsNothing: a verify refused by a rate limit spends no
// credit.
func TestUsageDeniedSpendsNothing(t *testing.T) {
	s := startServer(t)
	k := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "both",
		"ratelimits": []map[string]any{{"name": "burst", "limit": 3, "duration_ms": 3600000}},
		"credits":    map[string]any{"remaining": 100}})
	codes := s.verifyMany(t, s.Admin, 10, map[string]any{"key": k.Secret, "cost": 5})
	if codes["VALID"] != 3 || codes["RATE_LIMITED"] != 7 {
		t.Fatalf("10 verifies on limit 3: %v", codes)
	}
	if got := s.remaining(t, k.ID); got != 100-3*5 {
		t.Fatalf("remaining = %d, want %d: rate-limited verifies must spend nothing", got, 100-3*5)
	}
	// And a verify refused for credits counts against no limit: a key
	// with 1 credit and a limit of 2 admits one cost-1 verify after
	// any number of refused cost-2 ones.
	k2 := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "poor",
		"ratelimits": []map[string]any{{"name": "burst", "limit": 2, "duration_ms": 3600000}},
		"credits":    map[string]any{"remaining": 1}})
	if codes := s.verifyMany(t, s.Admin, 5, map[string]any{"key": k2.Secret, "cost": 2}); codes["USAGE_EXCEEDED"] != 5 {
		t.Fatalf("cost 2 on 1 credit: %v", codes)
	}
	v := s.verify(t, s.Admin, map[string]any{"key": k2.Secret})
	rl := v["ratelimits"].([]any)[0].(map[string]any)
	if v["code"] != "VALID" || rl["remaining"] != 1.0 {
		t.Fatalf("after refused verifies: %v, want VALID with 1 of the limit left", v)
	}
}

// TestUsageAdjustDuringVerifies changes a balance while 50 verifies spend
// it: the end is the exact arithmetic result.
func TestUsageAdjustDuringVerifies(t *testing.T) {
	s := startServer(t)
	k := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "busy", "credits": map[string]any{"remaining": 1000}})
	var wg sync.WaitGroup
	wg.Add(1)
	var codes map[string]int
	go func() {
		defer wg.Done()
		codes = s.verifyMany(t, s.Admin, 50, map[string]any{"key": k.Secret, "cost": 2})
	}()
	for i := range 10 {
		op, amount := "increment", 100
		if i%2 == 1 {
			op, amount = "decrement", 30
		}
		r := expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+k.ID+"/credits", s.Admin, map[string]any{"op": op, "amount": amount}), http.StatusOK).object(t)
		if _, ok := r["remaining"].(float64); !ok {
			t.Fatalf("credits answer: %v", r)
		}
	}
	wg.Wait()
	if codes["VALID"] != 50 {
		t.Fatalf("verifies: %v", codes)
	}
	want := int64(1000 - 50*2 + 5*100 - 5*30)
	if got := s.remaining(t, k.ID); got != want {
		t.Fatalf("remaining = %d, want %d", got, want)
	}
	// set wins over what was, exactly; decrement stops at 0.
	r := expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+k.ID+"/credits", s.Admin, map[string]any{"op": "set", "amount": 7}), http.StatusOK).object(t)
	if r["remaining"] != 7.0 {
		t.Fatalf("set 7: %v", r)
	}
	if codes := s.verifyMany(t, s.Admin, 10, map[string]any{"key": k.Secret}); codes["VALID"] != 7 {
		t.Fatalf("10 verifies after set 7: %v", codes)
	}
	r = expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+k.ID+"/credits", s.Admin, map[string]any{"op": "decrement", "amount": 5}), http.StatusOK).object(t)
	if r["remaining"] != 0.0 {
		t.Fatalf("decrement below 0: %v", r)
	}
	// Every change is audited with the balance before and after.
	events := expect(t, s.do(t, http.MethodGet, "/v1/audit-events?project_id=p1", s.Admin, nil), http.StatusOK).list(t)
	n := 0
	for _, e := range events {
		if e["action"] != "api_key.credits_adjusted" {
			continue
		}
		n++
		d := e["details"].(map[string]any)
		if _, ok := d["before"].(map[string]any)["credits"]; !ok {
			t.Fatalf("credits event without before: %v", e)
		}
		if _, ok := d["after"].(map[string]any)["credits"]; !ok {
			t.Fatalf("credits event without after: %v", e)
		}
	}
	if n != 12 {
		t.Fatalf("%d credits events, want 12", n)
	}
	// A key with unlimited credits has no balance to change.
	free := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "free"})
	problem(t, s.do(t, http.MethodPost, "/v1/api-keys/"+free.ID+"/credits", s.Admin, map[string]any{"op": "increment", "amount": 1}), http.StatusConflict)
	for _, body := range []map[string]any{{"op": "double", "amount": 1}, {"op": "set", "amount": -1}, {"op": "set", "amount": 1e13}} {
		problem(t, s.do(t, http.MethodPost, "/v1/api-keys/"+k.ID+"/credits", s.Admin, body), http.StatusBadRequest)
	}
}

// TestUsageRotationMidStream rotates a metered key while it is used: the
// replacement has the same balance and windows, so that old and new key
// together neither reset nor double the allowance.
func TestUsageRotationMidStream(t *testing.T) {
	s := startServer(t)
	k := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "rotating",
		"ratelimits": []map[string]any{{"name": "hourly", "limit": 30, "duration_ms": 3600000}},
		"credits":    map[string]any{"remaining": 25}})
	if c := s.verifyMany(t, s.Admin, 10, map[string]any{"key": k.Secret}); c["VALID"] != 10 {
		t.Fatalf("before rotation: %v", c)
	}
	rot := expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+k.ID+"/rotate", s.Admin, map[string]any{"grace_period_minutes": 60}), http.StatusCreated).object(t)
	newKey, newID := rot["key"].(string), rot["new_key_id"].(string)
	secrets.add("API key", newKey)
	got := expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+newID, s.Admin, nil), http.StatusOK).object(t)
	if c, _ := got["credits"].(map[string]any); c["remaining"] != 15.0 || len(got["ratelimits"].([]any)) != 1 {
		t.Fatalf("the replacement: credits %v ratelimits %v, want 15 left of one balance and the same limit", got["credits"], got["ratelimits"])
	}
	// Both keys at once, 30 verifies: 15 credits are left between them.
	var wg sync.WaitGroup
	var oldCodes, newCodes map[string]int
	wg.Add(2)
	go func() { defer wg.Done(); oldCodes = s.verifyMany(t, s.Admin, 15, map[string]any{"key": k.Secret}) }()
	go func() { defer wg.Done(); newCodes = s.verifyMany(t, s.Admin, 15, map[string]any{"key": newKey}) }()
	wg.Wait()
	if oldCodes["VALID"]+newCodes["VALID"] != 15 || oldCodes["USAGE_EXCEEDED"]+newCodes["USAGE_EXCEEDED"] != 15 {
		t.Fatalf("during grace: old %v new %v, want 15 VALID in all", oldCodes, newCodes)
	}
	// The windows are shared too: 25 admitted of 30, so 5 more with
	// credits added, then RATE_LIMITED.
	expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+newID+"/credits", s.Admin, map[string]any{"op": "increment", "amount": 100}), http.StatusOK)
	c := s.verifyMany(t, s.Admin, 10, map[string]any{"key": newKey})
	if c["VALID"] != 5 || c["RATE_LIMITED"] != 5 {
		t.Fatalf("after the increment: %v, want 5 VALID (30 − 25) and 5 RATE_LIMITED", c)
	}
	if got := s.remaining(t, k.ID); got != 95 {
		t.Fatalf("old key's view of the balance: %d, want 95", got)
	}
}

func TestUsageValidation(t *testing.T) {
	s := startServer(t)
	lim := func(name string, limit, d any) string {
		return fmt.Sprintf(`{"name": %q, "limit": %v, "duration_ms": %v}`, name, limit, d)
	}
	eleven := ""
	for i := range 11 {
		if i > 0 {
			eleven += ","
		}
		eleven += lim(fmt.Sprint("l", i), 1, 1000)
	}
	for name, tc := range map[string]struct {
		body  string
		field string
	}{
		"LimitZero":      {`"ratelimits": [` + lim("a", 0, 1000) + `]`, "ratelimits[0].limit"},
		"Duration999":    {`"ratelimits": [` + lim("a", 1, 999) + `]`, "ratelimits[0].duration_ms"},
		"DuplicateNames": {`"ratelimits": [` + lim("a", 1, 1000) + `,` + lim("a", 2, 1000) + `]`, "ratelimits[1].name"},
		"ElevenLimits":   {`"ratelimits": [` + eleven + `]`, "ratelimits"},
		"EmptyLimits":    {`"ratelimits": []`, "ratelimits"},
		"BadName":        {`"ratelimits": [` + lim("A B", 1, 1000) + `]`, "ratelimits[0].name"},
		"NegativeCredit": {`"credits": {"remaining": -1}`, "credits.remaining"},
		"HugeCredit":     {`"credits": {"remaining": 1000000000001}`, "credits.remaining"},
		"UnknownInterval": {`"credits": {"remaining": 1, "refill": {"interval": "weekly", "amount": 1, "mode": "add"}}`,
			"credits.refill.interval"},
		"UnknownMode": {`"credits": {"remaining": 1, "refill": {"interval": "daily", "amount": 1, "mode": "double"}}`,
			"credits.refill.mode"},
		"DayOfMonth32": {`"credits": {"remaining": 1, "refill": {"interval": "monthly", "amount": 1, "mode": "add", "day_of_month": 32}}`,
			"credits.refill.day_of_month"},
	} {
		t.Run(name, func(t *testing.T) {
			body := `{"project_id": "p", "name": "n", ` + tc.body + `}`
			p := problem(t, s.do(t, http.MethodPost, "/v1/api-keys", s.Admin, body), http.StatusBadRequest)
			if got := fieldsOf(p); !slices.Contains(got, tc.field) {
				t.Errorf("create: errors name %v, want %q: %v", got, tc.field, p)
			}
		})
	}
	if l := expect(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=p", s.Admin, nil), http.StatusOK).list(t); len(l) != 0 {
		t.Fatalf("%d keys stored after rejected creates", len(l))
	}
	// PATCH takes the same rules and changes nothing when it refuses.
	k := s.create(t, s.Admin, map[string]any{"project_id": "p", "name": "n", "credits": map[string]any{"remaining": 5}})
	p := problem(t, s.do(t, http.MethodPatch, "/v1/api-keys/"+k.ID, s.Admin, `{"ratelimits": [`+lim("a", 0, 1000)+`], "credits": {"remaining": -1}}`), http.StatusBadRequest)
	if got := fieldsOf(p); !slices.Contains(got, "ratelimits[0].limit") || !slices.Contains(got, "credits.remaining") {
		t.Errorf("patch: errors name %v", got)
	}
	if got := s.remaining(t, k.ID); got != 5 {
		t.Fatalf("remaining after a refused patch: %d", got)
	}
	// Cost out of range is 400 on verify, and spends nothing.
	for _, cost := range []string{"-1", "1000001", "1.5", `"1"`} {
		p := problem(t, s.do(t, http.MethodPost, "/v1/api-keys/verify", s.Admin, `{"key": "`+k.Secret+`", "cost": `+cost+`}`), http.StatusBadRequest)
		if got := fieldsOf(p); !slices.Contains(got, "cost") {
			t.Errorf("cost %s: errors name %v", cost, got)
		}
	}
	if got := s.remaining(t, k.ID); got != 5 {
		t.Fatalf("remaining after refused verifies: %d", got)
	}
	// A valid PATCH redefines limits and credits; null removes them.
	got := expect(t, s.do(t, http.MethodPatch, "/v1/api-keys/"+k.ID, s.Admin, `{"ratelimits": [`+lim("a", 5, 1000)+`], "credits": {"remaining": 50, "refill": {"interval": "monthly", "amount": 50, "mode": "replace", "day_of_month": 31}}}`), http.StatusOK).object(t)
	c, _ := got["credits"].(map[string]any)
	if c["remaining"] != 50.0 || c["next_refill_at"] == nil || c["refill"].(map[string]any)["day_of_month"] != 31.0 {
		t.Fatalf("patched credits: %v", got["credits"])
	}
	got = expect(t, s.do(t, http.MethodPatch, "/v1/api-keys/"+k.ID, s.Admin, `{"ratelimits": null, "credits": null}`), http.StatusOK).object(t)
	if got["ratelimits"] != nil || got["credits"] != nil {
		t.Fatalf("after null: ratelimits %v credits %v", got["ratelimits"], got["credits"])
	}
	if v := s.verify(t, s.Admin, map[string]any{"key": k.Secret}); v["code"] != "VALID" || v["ratelimits"] != nil {
		t.Fatalf("verify of a key without usage control: %v", v)
	}
}

// TestUsageOwnerShares: two keys of one owner share its 5 credits and its
// rate limit exactly, and the owner is all or nothing with each key's own.
func TestUsageOwnerShares(t *testing.T) {
	s := startServer(t)
	path := "/v1/projects/p1/owners/acme"
	o := expect(t, s.do(t, http.MethodPut, path, s.Admin, map[string]any{
		"credits": map[string]any{"remaining": 5}, "meta": map[string]any{"plan": "pro"}}), http.StatusOK).object(t)
	if c, _ := o["credits"].(map[string]any); c["remaining"] != 5.0 || o["owner_id"] != "acme" {
		t.Fatalf("PUT owner: %v", o)
	}
	a := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "a", "owner_id": "acme"})
	b := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "b", "owner_id": "acme"})
	var wg sync.WaitGroup
	var ca, cb map[string]int
	wg.Add(2)
	go func() { defer wg.Done(); ca = s.verifyMany(t, s.Admin, 8, map[string]any{"key": a.Secret}) }()
	go func() { defer wg.Done(); cb = s.verifyMany(t, s.Admin, 8, map[string]any{"key": b.Secret}) }()
	wg.Wait()
	if ca["VALID"]+cb["VALID"] != 5 || ca["USAGE_EXCEEDED"]+cb["USAGE_EXCEEDED"] != 11 {
		t.Fatalf("two keys of one owner with 5 credits: a %v, b %v", ca, cb)
	}
	v := s.verify(t, s.Admin, map[string]any{"key": a.Secret, "cost": 0})
	owner, _ := v["owner"].(map[string]any)
	if v["code"] != "VALID" || owner["id"] != "acme" || owner["meta"].(map[string]any)["plan"] != "pro" ||
		owner["credits"].(map[string]any)["remaining"] != 0.0 {
		t.Fatalf("verify answer's owner: %v", v)
	}
	got := expect(t, s.do(t, http.MethodGet, path, s.Admin, nil), http.StatusOK).object(t)
	if got["credits"].(map[string]any)["remaining"] != 0.0 {
		t.Fatalf("GET owner after spending: %v", got)
	}
	// All or nothing: a key with its own 3 credits under an owner with
	// a limit of 2 spends 2 of them, then is refused by the owner's limit
	// and keeps the third.
	expect(t, s.do(t, http.MethodPut, "/v1/projects/p1/owners/beta", s.Admin, map[string]any{
		"ratelimits": []map[string]any{{"name": "shared", "limit": 2, "duration_ms": 3600000}}}), http.StatusOK)
	c := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "c", "owner_id": "beta", "credits": map[string]any{"remaining": 3}})
	if codes := s.verifyMany(t, s.Admin, 4, map[string]any{"key": c.Secret}); codes["VALID"] != 2 || codes["RATE_LIMITED"] != 2 {
		t.Fatalf("owner limit 2 over a key's 3 credits: %v", codes)
	}
	if got := s.remaining(t, c.ID); got != 1 {
		t.Fatalf("the key's own credits after the owner refused: %d, want 1", got)
	}
	// Validation names the field; another project is not the caller's.
	p := problem(t, s.do(t, http.MethodPut, path, s.Admin, map[string]any{"credits": map[string]any{"remaining": -1}}), http.StatusBadRequest)
	if got := fieldsOf(p); !slices.Contains(got, "credits.remaining") {
		t.Fatalf("bad owner credits: %v", got)
	}
	problem(t, s.do(t, http.MethodPut, "/v1/projects/p1/owners/bad%20id", s.Admin, map[string]any{}), http.StatusBadRequest)
	reader := s.create(t, s.Admin, map[string]any{"project_id": "p2", "name": "r", "scopes": []string{"api-keys:write"}})
	problem(t, s.do(t, http.MethodGet, path, reader.Secret, nil), http.StatusForbidden)
	// DELETE: the keys are limited by their own allowances alone.
	expect(t, s.do(t, http.MethodDelete, path, s.Admin, nil), http.StatusNoContent)
	expect(t, s.do(t, http.MethodDelete, path, s.Admin, nil), http.StatusNoContent)
	problem(t, s.do(t, http.MethodGet, path, s.Admin, nil), http.StatusNotFound)
	if v := s.verify(t, s.Admin, map[string]any{"key": a.Secret}); v["code"] != "VALID" || v["owner"] != nil {
		t.Fatalf("after DELETE owner: %v", v)
	}
	// Audited: the two PUTs that were taken, the first DELETE (the second
	// deleted none), by the admin, naming the owner and no key.
	for action, owners := range map[string][]any{"owner.updated": {"beta", "acme"}, "owner.deleted": {"acme"}} {
		events := expect(t, s.do(t, http.MethodGet, "/v1/audit-events?project_id=p1&action="+action, s.Admin, nil), http.StatusOK).list(t)
		var got []any
		for _, e := range events {
			if e["key_id"] != nil || e["actor"].(map[string]any)["type"] != "admin" {
				t.Errorf("%s event: %v", action, e)
			}
			got = append(got, e["details"].(map[string]any)["owner_id"])
		}
		if !slices.Equal(got, owners) {
			t.Errorf("%s events of owners %v, want %v", action, got, owners)
		}
	}
}

// TestUsageImport: imported keys carry rate limits and credits too.
func TestUsageImport(t *testing.T) {
	s := startServer(t)
	secret := "legacy-" + randomHex(t, 16)
	secrets.add("API key", secret)
	p := problem(t, s.do(t, http.MethodPost, "/v1/api-keys/import", s.Admin, map[string]any{"project_id": "p1",
		"keys": []map[string]any{{"name": "legacy", "key": secret, "credits": map[string]any{"remaining": -1}}}}), http.StatusBadRequest)
	if got := fieldsOf(p); !slices.Contains(got, "keys[0].credits.remaining") {
		t.Fatalf("bad import: %v", got)
	}
	expect(t, s.do(t, http.MethodPost, "/v1/api-keys/import", s.Admin, map[string]any{"project_id": "p1",
		"keys": []map[string]any{{"name": "legacy", "key": secret, "credits": map[string]any{"remaining": 2},
			"ratelimits": []map[string]any{{"name": "burst", "limit": 5, "duration_ms": 60000}}}}}), http.StatusCreated)
	if codes := s.verifyMany(t, s.Admin, 3, map[string]any{"key": secret}); codes["VALID"] != 2 || codes["USAGE_EXCEEDED"] != 1 {
		t.Fatalf("3 verifies of an imported key with 2 credits: %v", codes)
	}
}
