package apikey

import (
	"fmt"
	"time"
)

// Bounds of the usage-control fields of SPEC §10.
const (
	MaxRateLimits        = 10
	MaxRateLimitNameLen  = 64
	MinRateLimit         = 1
	MaxRateLimit         = 1_000_000_000
	MinRateLimitDuration = 1000          // ms
	MaxRateLimitDuration = 2_592_000_000 // ms, 30 days
	MaxCredits           = 1_000_000_000_000
	MaxCost              = 1_000_000
	// DefaultCost is what a verify that names no cost spends.
	DefaultCost = 1

	// WindowSlices is N of docs/limits.md: a rate limit's window is
	// counted in slices of width ceil(duration/N).
	WindowSlices = 10
)

// RateLimit allows at most Limit VALID verifies in any interval of
// DurationMS milliseconds (a sliding window, docs/limits.md).
type RateLimit struct {
	Name       string `json:"name"`
	Limit      int64  `json:"limit"`
	DurationMS int64  `json:"duration_ms"`
}

// SliceMS is the width of the slices the window is counted in:
// ceil(DurationMS / WindowSlices), so that WindowSlices slices cover at
// least the duration and at most WindowSlices+1 slices overlap any window.
func (l RateLimit) SliceMS() int64 {
	return (l.DurationMS + WindowSlices - 1) / WindowSlices
}

// Window returns the slice numbers (Unix milliseconds divided by SliceMS)
// of the first and the current slice that overlap the window (t − D, t]
// ending at t: every admission within D before t lies in them.
func (l RateLimit) Window(t time.Time) (first, cur int64) {
	w := l.SliceMS()
	ms := t.UnixMilli()
	return (ms - l.DurationMS) / w, ms / w
}

// ValidateRateLimits checks a key's or owner's ratelimits, named field in
// the request (e.g. "ratelimits" or "keys[3].ratelimits"). A nil list is
// valid (no limits); an empty one is not.
func ValidateRateLimits(field string, ls []RateLimit) []FieldError {
	if ls == nil {
		return nil
	}
	if len(ls) == 0 || len(ls) > MaxRateLimits {
		return []FieldError{{Field: field, Message: fmt.Sprintf("must be null or 1–%d limits", MaxRateLimits)}}
	}
	var bad []FieldError
	seen := make(map[string]bool, len(ls))
	for i, l := range ls {
		at := fmt.Sprintf("%s[%d].", field, i)
		switch {
		case !validLimitName(l.Name):
			bad = append(bad, FieldError{Field: at + "name", Message: fmt.Sprintf("must be 1–%d of [a-z0-9_.-]", MaxRateLimitNameLen)})
		case seen[l.Name]:
			bad = append(bad, FieldError{Field: at + "name", Message: fmt.Sprintf("duplicate limit name %q", l.Name)})
		}
		seen[l.Name] = true
		if l.Limit < MinRateLimit || l.Limit > MaxRateLimit {
			bad = append(bad, FieldError{Field: at + "limit", Message: fmt.Sprintf("must be %d–%d", MinRateLimit, MaxRateLimit)})
		}
		if l.DurationMS < MinRateLimitDuration || l.DurationMS > MaxRateLimitDuration {
			bad = append(bad, FieldError{Field: at + "duration_ms", Message: fmt.Sprintf("must be %d–%d", MinRateLimitDuration, MaxRateLimitDuration)})
		}
	}
	return bad
}

func validLimitName(s string) bool {
	if len(s) == 0 || len(s) > MaxRateLimitNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// ValidateCost checks the cost of a verify (field "cost").
func ValidateCost(cost int64) []FieldError {
	if cost < 0 || cost > MaxCost {
		return []FieldError{{Field: "cost", Message: fmt.Sprintf("must be 0–%d", MaxCost)}}
	}
	return nil
}

// Credits is a usage balance: a key's or an owner's. A nil *Credits means
// unlimited.
type Credits struct {
	// Remaining is the balance. Stores report the total, reserved slices
	// included (docs/limits.md).
	Remaining int64
	Refill    *Refill
	// RefilledAt is the instant of the last refill applied; NextRefillAt
	// the next one due. Both are read-only and zero without a refill.
	RefilledAt   time.Time
	NextRefillAt time.Time
}

// RefillInterval is how often a balance is refilled.
type RefillInterval string

// Refill intervals.
const (
	RefillDaily   RefillInterval = "daily"
	RefillMonthly RefillInterval = "monthly"
)

// RefillMode says what a refill does to the balance.
type RefillMode string

// Refill modes.
const (
	// RefillReplace sets the balance to the amount.
	RefillReplace RefillMode = "replace"
	// RefillAdd adds the amount once per period that has passed.
	RefillAdd RefillMode = "add"
)

// Refill is the schedule of a balance's refills. Refills fall at 00:00
// UTC: every day, or every month on DayOfMonth, or on the last day of a
// month that has no such day.
type Refill struct {
	Interval RefillInterval
	Amount   int64
	Mode     RefillMode
	// DayOfMonth is 1–31 for a monthly refill, 0 (the 1st) when not given;
	// it must be 0 for a daily one.
	DayOfMonth int
}

// Validate checks c, named field in the request ("credits").
func (c *Credits) Validate(field string) []FieldError {
	if c == nil {
		return nil
	}
	var bad []FieldError
	if c.Remaining < 0 || c.Remaining > MaxCredits {
		bad = append(bad, FieldError{Field: field + ".remaining", Message: fmt.Sprintf("must be 0–%d", MaxCredits)})
	}
	r := c.Refill
	if r == nil {
		return bad
	}
	at := field + ".refill."
	if r.Interval != RefillDaily && r.Interval != RefillMonthly {
		bad = append(bad, FieldError{Field: at + "interval", Message: "must be daily or monthly"})
	}
	if r.Amount < 1 || r.Amount > MaxCredits {
		bad = append(bad, FieldError{Field: at + "amount", Message: fmt.Sprintf("must be 1–%d", MaxCredits)})
	}
	if r.Mode != RefillReplace && r.Mode != RefillAdd {
		bad = append(bad, FieldError{Field: at + "mode", Message: "must be replace or add"})
	}
	switch {
	case r.Interval == RefillMonthly && (r.DayOfMonth < 0 || r.DayOfMonth > 31):
		bad = append(bad, FieldError{Field: at + "day_of_month", Message: "must be 1–31"})
	case r.Interval == RefillDaily && r.DayOfMonth != 0:
		bad = append(bad, FieldError{Field: at + "day_of_month", Message: "only a monthly refill takes a day_of_month"})
	}
	return bad
}

// day is the day of the month a monthly refill falls on, before clamping
// to the month's length.
func (r *Refill) day() int {
	if r.DayOfMonth == 0 {
		return 1
	}
	return r.DayOfMonth
}

// Next returns the first refill instant strictly after t.
func (r *Refill) Next(t time.Time) time.Time {
	t = t.UTC()
	if r.Interval == RefillDaily {
		return time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
	}
	for y, m := t.Year(), t.Month(); ; m++ {
		at := r.inMonth(y, m)
		if at.After(t) {
			return at
		}
	}
}

// inMonth is the refill instant of month m of year y (m may run past
// December; time.Date normalises it).
func (r *Refill) inMonth(y int, m time.Month) time.Time {
	first := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(r.day(), last)-1)
}

// Due returns how many refill instants fall in [next, now] — the periods
// that have passed since the refill that was due at next — the last of
// them, and the refill instant after now. periods is 0 when next is after
// now.
func (r *Refill) Due(next, now time.Time) (periods int64, last, after time.Time) {
	if next.After(now) {
		return 0, time.Time{}, next
	}
	if r.Interval == RefillDaily {
		periods = int64(now.Sub(next)/(24*time.Hour)) + 1
		last = next.AddDate(0, 0, int(periods-1))
		return periods, last, r.Next(last)
	}
	for at := next; !at.After(now); at = r.Next(at) {
		periods, last = periods+1, at
	}
	return periods, last, r.Next(last)
}

// Apply returns the unreserved balance after the refills due in [next,
// now], given the unreserved balance remaining and held, what replicas
// hold in leases: replace makes the total (remaining + held) the amount,
// add adds the amount once per period.
func (r *Refill) Apply(remaining, held, periods int64) int64 {
	if periods == 0 {
		return remaining
	}
	if r.Mode == RefillReplace {
		return r.Amount - held
	}
	// The total stays within MaxCredits however many periods passed.
	return max(remaining, min(remaining+periods*r.Amount, MaxCredits-held))
}

// GrantSize is how much of a rate limit's window one grant hands a
// replica (docs/limits.md): free is limit minus what the window has
// granted, want what the replica needs now (at least 1), need what it
// expects to spend in the slice (0: no estimate), replicas the live
// replicas. A process that is the only one spending (replicas ≤ 1) takes
// all that is free; otherwise max(want, min(need, ceil(free / 2R))), so
// that grants shrink as the window fills and a replica with little demand
// does not hold what others need. Never more than free.
func GrantSize(free, want, need int64, replicas int) int64 {
	if free <= 0 {
		return 0
	}
	if replicas <= 1 {
		return free
	}
	share := (free + 2*int64(replicas) - 1) / (2 * int64(replicas))
	if need > 0 {
		share = min(share, need)
	}
	return min(free, max(want, share))
}

// SpanTime is how long a span grant lasts (docs/limits.md): a replica
// that spends a lightly used limit asks the store about once per SpanTime
// instead of once per slice.
const SpanTime = 10 * time.Second

// SpanSlices is how many slices of l a span grant may be spent in:
// SpanTime's worth, at least 1. At 1 (limits of 100 s or more, whose
// slices last 10 s or more) there are no span grants.
func (l RateLimit) SpanSlices() int64 {
	return max(1, (SpanTime.Milliseconds()+l.SliceMS()-1)/l.SliceMS())
}

// SpanCap is the most one span grant of l may hold with replicas live
// replicas: a tenth of the limit divided among them, so that span grants
// are only for subjects far from their limit and all the replicas'
// together hold at most a tenth of it.
func SpanCap(l RateLimit, replicas int) int64 {
	return l.Limit / (10 * int64(max(replicas, 1)))
}

// NarrowMin is the fewest admissions spent from a span grant that the
// engine narrows at a flush (docs/limits.md). Fewer stay counted across
// the grant's span, for at most SpanTime + D after they were spent; with
// a flush a second, what a replica leaves un-narrowed of one subject is
// then within 1% of the limit in any window, and a limit far above its
// use (10⁹ a second used a few times a second) costs no narrowing at all.
func (l RateLimit) NarrowMin() int64 {
	flushes := (SpanTime.Milliseconds() + l.DurationMS + 999) / 1000
	return max(1, l.Limit/(100*flushes))
}

// SpanGrantFits reports whether a span grant of want admissions may be
// granted from a window of l with free left: want is within SpanCap and
// at least half the limit stays free after it. A window that is filling
// up is granted slice by slice, as precisely as GrantSize allows.
func SpanGrantFits(l RateLimit, free, want int64, replicas int) bool {
	return want >= 1 && want <= SpanCap(l, replicas) && free-want >= l.Limit-l.Limit/2
}

// CreditSliceSize is how many credits one reservation takes from an
// unreserved balance remaining (docs/limits.md): clamp(ceil(remaining /
// 4R), need, sliceMax), and never more than remaining.
func CreditSliceSize(remaining, need int64, replicas int, sliceMax int64) int64 {
	if remaining <= 0 {
		return 0
	}
	r := int64(max(replicas, 1))
	share := (remaining + 4*r - 1) / (4 * r)
	return min(remaining, max(need, min(share, sliceMax)))
}

// BucketUsage folds hourly counts, oldest first, into buckets of the
// granularity (UsageHour, or UsageDay: UTC days), oldest first. Stores
// read hours and fold them here, so that both group days alike.
func BucketUsage(hours []UsageCount, granularity string) []UsageBucket {
	out := []UsageBucket{}
	for _, h := range hours {
		start := h.Hour.UTC().Truncate(time.Hour)
		if granularity == UsageDay {
			start = time.Date(start.Year(), start.Month(), start.Day(), 0, 0, 0, 0, time.UTC)
		}
		if len(out) == 0 || !out[len(out)-1].Start.Equal(start) {
			out = append(out, UsageBucket{Start: start, Counts: map[string]int64{}})
		}
		b := &out[len(out)-1]
		b.Counts[h.Code] += h.Count
		b.CreditsSpent += h.CreditsSpent
	}
	return out
}

// AdjustBalance applies a credit operation to a balance whose unreserved
// part is remaining while leases hold held, and returns the new
// unreserved part with the total before and after. The total is
// remaining + held, shown as 0 when negative: a debt, left when a
// decrement took credits that leases still held and spent afterwards,
// which increments and refills pay off first. increment adds amount;
// decrement takes min(amount, total); set makes the total amount (and
// forgives any debt). EINVALID for an unknown op or an amount outside
// 0–MaxCredits.
func AdjustBalance(remaining, held int64, op CreditOp, amount int64) (newRemaining, before, after int64, err error) {
	if amount < 0 || amount > MaxCredits {
		return 0, 0, 0, Invalid("invalid amount", FieldError{Field: "amount", Message: fmt.Sprintf("must be 0–%d", MaxCredits)})
	}
	total := remaining + held
	var next int64
	switch op {
	case CreditSet:
		next = amount
	case CreditIncrement:
		next = min(total+amount, MaxCredits)
	case CreditDecrement:
		next = total - min(amount, max(total, 0))
	default:
		return 0, 0, 0, Invalid("invalid op", FieldError{Field: "op", Message: "must be set, increment or decrement"})
	}
	return next - held, max(total, 0), max(next, 0), nil
}

// Owner is the shared allowance of one owner_id in a project (SPEC §10):
// every key of the project with that owner_id also draws on its limits
// and its balance (kept by the usage store under Subject).
type Owner struct {
	ProjectID  string
	OwnerID    string
	RateLimits []RateLimit
	HasCredits bool
	// Meta is a compact JSON object (CompactMeta), nil for none.
	Meta      []byte
	CreatedAt time.Time
	UpdatedAt time.Time
}

// OwnerSubjectPrefix starts the usage subject of an owner.
const OwnerSubjectPrefix = "owner:"

// Subject is the usage subject of the owner's allowance.
func (o *Owner) Subject() string { return OwnerSubjectPrefix + o.ProjectID + "/" + o.OwnerID }

// Metered reports whether the owner limits anything.
func (o *Owner) Metered() bool { return o != nil && (o.RateLimits != nil || o.HasCredits) }
