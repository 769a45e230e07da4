package postgres_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/postgres"
	"github.com/apikeyd/apikeyd/postgres/pgtest"
	"github.com/apikeyd/apikeyd/usage"
)

// TestUsageReplicas runs three replicas as they are deployed — each its own
// store (connection pool) and engine on one database — spending one key's
// rate limit and balance at once: no window of the limit holds more than
// the limit, no more credits are admitted than the balance, and after all
// closed (SIGTERM), remaining + admitted is the starting balance.
func TestUsageReplicas(t *testing.T) {
	dbURL := pgtest.Schema(t)
	t.Parallel()
	const replicas, steps, balance = 3, 100, 120
	l := apikey.RateLimit{Name: "burst", Limit: 15, DurationMS: 1000}
	start := time.Date(2031, 3, 4, 5, 6, 0, 0, time.UTC)
	stores := make([]*postgres.Store, replicas)
	for i := range stores {
		s, err := postgres.Open(t.Context(), dbURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	err := stores[0].Update(t.Context(), func(tx apikey.Tx) error {
		return tx.(apikey.UsageTx).PutBalance(t.Context(), "key:r", &apikey.Credits{Remaining: balance}, start)
	})
	if err != nil {
		t.Fatal(err)
	}
	var admitted atomic.Int64
	perSlice := map[int64]int64{}
	var mu sync.Mutex
	engines := make([]*usage.Engine, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		var now atomic.Int64
		now.Store(start.UnixMicro())
		e := usage.New(usage.Config{Reserver: stores[i], ReplicaID: fmt.Sprint("replica-", i), Shared: true, CreditSliceMax: 10,
			Now: func() time.Time { return time.UnixMicro(now.Load()).UTC() }})
		engines[i] = e
		if _, err := e.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			subjects := []usage.Subject{{ID: "key:r", Limits: []apikey.RateLimit{l}, Credits: true}}
			var d usage.Decision
			for step := range steps {
				at := start.Add(time.Duration(step*25) * time.Millisecond)
				now.Store(at.UnixMicro())
				if err := e.Admit(t.Context(), 1, subjects, &d); err != nil {
					t.Error(err)
					return
				}
				if d.Outcome == usage.Admitted {
					admitted.Add(1)
					_, cur := l.Window(at)
					mu.Lock()
					perSlice[cur]++
					mu.Unlock()
				}
				if step%8 == 7 {
					if _, err := e.Flush(t.Context()); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	for cur := range perSlice {
		var sum int64
		for k := cur - apikey.WindowSlices; k <= cur; k++ {
			sum += perSlice[k]
		}
		if sum > l.Limit {
			t.Errorf("slices up to %d hold %d admissions, limit %d", cur, sum, l.Limit)
		}
	}
	if n := admitted.Load(); n > balance {
		t.Errorf("admitted %d of a balance of %d", n, balance)
	}
	for _, e := range engines {
		if _, err := e.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	c, err := stores[1].Balance(t.Context(), "key:r", start)
	if err != nil {
		t.Fatal(err)
	}
	if c.Remaining+admitted.Load() != balance {
		t.Errorf("remaining %d + admitted %d ≠ %d", c.Remaining, admitted.Load(), balance)
	}
	t.Logf("admitted %d of %d asks over 2.5 s at %d per second", admitted.Load(), replicas*steps, l.Limit)
}
