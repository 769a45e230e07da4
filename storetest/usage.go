package storetest

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/usage"
)

// usageTests are the conformance tests of apikey.UsageStore and UsageTx.
var usageTests = []struct {
	name string
	fn   func(*testing.T, apikey.Store)
}{
	{"UsageGrantRate", testGrantRate},
	{"UsageGrantRateConcurrent", testGrantRateConcurrent},
	{"UsageSpanGrants", testSpanGrants},
	{"UsageSpanGrantsConcurrent", testSpanGrantsConcurrent},
	{"UsageCredits", testCredits},
	{"UsageAdjustCredits", testAdjustCredits},
	{"UsageAdjustCreditsConcurrent", testAdjustCreditsConcurrent},
	{"UsageRefill", testRefill},
	{"UsageRefillOnce", testRefillOnce},
	{"UsageReplicas", testReplicas},
	{"UsageHours", testUsageHours},
	{"UsageEngines", testUsageEngines},
	{"UsageEngineKilled", testUsageEngineKilled},
	{"UsageOwners", testOwners},
}

// testOwners puts, reads, replaces and deletes an owner's allowance.
func testOwners(t *testing.T, s apikey.Store) {
	us := usageStore(t, s)
	if _, err := us.Owner(t.Context(), "p1", "acme"); apikey.ErrorCode(err) != apikey.ENOTFOUND {
		t.Fatalf("Owner of none: %v, want ENOTFOUND", err)
	}
	o := &apikey.Owner{ProjectID: "p1", OwnerID: "acme", RateLimits: []apikey.RateLimit{{Name: "a", Limit: 5, DurationMS: 1000}},
		HasCredits: true, Meta: []byte(`{"plan":"pro"}`), CreatedAt: t0, UpdatedAt: t0}
	put := func(o *apikey.Owner) {
		t.Helper()
		if err := inUsageTx(t, s, func(tx apikey.UsageTx) error { return tx.PutOwner(t.Context(), o) }); err != nil {
			t.Fatalf("PutOwner: %v", err)
		}
	}
	put(o)
	got, err := us.Owner(t.Context(), "p1", "acme")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, o) {
		t.Fatalf("Owner = %+v, want %+v", got, o)
	}
	// Replacing keeps created_at; nil limits and meta come back nil.
	put(&apikey.Owner{ProjectID: "p1", OwnerID: "acme", CreatedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour)})
	got, err = us.Owner(t.Context(), "p1", "acme")
	if err != nil {
		t.Fatal(err)
	}
	want := &apikey.Owner{ProjectID: "p1", OwnerID: "acme", CreatedAt: t0, UpdatedAt: t0.Add(time.Hour)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("replaced Owner = %+v, want %+v", got, want)
	}
	if _, err := us.Owner(t.Context(), "p2", "acme"); apikey.ErrorCode(err) != apikey.ENOTFOUND {
		t.Fatalf("another project's owner: %v", err)
	}
	for range 2 { // deleting none is no error
		if err := inUsageTx(t, s, func(tx apikey.UsageTx) error { return tx.DeleteOwner(t.Context(), "p1", "acme") }); err != nil {
			t.Fatalf("DeleteOwner: %v", err)
		}
	}
	if _, err := us.Owner(t.Context(), "p1", "acme"); apikey.ErrorCode(err) != apikey.ENOTFOUND {
		t.Fatalf("deleted owner: %v", err)
	}
}

// usageStore returns the usage side of s.
func usageStore(t *testing.T, s apikey.Store) apikey.UsageStore {
	t.Helper()
	return s
}

// inUsageTx runs fn with the usage side of a write transaction.
func inUsageTx(t *testing.T, s apikey.Store, fn func(tx apikey.UsageTx) error) error {
	t.Helper()
	return s.Update(t.Context(), func(tx apikey.Tx) error { return fn(tx) })
}

func putBalance(t *testing.T, s apikey.Store, subject string, c *apikey.Credits, now time.Time) {
	t.Helper()
	if err := inUsageTx(t, s, func(tx apikey.UsageTx) error { return tx.PutBalance(t.Context(), subject, c, now) }); err != nil {
		t.Fatalf("PutBalance: %v", err)
	}
}

func balanceOf(t *testing.T, us apikey.UsageStore, subject string, now time.Time) *apikey.Credits {
	t.Helper()
	c, err := us.Balance(t.Context(), subject, now)
	if err != nil {
		t.Fatalf("Balance(%s): %v", subject, err)
	}
	return c
}

func grant(t *testing.T, us apikey.UsageStore, g apikey.RateGrant) apikey.RateGrantResult {
	t.Helper()
	res, err := us.GrantRate(t.Context(), g)
	if err != nil {
		t.Fatalf("GrantRate: %v", err)
	}
	return res
}

func testGrantRate(t *testing.T, s apikey.Store) {
	us := usageStore(t, s)
	l := apikey.RateLimit{Name: "per-10s", Limit: 10, DurationMS: 10_000}
	at := time.UnixMilli(t0.UnixMilli() / 1000 * 1000).UTC() // a slice boundary
	g := apikey.RateGrant{Subject: "key:a", Limit: l, At: at, Want: 1, Replicas: 3}

	// Three replicas: grants of ceil(free/6), shrinking as the window fills.
	var sizes []int64
	for range 12 {
		sizes = append(sizes, grant(t, us, g).Granted)
	}
	if want := []int64{2, 2, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0}; fmt.Sprint(sizes) != fmt.Sprint(want) {
		t.Errorf("grant sizes %v, want %v", sizes, want)
	}
	// Later in the window nothing is free either; another subject is
	// counted apart.
	if res := grant(t, us, apikey.RateGrant{Subject: "key:a", Limit: l, At: at.Add(9999 * time.Millisecond), Want: 1, Replicas: 3}); res.Granted != 0 || res.Free != 0 {
		t.Errorf("late in the window: %+v, want nothing", res)
	}
	if res := grant(t, us, apikey.RateGrant{Subject: "key:b", Limit: l, At: at, Want: 1, Replicas: 1}); res.Granted != 10 {
		t.Errorf("alone, another subject got %d, want all 10", res.Granted)
	}
	// Handing back the unspent part of a slice frees it for the window.
	res := grant(t, us, apikey.RateGrant{Subject: "key:b", Limit: l, At: at, Want: 1, Replicas: 1})
	if err := us.ReturnGrants(t.Context(), []apikey.GrantReturn{{Subject: "key:b", LimitName: l.Name, Slice: res.Slice, N: 4}, {Subject: "key:none", LimitName: "x", Slice: 1, N: 1}}); err != nil {
		t.Fatalf("ReturnGrants: %v", err)
	}
	if res := grant(t, us, apikey.RateGrant{Subject: "key:b", Limit: l, At: at.Add(time.Second), Want: 1, Replicas: 1}); res.Granted != 4 {
		t.Errorf("after handing back 4: granted %d", res.Granted)
	}
	// A grant may hand back the last slice's unspent grant on the way.
	first := grant(t, us, apikey.RateGrant{Subject: "key:r", Limit: l, At: at, Want: 1, Replicas: 1})
	ret := apikey.GrantReturn{Subject: "key:r", LimitName: l.Name, Slice: first.Slice, N: 7}
	if res := grant(t, us, apikey.RateGrant{Subject: "key:r", Limit: l, At: at.Add(time.Second), Want: 1, Replicas: 1, Return: ret}); res.Granted != 7 || res.Slice != first.Slice+1 {
		t.Errorf("grant with a hand-back of 7: %+v (first %+v)", res, first)
	}
	// A window and a slice later the first slice no longer counts (a
	// window ending on a slice's start still overlaps it).
	if res := grant(t, us, apikey.RateGrant{Subject: "key:a", Limit: l, At: at.Add(11 * time.Second), Want: 1, Replicas: 1}); res.Granted != 10 {
		t.Errorf("a window later: granted %d, want 10", res.Granted)
	}
	// A higher limit frees the difference at once; a new duration starts
	// the window afresh.
	l2 := l
	l2.Limit = 15
	if res := grant(t, us, apikey.RateGrant{Subject: "key:a", Limit: l2, At: at.Add(11 * time.Second), Want: 1, Replicas: 1}); res.Granted != 5 {
		t.Errorf("limit raised to 15: granted %d, want 5", res.Granted)
	}
	l2.DurationMS = 20_000
	if res := grant(t, us, apikey.RateGrant{Subject: "key:a", Limit: l2, At: at.Add(11 * time.Second), Want: 1, Replicas: 1}); res.Granted != 15 {
		t.Errorf("duration changed: granted %d, want 15", res.Granted)
	}
}

// testGrantRateConcurrent asks for grants from many goroutines, at
// instants spread over several windows, and checks that no window of the
// limit was granted more than the limit.
func testGrantRateConcurrent(t *testing.T, s apikey.Store) {
	us := usageStore(t, s)
	l := apikey.RateLimit{Name: "x", Limit: 7, DurationMS: 1000}
	const workers, asks = 6, 40
	granted := make(map[int64]int64) // by slice
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range asks {
				at := t0.Add(time.Duration(i*53+w*7) * time.Millisecond)
				res, err := us.GrantRate(t.Context(), apikey.RateGrant{Subject: "key:c", Limit: l, At: at, Want: 1, Replicas: workers})
				if err != nil {
					t.Errorf("GrantRate: %v", err)
					return
				}
				mu.Lock()
				granted[res.Slice] += res.Granted
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	checkWindows(t, granted, l)
}

// testSpanGrants: a span grant is granted only while the window stays
// half free, counts in every window it may be spent in, and its spends
// count only where they are narrowed to once narrowed.
func testSpanGrants(t *testing.T, s apikey.Store) {
	us := usageStore(t, s)
	l := apikey.RateLimit{Name: "per-second", Limit: 1000, DurationMS: 1000} // slices of 100 ms; SpanCap 100 alone
	at := time.UnixMilli(t0.UnixMilli() / 1000 * 1000).UTC()
	span := l.SpanSlices()
	spanAt := func(subject string, at time.Time, want int64) apikey.RateGrantResult {
		return grant(t, us, apikey.RateGrant{Subject: subject, Limit: l, At: at, Want: 1, Replicas: 1, Span: span, SpanWant: want})
	}
	first := spanAt("key:s", at, 100)
	if first.Granted != 100 || first.Last != first.Slice+span-1 || first.Free != 900 {
		t.Fatalf("span grant %+v, want 100 for %d slices, 900 free", first, span)
	}
	// Five seconds later, within its span, it still counts.
	at5 := at.Add(5 * time.Second)
	if res := spanAt("key:s", at5, 100); res.Granted != 100 || res.Free != 800 {
		t.Fatalf("second span grant %+v, want 100 with 800 free (the first one counts)", res)
	}
	if res := grant(t, us, apikey.RateGrant{Subject: "key:s", Limit: l, At: at5, Want: 1, Replicas: 2}); res.Granted != 200 || res.Last != res.Slice {
		t.Fatalf("grant of one slice %+v, want 200 (800 / 4)", res)
	}
	// A span grant that leaves half the limit free fits; the next would
	// not, and is answered with a grant of one slice of all that is free.
	if res := spanAt("key:s", at5, 100); res.Granted != 100 || res.Free != 500 {
		t.Fatalf("fourth grant %+v, want a span of 100 with 500 free", res)
	}
	if res := spanAt("key:s", at5, 100); res.Granted != 500 || res.Last != res.Slice || res.Free != 0 {
		t.Fatalf("fifth grant %+v, want 500 for its slice alone", res)
	}
	// Beyond SpanCap (a tenth of the limit), no span either.
	if res := spanAt("key:t", at, 101); res.Last != res.Slice {
		t.Errorf("span grant of 101 on a limit of 1000: %+v, want one slice", res)
	}

	// Narrowing: of a span grant of 100, 60 were spent in its first two
	// slices and 40 are handed back. In a window that holds those slices
	// the 60 count; in the next one, nothing does.
	for _, c := range []struct {
		subject string
		after   time.Duration
		want    int64
	}{{"key:n1", 1050 * time.Millisecond, 940}, {"key:n2", 1250 * time.Millisecond, 1000}} {
		g := spanAt(c.subject, at, 100)
		err := us.ReturnGrants(t.Context(), []apikey.GrantReturn{
			{Subject: c.subject, LimitName: l.Name, Slice: g.Slice, Last: g.Last, N: 60, ToSlice: g.Slice, ToLast: g.Slice + 1},
			{Subject: c.subject, LimitName: l.Name, Slice: g.Slice, Last: g.Last, N: 40},
		})
		if err != nil {
			t.Fatalf("ReturnGrants: %v", err)
		}
		if res := grant(t, us, apikey.RateGrant{Subject: c.subject, Limit: l, At: at.Add(c.after), Want: 1, Replicas: 1}); res.Granted != c.want {
			t.Errorf("%v after a span grant narrowed to its first two slices: granted %d, want %d", c.after, res.Granted, c.want)
		}
	}
}

// testSpanGrantsConcurrent asks for span grants and grants of one slice
// from many goroutines at instants spread over several windows, narrowing
// some, and checks that no window overlaps more grants than the limit.
func testSpanGrantsConcurrent(t *testing.T, s apikey.Store) {
	us := usageStore(t, s)
	l := apikey.RateLimit{Name: "x", Limit: 4000, DurationMS: 1000}
	const workers, asks = 6, 30
	type held struct{ slice, last, n int64 }
	var grants []held
	var mu sync.Mutex
	// The workers ask round by round, all of a round at once, so that
	// none runs more than a round (under a window) behind another: the
	// store tolerates replicas whose clocks differ by less than a window.
	for i := range asks {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				at := t0.Add(time.Duration(i*97+w*13) * time.Millisecond)
				// Grants of one slice take 1/40 of what is free, so that
				// windows fill slowly and span grants keep fitting for a
				// while, then stop.
				g := apikey.RateGrant{Subject: "key:c", Limit: l, At: at, Want: 1, Replicas: 20}
				if w%2 == 0 {
					g.Replicas, g.Span, g.SpanWant = 2, 30, int64(100+i*10)
				}
				res, err := us.GrantRate(t.Context(), g)
				if err != nil {
					t.Errorf("GrantRate: %v", err)
					return
				}
				if res.Granted == 0 {
					return
				}
				h := held{res.Slice, res.Last, res.Granted}
				if res.Last > res.Slice && i%3 == 0 {
					// Spent in its first two slices: narrowed there.
					r := apikey.GrantReturn{Subject: "key:c", LimitName: l.Name, Slice: res.Slice, Last: res.Last, N: res.Granted, ToSlice: res.Slice, ToLast: res.Slice + 1}
					if err := us.ReturnGrants(t.Context(), []apikey.GrantReturn{r}); err != nil {
						t.Errorf("ReturnGrants: %v", err)
						return
					}
					h.last = res.Slice + 1
				}
				mu.Lock()
				grants = append(grants, h)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	lo, hi := grants[0].slice, grants[0].last
	for _, g := range grants {
		lo, hi = min(lo, g.slice), max(hi, g.last)
	}
	spans := 0
	for a := lo - apikey.WindowSlices; a <= hi; a++ { // the window of slices a..a+10
		var sum int64
		for _, g := range grants {
			if g.slice <= a+apikey.WindowSlices && g.last >= a {
				sum += g.n
			}
		}
		if sum > l.Limit {
			t.Errorf("slices %d..%d overlap grants of %d, more than the limit %d", a, a+apikey.WindowSlices, sum, l.Limit)
		}
	}
	for _, g := range grants {
		if g.last > g.slice+1 {
			spans++
		}
	}
	if spans == 0 {
		t.Errorf("no span grant among %d grants", len(grants))
	}
}

// checkWindows fails if the counts per slice exceed the limit in some
// window: the slices first..cur of any instant.
func checkWindows(t *testing.T, perSlice map[int64]int64, l apikey.RateLimit) {
	t.Helper()
	for cur := range perSlice {
		var sum int64
		for k := cur - apikey.WindowSlices; k <= cur; k++ {
			sum += perSlice[k]
		}
		if sum > l.Limit {
			t.Errorf("slices %d..%d hold %d, more than the limit %d", cur-apikey.WindowSlices, cur, sum, l.Limit)
		}
	}
}

func reserve(t *testing.T, us apikey.UsageStore, r apikey.CreditReservation) apikey.CreditLease {
	t.Helper()
	lease, err := us.ReserveCredits(t.Context(), r)
	if err != nil {
		t.Fatalf("ReserveCredits: %v", err)
	}
	return lease
}

func testCredits(t *testing.T, s apikey.Store) {
	us := usageStore(t, s)
	_, err := us.ReserveCredits(t.Context(), apikey.CreditReservation{Subject: "key:none", ReplicaID: "r1", Need: 1, Replicas: 1, SliceMax: 100, Now: t0})
	checkCode(t, err, apikey.ENOTFOUND)
	_, err = us.Balance(t.Context(), "key:none", t0)
	checkCode(t, err, apikey.ENOTFOUND)

	putBalance(t, s, "key:a", &apikey.Credits{Remaining: 100}, t0)
	r := apikey.CreditReservation{Subject: "key:a", ReplicaID: "r1", Need: 1, Replicas: 1, SliceMax: 20, Now: t0}
	if lease := reserve(t, us, r); lease.Got != 20 || lease.Remaining != 80 {
		t.Errorf("first slice %+v, want 20 of 100 (capped), 80 left", lease)
	}
	r.ReplicaID, r.Replicas = "r2", 2
	if lease := reserve(t, us, r); lease.Got != 10 || lease.Remaining != 70 {
		t.Errorf("second slice %+v, want ceil(80/8) = 10, 70 left", lease)
	}
	if c := balanceOf(t, us, "key:a", t0); c.Remaining != 100 {
		t.Errorf("total %d after reservations, want 100", c.Remaining)
	}
	// r1 spent 15 of its 20 and hands back the rest; r2 spent all 10.
	if err := us.ReportSpends(t.Context(), "r1", []apikey.CreditAmount{{Subject: "key:a", N: 15}, {Subject: "key:none", N: 3}}); err != nil {
		t.Fatal(err)
	}
	if err := us.ReportSpends(t.Context(), "r2", []apikey.CreditAmount{{Subject: "key:a", N: 10}}); err != nil {
		t.Fatal(err)
	}
	if err := us.ReturnCredits(t.Context(), "r1", []apikey.CreditAmount{{Subject: "key:a", N: 9}, {Subject: "key:none", N: 1}}); err != nil {
		t.Fatal(err)
	}
	if c := balanceOf(t, us, "key:a", t0); c.Remaining != 75 {
		t.Errorf("total %d after 25 spent, want 75", c.Remaining)
	}
	// A cost larger than the slice cap takes what it needs; the last
	// credits go to whoever asks, and then nothing is left.
	r.Need, r.Replicas = 60, 1
	if lease := reserve(t, us, r); lease.Got != 60 || lease.Remaining != 15 {
		t.Errorf("big cost: %+v, want 60, 15 left", lease)
	}
	r.Need = 16
	if lease := reserve(t, us, r); lease.Got != 15 || lease.Remaining != 0 {
		t.Errorf("last credits: %+v, want 15, 0 left", lease)
	}
	if lease := reserve(t, us, r); lease.Got != 0 {
		t.Errorf("empty balance granted %d", lease.Got)
	}
	if c := balanceOf(t, us, "key:a", t0); c.Remaining != 75 {
		t.Errorf("total %d, want 75 (held in leases)", c.Remaining)
	}
	// Deleting the balance deletes its leases; returns to it vanish.
	putBalance(t, s, "key:a", nil, t0)
	if err := us.ReturnCredits(t.Context(), "r2", []apikey.CreditAmount{{Subject: "key:a", N: 5}}); err != nil {
		t.Fatal(err)
	}
	_, err = us.Balance(t.Context(), "key:a", t0)
	checkCode(t, err, apikey.ENOTFOUND)
}

func adjust(t *testing.T, s apikey.Store, subject string, op apikey.CreditOp, amount int64, now time.Time) (before, after int64) {
	t.Helper()
	err := inUsageTx(t, s, func(tx apikey.UsageTx) error {
		var err error
		before, after, err = tx.AdjustCredits(t.Context(), subject, op, amount, now)
		return err
	})
	if err != nil {
		t.Fatalf("AdjustCredits(%s %d): %v", op, amount, err)
	}
	return before, after
}

func testAdjustCredits(t *testing.T, s apikey.Store) {
	us := usageStore(t, s)
	err := inUsageTx(t, s, func(tx apikey.UsageTx) error {
		_, _, err := tx.AdjustCredits(t.Context(), "key:none", apikey.CreditIncrement, 1, t0)
		return err
	})
	checkCode(t, err, apikey.ENOTFOUND)

	putBalance(t, s, "key:a", &apikey.Credits{Remaining: 40}, t0)
	// A replica holds 10 of the 40 while the balance is changed.
	reserve(t, us, apikey.CreditReservation{Subject: "key:a", ReplicaID: "r1", Need: 1, Replicas: 1, SliceMax: 10, Now: t0})
	steps := []struct {
		op            apikey.CreditOp
		amount        int64
		before, after int64
	}{
		{apikey.CreditIncrement, 5, 40, 45},
		{apikey.CreditSet, 25, 45, 25},
		{apikey.CreditDecrement, 5, 25, 20},
		{apikey.CreditDecrement, 100, 20, 0}, // stops at 0, the lease's 10 owed
		{apikey.CreditIncrement, 3, 0, 3},
	}
	for _, st := range steps {
		if before, after := adjust(t, s, "key:a", st.op, st.amount, t0); before != st.before || after != st.after {
			t.Errorf("%s %d: %d → %d, want %d → %d", st.op, st.amount, before, after, st.before, st.after)
		}
	}
	// The replica spends 4 of its 10 and hands back 6: the debt of 10 is
	// paid by them and by the increment, leaving 3 − 4 … shown as 0.
	if err := us.ReportSpends(t.Context(), "r1", []apikey.CreditAmount{{Subject: "key:a", N: 4}}); err != nil {
		t.Fatal(err)
	}
	if err := us.ReturnCredits(t.Context(), "r1", []apikey.CreditAmount{{Subject: "key:a", N: 6}}); err != nil {
		t.Fatal(err)
	}
	if c := balanceOf(t, us, "key:a", t0); c.Remaining != 0 {
		t.Errorf("total %d, want 0 (a debt of 1)", c.Remaining)
	}
	if before, after := adjust(t, s, "key:a", apikey.CreditIncrement, 5, t0); before != 0 || after != 4 {
		t.Errorf("increment after the debt: %d → %d, want 0 → 4", before, after)
	}
	if lease := reserve(t, us, apikey.CreditReservation{Subject: "key:a", ReplicaID: "r1", Need: 1, Replicas: 1, SliceMax: 10, Now: t0}); lease.Got != 1 {
		t.Errorf("reserved %d of 4, want ceil(4/4) = 1", lease.Got)
	}
	for _, bad := range []struct {
		op     apikey.CreditOp
		amount int64
	}{{"double", 1}, {apikey.CreditSet, -1}, {apikey.CreditSet, apikey.MaxCredits + 1}} {
		err := inUsageTx(t, s, func(tx apikey.UsageTx) error {
			_, _, err := tx.AdjustCredits(t.Context(), "key:a", bad.op, bad.amount, t0)
			return err
		})
		checkCode(t, err, apikey.EINVALID)
	}
	if c := balanceOf(t, us, "key:a", t0); c.Remaining != 4 {
		t.Errorf("total %d after invalid changes, want 4", c.Remaining)
	}
}

// testAdjustCreditsConcurrent changes a balance while replicas reserve,
// spend and hand back: no update is lost, and the total is the exact
// arithmetic result.
func testAdjustCreditsConcurrent(t *testing.T, s apikey.Store) {
	us := usageStore(t, s)
	putBalance(t, s, "key:a", &apikey.Credits{Remaining: 1000}, t0)
	var spent atomic.Int64
	var wg sync.WaitGroup
	for w := range 3 {
		replica := fmt.Sprintf("r%d", w)
		wg.Go(func() {
			for range 10 {
				lease, err := us.ReserveCredits(t.Context(), apikey.CreditReservation{Subject: "key:a", ReplicaID: replica, Need: 1, Replicas: 3, SliceMax: 7, Now: t0})
				if err != nil {
					t.Error(err)
					return
				}
				use := lease.Got / 2
				spent.Add(use)
				if err := us.ReportSpends(t.Context(), replica, []apikey.CreditAmount{{Subject: "key:a", N: use}}); err != nil {
					t.Error(err)
				}
				if err := us.ReturnCredits(t.Context(), replica, []apikey.CreditAmount{{Subject: "key:a", N: lease.Got - use}}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 10 {
				adjust(t, s, "key:a", apikey.CreditIncrement, 3, t0)
				adjust(t, s, "key:a", apikey.CreditDecrement, 2, t0)
			}
		})
	}
	wg.Wait()
	if c, want := balanceOf(t, us, "key:a", t0), 1000+2*10*(3-2)-spent.Load(); c.Remaining != want {
		t.Errorf("total %d, want %d", c.Remaining, want)
	}
}

func testRefill(t *testing.T, s apikey.Store) {
	us := usageStore(t, s)
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	jan15 := day(2032, 1, 15).Add(13 * time.Hour)

	// add: three daily periods passed while nobody spent.
	putBalance(t, s, "key:daily", &apikey.Credits{Remaining: 5, Refill: &apikey.Refill{Interval: apikey.RefillDaily, Amount: 10, Mode: apikey.RefillAdd}}, jan15)
	c := balanceOf(t, us, "key:daily", jan15)
	checkEqual(t, c, &apikey.Credits{Remaining: 5, Refill: c.Refill, NextRefillAt: day(2032, 1, 16)})
	reserve(t, us, apikey.CreditReservation{Subject: "key:daily", ReplicaID: "r1", Need: 1, Replicas: 1, SliceMax: 2, Now: jan15})
	at := day(2032, 1, 18).Add(time.Hour)
	if c := balanceOf(t, us, "key:daily", at); c.Remaining != 35 || !c.RefilledAt.Equal(day(2032, 1, 18)) || !c.NextRefillAt.Equal(day(2032, 1, 19)) {
		t.Errorf("read before applying: %+v, want 35, refilled 18th, next 19th", c)
	}
	if lease := reserve(t, us, apikey.CreditReservation{Subject: "key:daily", ReplicaID: "r1", Need: 1, Replicas: 1, SliceMax: 100, Now: at}); lease.Remaining+lease.Got != 33 || !lease.NextRefillAt.Equal(day(2032, 1, 19)) {
		t.Errorf("reservation after 3 refills: %+v, want 33 unreserved before it", lease)
	}
	// Applying again at the same instant changes nothing.
	if n, err := us.ApplyRefills(t.Context(), at, 10); err != nil || n != 0 {
		t.Errorf("ApplyRefills = %d, %v; want nothing due", n, err)
	}
	if c := balanceOf(t, us, "key:daily", at); c.Remaining != 35 {
		t.Errorf("total %d, want 35", c.Remaining)
	}

	// replace, monthly on the 31st: 29 February in a leap year, then 31 March.
	putBalance(t, s, "key:monthly", &apikey.Credits{Remaining: 3, Refill: &apikey.Refill{Interval: apikey.RefillMonthly, Amount: 50, Mode: apikey.RefillReplace, DayOfMonth: 31}}, jan15)
	reserve(t, us, apikey.CreditReservation{Subject: "key:monthly", ReplicaID: "r1", Need: 1, Replicas: 1, SliceMax: 100, Now: jan15}) // holds 1
	wants := []struct {
		at        time.Time
		remaining int64
		refilled  time.Time
		next      time.Time
	}{
		{day(2032, 1, 30), 3, time.Time{}, day(2032, 1, 31)},
		{day(2032, 1, 31), 50, day(2032, 1, 31), day(2032, 2, 29)},
		{day(2032, 2, 28), 50, day(2032, 1, 31), day(2032, 2, 29)},
		{day(2032, 2, 29).Add(time.Second), 50, day(2032, 2, 29), day(2032, 3, 31)},
		{day(2032, 3, 31), 50, day(2032, 3, 31), day(2032, 4, 30)},
	}
	for _, w := range wants {
		if n, err := us.ApplyRefills(t.Context(), w.at, 10); err != nil {
			t.Fatalf("ApplyRefills: %v (%d)", err, n)
		}
		c := balanceOf(t, us, "key:monthly", w.at)
		if c.Remaining != w.remaining || !c.RefilledAt.Equal(w.refilled) || !c.NextRefillAt.Equal(w.next) {
			t.Errorf("at %v: %d, refilled %v, next %v; want %d, %v, %v", w.at, c.Remaining, c.RefilledAt, c.NextRefillAt, w.remaining, w.refilled, w.next)
		}
	}
	// Redefining the balance with the same schedule keeps its next refill;
	// another schedule starts from now.
	putBalance(t, s, "key:monthly", &apikey.Credits{Remaining: 9, Refill: &apikey.Refill{Interval: apikey.RefillMonthly, Amount: 50, Mode: apikey.RefillReplace, DayOfMonth: 31}}, day(2032, 4, 2))
	if c := balanceOf(t, us, "key:monthly", day(2032, 4, 2)); c.Remaining != 9 || !c.NextRefillAt.Equal(day(2032, 4, 30)) || !c.RefilledAt.Equal(day(2032, 3, 31)) {
		t.Errorf("redefined: %+v", c)
	}
	putBalance(t, s, "key:monthly", &apikey.Credits{Remaining: 9, Refill: &apikey.Refill{Interval: apikey.RefillMonthly, Amount: 50, Mode: apikey.RefillReplace, DayOfMonth: 1}}, day(2032, 4, 2))
	if c := balanceOf(t, us, "key:monthly", day(2032, 4, 2)); !c.NextRefillAt.Equal(day(2032, 5, 1)) {
		t.Errorf("new schedule: next %v, want 1 May", c.NextRefillAt)
	}
}

// testRefillOnce applies one due refill from many goroutines at once.
func testRefillOnce(t *testing.T, s apikey.Store) {
	us := usageStore(t, s)
	start := time.Date(2032, 1, 15, 12, 0, 0, 0, time.UTC)
	putBalance(t, s, "key:a", &apikey.Credits{Remaining: 0, Refill: &apikey.Refill{Interval: apikey.RefillDaily, Amount: 7, Mode: apikey.RefillAdd}}, start)
	at := start.Add(24 * time.Hour)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if i%2 == 0 {
				if _, err := us.ApplyRefills(t.Context(), at, 10); err != nil {
					t.Error(err)
				}
				return
			}
			if _, err := us.ReserveCredits(t.Context(), apikey.CreditReservation{Subject: "key:a", ReplicaID: fmt.Sprint("r", i), Need: 1, Replicas: 4, SliceMax: 1, Now: at}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if c := balanceOf(t, us, "key:a", at); c.Remaining != 7 {
		t.Errorf("total %d after one refill of 7", c.Remaining)
	}
}

func testReplicas(t *testing.T, s apikey.Store) {
	us := usageStore(t, s)
	beat := func(id string, at time.Time) int {
		t.Helper()
		n, err := us.Heartbeat(t.Context(), id, at)
		if err != nil {
			t.Fatalf("Heartbeat: %v", err)
		}
		return n
	}
	if n := beat("a", t0); n != 1 {
		t.Errorf("one replica: %d live", n)
	}
	if n := beat("b", t0.Add(time.Second)); n != 2 {
		t.Errorf("two replicas: %d live", n)
	}
	if n := beat("a", t0.Add(11*time.Second)); n != 1 {
		t.Errorf("b silent for 10 s: %d live, want 1", n)
	}
	putBalance(t, s, "key:a", &apikey.Credits{Remaining: 100}, t0)
	reserve(t, us, apikey.CreditReservation{Subject: "key:a", ReplicaID: "a", Need: 1, Replicas: 2, SliceMax: 5, Now: t0.Add(11 * time.Second)})
	reserve(t, us, apikey.CreditReservation{Subject: "key:a", ReplicaID: "b", Need: 1, Replicas: 2, SliceMax: 5, Now: t0.Add(time.Second)})
	if err := us.ReportSpends(t.Context(), "b", []apikey.CreditAmount{{Subject: "key:a", N: 2}}); err != nil {
		t.Fatal(err)
	}
	// b was last seen at t0+1s: 30 s later its lease (5 − 2 reported) is lost.
	if lost, err := us.ReapLeases(t.Context(), t0.Add(30*time.Second)); err != nil || lost != 0 {
		t.Errorf("ReapLeases at 30 s = %d, %v; want nothing yet", lost, err)
	}
	beat("a", t0.Add(40*time.Second))
	if lost, err := us.ReapLeases(t.Context(), t0.Add(40*time.Second)); err != nil || lost != 3 {
		t.Errorf("ReapLeases = %d, %v; want 3 lost", lost, err)
	}
	if lost, err := us.ReapLeases(t.Context(), t0.Add(40*time.Second)); err != nil || lost != 0 {
		t.Errorf("second ReapLeases = %d, %v; want 0", lost, err)
	}
	if c := balanceOf(t, us, "key:a", t0); c.Remaining != 95 {
		t.Errorf("total %d, want 100 − 2 spent − 3 lost", c.Remaining)
	}
	if n := beat("a", t0.Add(41*time.Second)); n != 1 {
		t.Errorf("after reaping: %d live", n)
	}
}

func testUsageHours(t *testing.T, s apikey.Store) {
	us := usageStore(t, s)
	h := time.Date(2032, 3, 1, 22, 0, 0, 0, time.UTC)
	count := func(key, env, owner string, at time.Time, code string, n, credits int64) apikey.UsageCount {
		return apikey.UsageCount{KeyID: key, ProjectID: "proj_a", EnvironmentID: env, OwnerID: owner, Hour: at, Code: code, Count: n, CreditsSpent: credits}
	}
	batches := [][]apikey.UsageCount{
		{count("k1", "prod", "o1", h.Add(5*time.Minute), "VALID", 3, 6), count("k1", "prod", "o1", h, "RATE_LIMITED", 1, 0)},
		{count("k1", "prod", "o1", h.Add(59*time.Minute), "VALID", 2, 2), count("k2", "dev", "", h.Add(time.Hour), "VALID", 4, 4)},
		{count("k2", "dev", "", h.Add(3*time.Hour), "USAGE_EXCEEDED", 1, 0), {KeyID: "k3", ProjectID: "proj_b", Hour: h, Code: "VALID", Count: 9}},
	}
	for _, b := range batches {
		if err := us.AddUsage(t.Context(), b); err != nil {
			t.Fatalf("AddUsage: %v", err)
		}
	}
	if err := us.AddUsage(t.Context(), nil); err != nil {
		t.Fatalf("AddUsage(nil): %v", err)
	}
	from, to := h.Add(-24*time.Hour), h.Add(24*time.Hour)
	tests := []struct {
		name string
		f    apikey.UsageFilter
		want []apikey.UsageBucket
	}{
		{"KeyHourly", apikey.UsageFilter{KeyID: "k1", From: from, To: to, Granularity: apikey.UsageHour}, []apikey.UsageBucket{
			{Start: h, Counts: map[string]int64{"VALID": 5, "RATE_LIMITED": 1}, CreditsSpent: 8},
		}},
		{"ProjectDaily", apikey.UsageFilter{ProjectID: "proj_a", From: from, To: to, Granularity: apikey.UsageDay}, []apikey.UsageBucket{
			{Start: time.Date(2032, 3, 1, 0, 0, 0, 0, time.UTC), Counts: map[string]int64{"VALID": 9, "RATE_LIMITED": 1}, CreditsSpent: 12},
			{Start: time.Date(2032, 3, 2, 0, 0, 0, 0, time.UTC), Counts: map[string]int64{"USAGE_EXCEEDED": 1}},
		}},
		{"ProjectEnvironment", apikey.UsageFilter{ProjectID: "proj_a", EnvironmentID: "dev", From: from, To: to, Granularity: apikey.UsageHour}, []apikey.UsageBucket{
			{Start: h.Add(time.Hour), Counts: map[string]int64{"VALID": 4}, CreditsSpent: 4},
			{Start: h.Add(3 * time.Hour), Counts: map[string]int64{"USAGE_EXCEEDED": 1}},
		}},
		{"ProjectOwner", apikey.UsageFilter{ProjectID: "proj_a", OwnerID: "o1", From: from, To: to, Granularity: apikey.UsageDay}, []apikey.UsageBucket{
			{Start: time.Date(2032, 3, 1, 0, 0, 0, 0, time.UTC), Counts: map[string]int64{"VALID": 5, "RATE_LIMITED": 1}, CreditsSpent: 8},
		}},
		{"RangeHalfOpen", apikey.UsageFilter{KeyID: "k2", From: h.Add(time.Hour), To: h.Add(3 * time.Hour), Granularity: apikey.UsageHour}, []apikey.UsageBucket{
			{Start: h.Add(time.Hour), Counts: map[string]int64{"VALID": 4}, CreditsSpent: 4},
		}},
		{"Nothing", apikey.UsageFilter{KeyID: "k9", From: from, To: to}, []apikey.UsageBucket{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := us.Usage(t.Context(), tt.f)
			if err != nil {
				t.Fatalf("Usage: %v", err)
			}
			checkEqual(t, got, tt.want)
		})
	}
	_, err := us.Usage(t.Context(), apikey.UsageFilter{From: from, To: to})
	checkCode(t, err, apikey.EINVALID)

	if n, err := us.PruneUsage(t.Context(), h.Add(time.Hour)); err != nil || n != 3 {
		t.Errorf("PruneUsage = %d, %v; want the 3 rows of the first hour", n, err)
	}
	if got, err := us.Usage(t.Context(), apikey.UsageFilter{ProjectID: "proj_a", From: from, To: to, Granularity: apikey.UsageDay}); err != nil || len(got) != 2 || got[0].Counts["VALID"] != 4 {
		t.Errorf("after pruning: %v, %v; want two days, 4 VALID on the first", got, err)
	}
}

// testUsageEngines runs several engines against one store, as replicas
// do: each with its own replica ID and clock, spending one key's rate
// limit and balance concurrently. In no window do they admit more than
// the limit, together they never admit more credits than the balance,
// and once all have closed, remaining + admitted is the starting balance.
func testUsageEngines(t *testing.T, s apikey.Store) {
	us := usageStore(t, s)
	const (
		replicas = 3
		steps    = 120
		balance  = 150
	)
	l := apikey.RateLimit{Name: "burst", Limit: 20, DurationMS: 2000}
	start := time.UnixMilli(t0.UnixMilli() / 1000 * 1000).UTC()
	putBalance(t, s, "key:shared", &apikey.Credits{Remaining: balance}, start)

	engines := make([]*usage.Engine, replicas)
	clocks := make([]atomic.Int64, replicas)
	for i := range engines {
		clocks[i].Store(start.UnixMicro())
		engines[i] = usage.New(usage.Config{Reserver: us, ReplicaID: fmt.Sprint("replica-", i), Shared: true, CreditSliceMax: 10,
			Now: func() time.Time { return time.UnixMicro(clocks[i].Load()).UTC() }})
		if _, err := engines[i].Flush(t.Context()); err != nil {
			t.Fatalf("Flush: %v", err)
		}
	}
	// Every replica asks twice per 50 ms of its clock for 6 s: 3 × 240
	// asks, far above 20 per 2 s; credits run out on the way.
	perSlice := make(map[int64]int64)
	var mu sync.Mutex
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for i, e := range engines {
		wg.Go(func() {
			subjects := []usage.Subject{{ID: "key:shared", Limits: []apikey.RateLimit{l}, Credits: true}}
			var d usage.Decision
			for step := range steps {
				now := start.Add(time.Duration(step*50) * time.Millisecond)
				clocks[i].Store(now.UnixMicro())
				for range 2 {
					if err := e.Admit(t.Context(), 1, subjects, &d); err != nil {
						t.Errorf("Admit: %v", err)
						return
					}
					if d.Outcome == usage.Admitted {
						admitted.Add(1)
						_, cur := l.Window(now)
						mu.Lock()
						perSlice[cur]++
						mu.Unlock()
					}
				}
				if step%10 == 9 {
					if _, err := e.Flush(t.Context()); err != nil {
						t.Errorf("Flush: %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	checkWindows(t, perSlice, l)
	if n := admitted.Load(); n > balance {
		t.Errorf("admitted %d, more than the balance %d", n, balance)
	}
	for _, e := range engines {
		if _, err := e.Close(t.Context()); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if c := balanceOf(t, us, "key:shared", start); c.Remaining+admitted.Load() != balance {
		t.Errorf("remaining %d + admitted %d ≠ %d", c.Remaining, admitted.Load(), balance)
	}
	t.Logf("admitted %d of %d asks; rate limit allows at most %d in 6 s", admitted.Load(), replicas*steps*2, 3*l.Limit)
}

// testUsageEngineKilled abandons one of two engines while it holds credits,
// as SIGKILL would: once its heartbeat is 30 s old, the other's Flush reaps
// its lease, and what was lost — neither spent nor left — is at most one
// credit slice.
func testUsageEngineKilled(t *testing.T, s apikey.Store) {
	us := usageStore(t, s)
	const balance, sliceMax = 100, 8
	putBalance(t, s, "key:k", &apikey.Credits{Remaining: balance}, t0)
	var now atomic.Int64
	now.Store(t0.UnixMicro())
	clock := func() time.Time { return time.UnixMicro(now.Load()).UTC() }
	subjects := []usage.Subject{{ID: "key:k", Credits: true}}
	live := usage.New(usage.Config{Reserver: us, ReplicaID: "live", Shared: true, CreditSliceMax: sliceMax, Now: clock})
	killed := usage.New(usage.Config{Reserver: us, ReplicaID: "killed", Shared: true, CreditSliceMax: sliceMax, Now: clock})
	var admitted int64
	var d usage.Decision
	for i := range 30 {
		e := live
		if i%3 == 0 {
			e = killed
		}
		if err := e.Admit(t.Context(), 1, subjects, &d); err != nil {
			t.Fatal(err)
		}
		if d.Outcome == usage.Admitted {
			admitted++
		}
		if i == 14 {
			// Both report halfway; the killed one never again.
			for _, e := range []*usage.Engine{live, killed} {
				if _, err := e.Flush(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	now.Store(t0.Add(apikey.LeaseStaleAfter + time.Second).UnixMicro())
	st, err := live.Flush(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := live.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	c := balanceOf(t, us, "key:k", clock())
	// What the reaped lease held is what the killed engine neither
	// handed back nor reported: its unspent slice — lost — and the spends
	// it made since its last report, which were admitted. Only the
	// former is gone from the customer's view, and it is at most a slice.
	lost := balance - c.Remaining - admitted
	if lost < 0 || lost > sliceMax || lost > st.Lost {
		t.Errorf("remaining %d + admitted %d leaves %d lost (reaped %d); want 0–%d, within what was reaped", c.Remaining, admitted, lost, st.Lost, sliceMax)
	}
}
