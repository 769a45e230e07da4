package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/service"
)

// spendAll verifies key until it is USAGE_EXCEEDED and returns how many
// verifies were VALID (at most limit, else the test fails).
func spendAll(t *testing.T, svc *service.Service, key string, limit int) int {
	t.Helper()
	for n := 0; n <= limit; n++ {
		if code := verdict(t, svc, key); code != apikey.CodeValid {
			if code != apikey.CodeUsageExceeded {
				t.Fatalf("after %d VALID: %s", n, code)
			}
			return n
		}
	}
	t.Fatalf("more than %d VALID", limit)
	return 0
}

// TestRefillCalendar refills balances on an injected clock: monthly on
// the 31st (the last day of February, then the 31st of March) and daily
// across a month end, replace and add, each exactly once per period.
func TestRefillCalendar(t *testing.T) {
	svc, c := newService(t)
	set := func(at time.Time) { c.mu.Lock(); c.t = at; c.mu.Unlock() }
	day := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }
	set(day(2031, time.January, 30, 12))
	monthly, err := svc.Create(context.Background(), apikey.AdminPrincipal, service.CreateInput{ProjectID: "p", Name: "monthly",
		Credits: &apikey.Credits{Remaining: 3, Refill: &apikey.Refill{Interval: apikey.RefillMonthly, Amount: 4, Mode: apikey.RefillReplace, DayOfMonth: 31}}})
	if err != nil {
		t.Fatal(err)
	}
	daily, err := svc.Create(context.Background(), apikey.AdminPrincipal, service.CreateInput{ProjectID: "p", Name: "daily",
		Credits: &apikey.Credits{Remaining: 1, Refill: &apikey.Refill{Interval: apikey.RefillDaily, Amount: 2, Mode: apikey.RefillAdd}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		at             time.Time
		monthly, daily int // VALID verifies until the balance is spent
	}{
		{day(2031, time.January, 30, 12), 3, 1},
		{day(2031, time.January, 30, 23), 0, 0},   // nothing falls before midnight
		{day(2031, time.January, 31, 0), 4, 2},    // the 31st; a day
		{day(2031, time.February, 1, 0), 0, 2},    // across the month end
		{day(2031, time.February, 27, 23), 0, 52}, // add: 26 days passed, 26 refills at once
		{day(2031, time.February, 28, 0), 4, 2},   // the 31st falls on the 28th
		{day(2031, time.March, 1, 0), 0, 2},
		{day(2031, time.March, 30, 23), 0, 58},
		{day(2031, time.March, 31, 0), 4, 2},
	} {
		set(step.at)
		if got := spendAll(t, svc, monthly.Plaintext, 100); got != step.monthly {
			t.Errorf("%s: monthly key spent %d, want %d", step.at, got, step.monthly)
		}
		if got := spendAll(t, svc, daily.Plaintext, 100); got != step.daily {
			t.Errorf("%s: daily key spent %d, want %d", step.at, got, step.daily)
		}
	}
	k, err := svc.Get(context.Background(), apikey.AdminPrincipal, monthly.Key.ID)
	if err != nil {
		t.Fatal(err)
	}
	cr, err := svc.Credits(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	if want := day(2031, time.April, 30, 0); !cr.NextRefillAt.Equal(want) || cr.Remaining != 0 {
		t.Fatalf("monthly credits: %+v, want 0 left and the next refill at %s", cr, want)
	}
}
