package e2e

import (
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"
)

// verifyAcross runs n verifies of body spread evenly over the replicas,
// all at once, and returns how many got each code.
func verifyAcross(t *testing.T, rs []*server, n int, body map[string]any) map[string]int {
	t.Helper()
	var mu sync.Mutex
	total := map[string]int{}
	var wg sync.WaitGroup
	for i, s := range rs {
		share := n / len(rs)
		if i < n%len(rs) {
			share++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes := s.verifyMany(t, s.Admin, share, body)
			mu.Lock()
			for c, k := range codes {
				total[c] += k
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return total
}

// TestReplicasRateLimit: three replicas on one database, under demand of
// three times a limit within one window, admit no more than the limit
// (docs/limits.md: the grants of any window never exceed it) and at least
// 0.9 × of it.
func TestReplicasRateLimit(t *testing.T) {
	rs := startReplicas(t, 3)
	for _, l := range []struct {
		name     string
		limit    int
		duration int
	}{
		// Granted slice by slice: an hour's slices last 6 minutes.
		{"per_hour", 150, 3600000},
		// Far from full at first, so granted in spans (docs/limits.md)
		// until less than half the window is free.
		{"per_minute", 600, 60000},
	} {
		k := rs[0].create(t, rs[0].Admin, map[string]any{"project_id": "p1", "name": "shared limit",
			"ratelimits": []map[string]any{{"name": l.name, "limit": l.limit, "duration_ms": l.duration}}})
		codes := verifyAcross(t, rs, 3*l.limit, map[string]any{"key": k.Secret})
		t.Logf("3 replicas, %d verifies on limit %d per %d ms: %v", 3*l.limit, l.limit, l.duration, codes)
		if codes["VALID"] > l.limit || codes["VALID"] < l.limit*9/10 {
			t.Errorf("admitted %d of limit %d, want between 0.9 × and 1 ×", codes["VALID"], l.limit)
		}
		if codes["VALID"]+codes["RATE_LIMITED"] != 3*l.limit {
			t.Errorf("codes %v", codes)
		}
	}
}

// TestReplicasCredits: three replicas never admit more than the balance,
// and after SIGTERM of all of them remaining + admitted = the start; after
// SIGKILL of one, what is lost is at most what it held, bounded by
// APIKEYD_CREDIT_SLICE_MAX (docs/limits.md).
func TestReplicasCredits(t *testing.T) {
	const sliceMax = 40
	rs := startReplicas(t, 3, withArgs("--credit-slice-max", "40"))
	a := rs[0]
	over := a.create(t, a.Admin, map[string]any{"project_id": "p1", "name": "overspent?", "credits": map[string]any{"remaining": 200}})
	codes := verifyAcross(t, rs, 300, map[string]any{"key": over.Secret})
	t.Logf("300 verifies on 200 credits: %v", codes)
	if codes["VALID"] > 200 {
		t.Fatalf("admitted %d verifies on 200 credits", codes["VALID"])
	}

	// SIGTERM of all: every held slice is handed back.
	const start = 1000
	k := a.create(t, a.Admin, map[string]any{"project_id": "p1", "name": "terminated", "credits": map[string]any{"remaining": start}})
	codes = verifyAcross(t, rs, 240, map[string]any{"key": k.Secret})
	if codes["VALID"] != 240 {
		t.Fatalf("240 verifies on %d credits: %v", start, codes)
	}
	for _, s := range rs {
		s.restart(syscall.SIGTERM)
	}
	if got := a.remaining(t, k.ID); got+240 != start {
		t.Fatalf("after SIGTERM of every replica: remaining %d + admitted 240 = %d, want %d", got, got+240, start)
	}

	// SIGKILL of one: its slice is lost, nothing else.
	k2 := a.create(t, a.Admin, map[string]any{"project_id": "p1", "name": "killed", "credits": map[string]any{"remaining": start}})
	codes = verifyAcross(t, rs, 150, map[string]any{"key": k2.Secret})
	if codes["VALID"] != 150 {
		t.Fatalf("150 verifies on %d credits: %v", start, codes)
	}
	if err := rs[2].stop(syscall.SIGKILL); err == nil {
		t.Fatal("SIGKILL: the process exited cleanly")
	}
	rs[1].restart(syscall.SIGTERM)
	// The dead replica's lease is reaped once its heartbeat is 30 s old
	// (apikey.LeaseStaleAfter); until then the balance counts it.
	deadline := time.Now().Add(90 * time.Second)
	var got int64
	for {
		got = a.remaining(t, k2.ID)
		if got <= start-150 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	lost := start - 150 - got
	t.Logf("SIGKILL of one replica lost %d credits (bound %d)", lost, sliceMax)
	if lost < 0 || lost > sliceMax {
		t.Fatalf("after SIGKILL: remaining %d, admitted 150 of %d: lost %d, want 0–%d", got, start, lost, sliceMax)
	}
	// The survivors go on spending the rest exactly.
	if c := verifyAcross(t, rs[:2], 10, map[string]any{"key": k2.Secret}); c["VALID"] != 10 {
		t.Fatalf("after the kill: %v", c)
	}
	expect(t, a.do(t, http.MethodGet, "/v1/api-keys/"+k2.ID, a.Admin, nil), http.StatusOK)
}
