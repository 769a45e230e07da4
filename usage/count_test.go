package usage_test

import (
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/usage"
)

func TestCounter(t *testing.T) {
	s := openStore(t)
	c := newClock()
	counter := usage.NewCounter(c.now)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 25 {
				counter.Count("k1", "p", "prod", "o", "VALID", 2)
			}
			counter.Count("k1", "p", "prod", "o", "RATE_LIMITED", 0)
		})
	}
	wg.Wait()
	if err := counter.Flush(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	c.add(time.Hour)
	counter.Count("k1", "p", "prod", "o", "VALID", 1)
	if err := counter.Flush(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if err := counter.Flush(t.Context(), s); err != nil { // nothing new: no double count
		t.Fatal(err)
	}
	got, err := s.Usage(t.Context(), apikey.UsageFilter{KeyID: "k1", From: start.Add(-time.Hour), To: start.Add(2 * time.Hour), Granularity: apikey.UsageHour})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Counts["VALID"] != 100 || got[0].Counts["RATE_LIMITED"] != 4 || got[0].CreditsSpent != 200 ||
		got[1].Counts["VALID"] != 1 || got[1].CreditsSpent != 1 {
		t.Errorf("usage %+v", got)
	}
}

func BenchmarkCount(b *testing.B) {
	counter := usage.NewCounter(newClock().now)
	b.ReportAllocs()
	for b.Loop() {
		counter.Count("key_01HX", "proj_01HX", "production", "user_42", "VALID", 1)
	}
}
