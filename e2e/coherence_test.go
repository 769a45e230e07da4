package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/internal/latency"
	"github.com/apikeyd/apikeyd/postgres/pgtest"
)

// propagationLimit is how long a change may take to reach another
// replica's index before a coherence test fails. The target is 50 ms at
// the 99th percentile (scripts/bench-propagation measures it); the limit is
// far above it so that three race-instrumented replicas polled as fast as
// they answer on a busy 2-core machine do not fail the suite, yet far
// below the 10 s of a periodic reconciliation, so that a broken
// notification path does.
const propagationLimit = time.Second

// verifyUntil asks s to verify body again and again, as fast as it
// answers, until done accepts an answer or limit passes, and returns when
// the accepted answer arrived. Every answer must be 200 and accepted by ok.
func (s *server) verifyUntil(body map[string]any, limit time.Duration, done, ok func(v map[string]any) bool) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for {
		r, err := s.try(http.MethodPost, "/v1/api-keys/verify", s.Admin, body)
		if err != nil {
			return time.Time{}, err
		}
		at := time.Now()
		var v map[string]any
		if r.Status != http.StatusOK || json.Unmarshal(r.Body, &v) != nil {
			return time.Time{}, fmt.Errorf("verify: %d %s", r.Status, r.Body)
		}
		if done(v) {
			return at, nil
		}
		if !ok(v) {
			return time.Time{}, fmt.Errorf("unexpected verdict %v", v)
		}
		if at.After(deadline) {
			return time.Time{}, fmt.Errorf("no change after %v: %v", limit, v)
		}
	}
}

// code returns an answer check for a verdict code.
func code(want string) func(v map[string]any) bool {
	return func(v map[string]any) bool { return v["code"] == want }
}

// spread measures, on each observer, the time from changed (the change's
// answer) to the first verification answering as done, while every answer
// before it says was. It fails the test on any other answer.
func spread(t *testing.T, observers []*server, body map[string]any, changed time.Time, done, was func(v map[string]any) bool) []time.Duration {
	t.Helper()
	out := make([]time.Duration, len(observers))
	errs := make([]error, len(observers))
	var wg sync.WaitGroup
	for i, s := range observers {
		wg.Go(func() {
			at, err := s.verifyUntil(body, 10*time.Second, done, was)
			out[i], errs[i] = at.Sub(changed), err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return out
}

// summary is p50, p99 and max of ds, rounded for the log.
func summary(ds []time.Duration) string {
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	return fmt.Sprintf("p50 %v, p99 %v, max %v over %d", r(latency.Percentile(ds, 50)), r(latency.Percentile(ds, 99)), r(slices.Max(ds)), len(ds))
}

// TestReplicasPropagate revokes, narrows and rotates keys on one replica
// and measures how soon the other two answer accordingly: a revocation on
// B reaches A and C within propagationLimit at the 99th percentile, over 30
// trials. Keys one replica creates verify on the others at once, however
// many unknown keys they have been asked about before.
func TestReplicasPropagate(t *testing.T) {
	rs := startReplicas(t, 3)
	a, b, c := rs[0], rs[1], rs[2]
	scopes := []string{"orders:read", "orders:write"}

	t.Run("Revoke", func(t *testing.T) {
		const trials = 30
		var lat []time.Duration
		for range trials {
			k := a.create(t, a.Admin, map[string]any{"project_id": "p1", "name": "revoke me", "scopes": scopes})
			body := map[string]any{"key": k.Secret}
			for _, s := range rs {
				if v := s.verify(t, s.Admin, body); v["code"] != "VALID" {
					t.Fatalf("before the revocation: %v", v)
				}
			}
			expect(t, b.do(t, http.MethodDelete, "/v1/api-keys/"+k.ID, b.Admin, nil), http.StatusNoContent)
			revoked := time.Now()
			lat = append(lat, spread(t, []*server{a, c}, body, revoked, code("REVOKED"), code("VALID"))...)
		}
		t.Logf("revocation on B seen by A and C: %s", summary(lat))
		if p99 := latency.Percentile(lat, 99); p99 > propagationLimit {
			t.Errorf("p99 %v over %d trials, want at most %v", p99, trials, propagationLimit)
		}
	})

	t.Run("PatchScopes", func(t *testing.T) {
		var lat []time.Duration
		for range 10 {
			k := c.create(t, c.Admin, map[string]any{"project_id": "p1", "name": "narrow me", "scopes": scopes})
			body := map[string]any{"key": k.Secret, "scopes": []string{"orders:write"}}
			for _, s := range rs {
				if v := s.verify(t, s.Admin, body); v["code"] != "VALID" {
					t.Fatalf("before the patch: %v", v)
				}
			}
			expect(t, b.do(t, http.MethodPatch, "/v1/api-keys/"+k.ID, b.Admin, map[string]any{"scopes": []string{"orders:read"}}), http.StatusOK)
			patched := time.Now()
			lat = append(lat, spread(t, []*server{a, c}, body, patched, code("INSUFFICIENT_SCOPE"), code("VALID"))...)
		}
		t.Logf("narrowed scopes on B seen by A and C: %s", summary(lat))
		if p99 := latency.Percentile(lat, 99); p99 > propagationLimit {
			t.Errorf("p99 %v, want at most %v", p99, propagationLimit)
		}
	})

	t.Run("Rotate", func(t *testing.T) {
		var lat []time.Duration
		for range 10 {
			k := a.create(t, a.Admin, map[string]any{"project_id": "p1", "name": "rotate me", "scopes": scopes})
			for _, s := range rs {
				if v := s.verify(t, s.Admin, map[string]any{"key": k.Secret}); v["code"] != "VALID" {
					t.Fatalf("before the rotation: %v", v)
				}
			}
			r := expect(t, c.do(t, http.MethodPost, "/v1/api-keys/"+k.ID+"/rotate", c.Admin, map[string]any{"grace_period_minutes": 0}), http.StatusCreated).object(t)
			rotated := time.Now()
			replacement := r["key"].(string)
			secrets.add("API key", replacement)
			lat = append(lat, spread(t, []*server{a, b}, map[string]any{"key": k.Secret}, rotated, code("ROTATED"), code("VALID"))...)
			// The replacement, made on C, works on A and B at once.
			for _, s := range []*server{a, b} {
				if v := s.verify(t, s.Admin, map[string]any{"key": replacement, "scopes": scopes}); v["code"] != "VALID" || v["key_id"] != r["new_key_id"] {
					t.Errorf("the replacement: %v", v)
				}
			}
		}
		t.Logf("rotation on C seen by A and B: %s", summary(lat))
		if p99 := latency.Percentile(lat, 99); p99 > propagationLimit {
			t.Errorf("p99 %v, want at most %v", p99, propagationLimit)
		}
	})

	t.Run("NegativeCache", func(t *testing.T) {
		// A has been asked about many keys nobody holds…
		for range 200 {
			unknown, err := apikey.GenerateKey("sk")
			if err != nil {
				t.Fatal(err)
			}
			if v := a.verify(t, a.Admin, map[string]any{"key": unknown.Plaintext}); v["code"] != "NOT_FOUND" {
				t.Fatalf("an unknown key: %v", v)
			}
		}
		// …and still knows at once the keys B creates.
		for range 10 {
			k := b.create(t, b.Admin, map[string]any{"project_id": "p1", "name": "new on b"})
			if v := a.verify(t, a.Admin, map[string]any{"key": k.Secret}); v["code"] != "VALID" || v["key_id"] != k.ID {
				t.Fatalf("a key created on B, verified on A: %v", v)
			}
		}
	})

	t.Run("Bearer", func(t *testing.T) {
		k := a.create(t, a.Admin, map[string]any{"project_id": "p1", "name": "reader", "scopes": []string{"api-keys:read"}})
		expect(t, c.do(t, http.MethodGet, "/v1/api-keys/"+k.ID, k.Secret, nil), http.StatusOK)
		expect(t, b.do(t, http.MethodDelete, "/v1/api-keys/"+k.ID, b.Admin, nil), http.StatusNoContent)
		waitFor(t, propagationLimit, "the revoked bearer key to be refused on A and C", func() bool {
			return a.do(t, http.MethodGet, "/v1/api-keys/"+k.ID, k.Secret, nil).Status == http.StatusUnauthorized &&
				c.do(t, http.MethodGet, "/v1/api-keys/"+k.ID, k.Secret, nil).Status == http.StatusUnauthorized
		})
	})
}

// listenerPID returns the backend PID of the last listening connection
// the server logged.
func listenerPID(t *testing.T, s *server) int {
	t.Helper()
	pid := 0
	for _, line := range strings.Split(s.out.String(), "\n") {
		var l struct {
			Msg        string `json:"msg"`
			BackendPID int    `json:"backend_pid"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "following key changes" {
			pid = l.BackendPID
		}
	}
	if pid == 0 {
		t.Fatalf("the server logged no listening connection\n%s", s.out)
	}
	return pid
}

// TestReplicaCutOff cuts replica A off from the key change notifications —
// its listening connection is terminated and the database accepts no new
// connection — while B revokes a key through a connection it holds. A
// answers VALID from memory for at most the staleness bound after it last
// confirmed coherence, then 503, never VALID again; its /readyz is 503
// from the loss on. Once the database lets it back in, A reads what it
// missed: REVOKED, and ready, within resumeWithin.
func TestReplicaCutOff(t *testing.T) {
	const bound = time.Second
	rs := startReplicas(t, 3, withArgs("--max-staleness", bound.String()))
	a, b, c := rs[0], rs[1], rs[2]
	base := pgtest.URL(t)
	k := b.create(t, b.Admin, map[string]any{"project_id": "p1", "name": "revoked while A is cut off"})
	body := map[string]any{"key": k.Secret}
	for _, s := range rs {
		if v := s.verify(t, s.Admin, body); v["code"] != "VALID" {
			t.Fatalf("before the cut: %v", v)
		}
	}

	u, err := url.Parse(a.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	pgtest.Exec(t, base, `ALTER DATABASE "`+db+`" ALLOW_CONNECTIONS false`)
	allowed := false
	allow := func() {
		if !allowed {
			pgtest.Exec(t, base, `ALTER DATABASE "`+db+`" ALLOW_CONNECTIONS true`)
			allowed = true
		}
	}
	t.Cleanup(allow)
	cut := time.Now()
	pgtest.Exec(t, base, fmt.Sprintf("SELECT pg_terminate_backend(%d)", listenerPID(t, a)))
	expect(t, b.do(t, http.MethodDelete, "/v1/api-keys/"+k.ID, b.Admin, nil), http.StatusNoContent)
	if v := c.verify(t, c.Admin, body); v["code"] != "REVOKED" {
		// C's notification may still be on its way: give it the limit.
		if _, err := c.verifyUntil(body, propagationLimit, code("REVOKED"), code("VALID")); err != nil {
			t.Fatalf("C, still listening: %v", err)
		}
	}

	// A, cut off: VALID until the bound, then 503 until it is let back in.
	var valid, unavailable int
	var lastValid, first503 time.Time
	notReady := false
	for time.Since(cut) < bound+2*time.Second {
		sent := time.Now()
		r := a.do(t, http.MethodPost, "/v1/api-keys/verify", a.Admin, body)
		switch {
		case r.Status == http.StatusOK && r.object(t)["code"] == "VALID":
			valid++
			lastValid = sent
			if !first503.IsZero() {
				t.Fatalf("VALID again %v after the cut, after a 503", sent.Sub(cut))
			}
		case r.Status == http.StatusServiceUnavailable:
			problem(t, r, http.StatusServiceUnavailable)
			if first503.IsZero() {
				first503 = sent
			}
			unavailable++
		default:
			t.Fatalf("%v after the cut: %d %s", sent.Sub(cut), r.Status, r.Body)
		}
		if a.do(t, http.MethodGet, "/readyz", "", nil).Status == http.StatusServiceUnavailable {
			notReady = true
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("A cut off: %d VALID (the last sent %v after the cut), then %d 503 (the first sent %v after the cut)",
		valid, lastValid.Sub(cut).Round(time.Millisecond), unavailable, first503.Sub(cut).Round(time.Millisecond))
	// The last confirmation came before the cut: with half a second for
	// timers on a busy machine, no VALID was sent past the bound.
	if !lastValid.IsZero() && lastValid.Sub(cut) > bound+500*time.Millisecond {
		t.Errorf("VALID for a request sent %v after the cut, beyond the bound of %v", lastValid.Sub(cut), bound)
	}
	if unavailable == 0 {
		t.Error("A never answered 503 while cut off")
	}
	if !notReady {
		t.Error("A's /readyz never said 503 while cut off")
	}

	allow()
	back := time.Now()
	waitFor(t, resumeWithin, "A to answer REVOKED and be ready", func() bool {
		r := a.do(t, http.MethodPost, "/v1/api-keys/verify", a.Admin, body)
		return r.Status == http.StatusOK && r.object(t)["code"] == "REVOKED" &&
			a.do(t, http.MethodGet, "/readyz", "", nil).Status == http.StatusOK
	})
	t.Logf("A answers REVOKED and is ready %v after connections were allowed again", time.Since(back).Round(time.Millisecond))
}
