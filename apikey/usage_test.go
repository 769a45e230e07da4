package apikey

import (
	"slices"
	"testing"
	"time"
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestRefillNext(t *testing.T) {
	daily := &Refill{Interval: RefillDaily, Amount: 1, Mode: RefillAdd}
	monthly := func(d int) *Refill {
		return &Refill{Interval: RefillMonthly, Amount: 1, Mode: RefillAdd, DayOfMonth: d}
	}
	tests := []struct {
		name  string
		r     *Refill
		after time.Time
		want  time.Time
	}{
		{"DailyMidday", daily, day(2031, 1, 31).Add(13 * time.Hour), day(2031, 2, 1)},
		{"DailyAtMidnight", daily, day(2031, 1, 31), day(2031, 2, 1)},
		{"DailyYearEnd", daily, day(2031, 12, 31).Add(time.Second), day(2032, 1, 1)},
		{"Monthly31stInFebruary", monthly(31), day(2031, 1, 31), day(2031, 2, 28)},
		{"Monthly31stInLeapFebruary", monthly(31), day(2032, 1, 31), day(2032, 2, 29)},
		{"Monthly31stAfterFebruary", monthly(31), day(2031, 2, 28), day(2031, 3, 31)},
		{"Monthly31stInApril", monthly(31), day(2031, 3, 31), day(2031, 4, 30)},
		{"Monthly30thLeapFebruary", monthly(30), day(2032, 2, 1), day(2032, 2, 29)},
		{"Monthly29thNonLeap", monthly(29), day(2031, 2, 1), day(2031, 2, 28)},
		{"MonthlySameMonth", monthly(15), day(2031, 5, 3), day(2031, 5, 15)},
		{"MonthlyOnTheDay", monthly(15), day(2031, 5, 15), day(2031, 6, 15)},
		{"MonthlyYearEnd", monthly(1), day(2031, 12, 2), day(2032, 1, 1)},
		{"MonthlyDefaultFirst", monthly(0), day(2031, 1, 31), day(2031, 2, 1)},
		{"MonthlyNonUTCInput", monthly(1), time.Date(2031, 1, 31, 23, 0, 0, 0, time.FixedZone("x", -3*3600)), day(2031, 3, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Next(tt.after); !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("Next(%v) = %v, want %v", tt.after, got, tt.want)
			}
		})
	}
}

func TestRefillDue(t *testing.T) {
	daily := &Refill{Interval: RefillDaily, Amount: 1, Mode: RefillAdd}
	monthly31 := &Refill{Interval: RefillMonthly, Amount: 1, Mode: RefillAdd, DayOfMonth: 31}
	tests := []struct {
		name       string
		r          *Refill
		next, now  time.Time
		periods    int64
		last, then time.Time
	}{
		{"NotYet", daily, day(2031, 2, 1), day(2031, 1, 31).Add(23 * time.Hour), 0, time.Time{}, day(2031, 2, 1)},
		{"DailyExactly", daily, day(2031, 2, 1), day(2031, 2, 1), 1, day(2031, 2, 1), day(2031, 2, 2)},
		{"DailyThreeDaysAcrossMonthEnd", daily, day(2031, 1, 30), day(2031, 2, 1).Add(time.Hour), 3, day(2031, 2, 1), day(2031, 2, 2)},
		{"DailyLeapDay", daily, day(2032, 2, 28), day(2032, 3, 1).Add(time.Minute), 3, day(2032, 3, 1), day(2032, 3, 2)},
		{"Monthly31stThroughFebruary", monthly31, day(2031, 1, 31), day(2031, 3, 31), 3, day(2031, 3, 31), day(2031, 4, 30)},
		{"Monthly31stLeapFebruaryOnly", monthly31, day(2032, 2, 29), day(2032, 3, 30), 1, day(2032, 2, 29), day(2032, 3, 31)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, last, then := tt.r.Due(tt.next, tt.now)
			if p != tt.periods || !last.Equal(tt.last) || !then.Equal(tt.then) {
				t.Errorf("Due = %d, %v, %v; want %d, %v, %v", p, last, then, tt.periods, tt.last, tt.then)
			}
		})
	}
}

func TestRefillApply(t *testing.T) {
	tests := []struct {
		name                     string
		mode                     RefillMode
		remaining, held, periods int64
		want                     int64
	}{
		{"NoPeriods", RefillAdd, 7, 3, 0, 7},
		{"AddThree", RefillAdd, 7, 3, 3, 37},
		{"ReplaceCountsHeld", RefillReplace, 7, 3, 2, 7},
		{"ReplacePaysDebt", RefillReplace, -2, 4, 1, 6},
		{"AddCapped", RefillAdd, 0, 1, 1 << 20, MaxCredits - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Refill{Interval: RefillDaily, Amount: 10, Mode: tt.mode}
			if tt.name == "AddCapped" {
				r.Amount = MaxCredits
			}
			if got := r.Apply(tt.remaining, tt.held, tt.periods); got != tt.want {
				t.Errorf("Apply = %d, want %d", got, tt.want)
			}
		})
	}
}

func fields(errs []FieldError) []string {
	out := []string{}
	for _, e := range errs {
		out = append(out, e.Field)
	}
	return out
}

func TestValidateRateLimits(t *testing.T) {
	ok := RateLimit{Name: "per.second-1_x", Limit: 10, DurationMS: 1000}
	eleven := make([]RateLimit, 11)
	for i := range eleven {
		eleven[i] = RateLimit{Name: string(rune('a' + i)), Limit: 1, DurationMS: 1000}
	}
	tests := []struct {
		name string
		ls   []RateLimit
		want []string
	}{
		{"OKNull", nil, []string{}},
		{"OKOne", []RateLimit{ok}, []string{}},
		{"OKBounds", []RateLimit{{Name: "a", Limit: 1, DurationMS: 1000}, {Name: "b", Limit: MaxRateLimit, DurationMS: MaxRateLimitDuration}}, []string{}},
		{"ErrEmpty", []RateLimit{}, []string{"ratelimits"}},
		{"ErrEleven", eleven, []string{"ratelimits"}},
		{"ErrLimitZero", []RateLimit{ok, {Name: "b", Limit: 0, DurationMS: 1000}}, []string{"ratelimits[1].limit"}},
		{"ErrLimitHuge", []RateLimit{{Name: "b", Limit: MaxRateLimit + 1, DurationMS: 1000}}, []string{"ratelimits[0].limit"}},
		{"ErrDuration999", []RateLimit{ok, ok, {Name: "c", Limit: 1, DurationMS: 999}}, []string{"ratelimits[1].name", "ratelimits[2].duration_ms"}},
		{"ErrDurationLong", []RateLimit{{Name: "c", Limit: 1, DurationMS: MaxRateLimitDuration + 1}}, []string{"ratelimits[0].duration_ms"}},
		{"ErrNameUpper", []RateLimit{{Name: "Burst", Limit: 1, DurationMS: 1000}}, []string{"ratelimits[0].name"}},
		{"ErrNameEmpty", []RateLimit{{Name: "", Limit: 1, DurationMS: 1000}}, []string{"ratelimits[0].name"}},
		{"ErrNameLong", []RateLimit{{Name: string(make([]byte, 65)), Limit: 1, DurationMS: 1000}}, []string{"ratelimits[0].name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fields(ValidateRateLimits("ratelimits", tt.ls)); !slices.Equal(got, tt.want) {
				t.Errorf("fields %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidateCredits(t *testing.T) {
	refill := func(i RefillInterval, m RefillMode, amount int64, d int) *Credits {
		return &Credits{Remaining: 5, Refill: &Refill{Interval: i, Mode: m, Amount: amount, DayOfMonth: d}}
	}
	tests := []struct {
		name string
		c    *Credits
		want []string
	}{
		{"OKUnlimited", nil, []string{}},
		{"OKZero", &Credits{Remaining: 0}, []string{}},
		{"OKMax", &Credits{Remaining: MaxCredits}, []string{}},
		{"OKDaily", refill(RefillDaily, RefillAdd, 1, 0), []string{}},
		{"OKMonthly31", refill(RefillMonthly, RefillReplace, MaxCredits, 31), []string{}},
		{"OKMonthlyNoDay", refill(RefillMonthly, RefillReplace, 1, 0), []string{}},
		{"ErrNegative", &Credits{Remaining: -1}, []string{"credits.remaining"}},
		{"ErrTooMany", &Credits{Remaining: MaxCredits + 1}, []string{"credits.remaining"}},
		{"ErrInterval", refill("weekly", RefillAdd, 1, 0), []string{"credits.refill.interval"}},
		{"ErrMode", refill(RefillDaily, "double", 1, 0), []string{"credits.refill.mode"}},
		{"ErrAmountZero", refill(RefillDaily, RefillAdd, 0, 0), []string{"credits.refill.amount"}},
		{"ErrAmountHuge", refill(RefillDaily, RefillAdd, MaxCredits+1, 0), []string{"credits.refill.amount"}},
		{"ErrDay32", refill(RefillMonthly, RefillAdd, 1, 32), []string{"credits.refill.day_of_month"}},
		{"ErrDayNegative", refill(RefillMonthly, RefillAdd, 1, -1), []string{"credits.refill.day_of_month"}},
		{"ErrDayOnDaily", refill(RefillDaily, RefillAdd, 1, 3), []string{"credits.refill.day_of_month"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fields(tt.c.Validate("credits")); !slices.Equal(got, tt.want) {
				t.Errorf("fields %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidateCost(t *testing.T) {
	for _, tt := range []struct {
		cost int64
		ok   bool
	}{{0, true}, {1, true}, {MaxCost, true}, {-1, false}, {MaxCost + 1, false}} {
		if got := len(ValidateCost(tt.cost)) == 0; got != tt.ok {
			t.Errorf("ValidateCost(%d) ok = %v, want %v", tt.cost, got, tt.ok)
		}
	}
}

func TestRateLimitWindow(t *testing.T) {
	tests := []struct {
		name       string
		l          RateLimit
		ms         int64
		first, cur int64
		slice      int64
	}{
		{"OneSecond", RateLimit{DurationMS: 1000}, 10_050, 90, 100, 100},
		{"OnBoundary", RateLimit{DurationMS: 1000}, 10_000, 90, 100, 100},
		{"RoundsUp", RateLimit{DurationMS: 1005}, 10_100, 90, 100, 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, cur := tt.l.Window(time.UnixMilli(tt.ms))
			if first != tt.first || cur != tt.cur || tt.l.SliceMS() != tt.slice {
				t.Errorf("Window = %d, %d (slice %d); want %d, %d (%d)", first, cur, tt.l.SliceMS(), tt.first, tt.cur, tt.slice)
			}
			if cur-first+1 > WindowSlices+1 {
				t.Errorf("%d slices overlap the window, at most %d may", cur-first+1, WindowSlices+1)
			}
		})
	}
}

func TestSizes(t *testing.T) {
	for _, tt := range []struct {
		name      string
		got, want int64
	}{
		{"GrantAlone", GrantSize(20, 1, 0, 1), 20},
		{"GrantAloneNeedsLittle", GrantSize(20, 1, 2, 1), 20},
		{"GrantThree", GrantSize(20, 1, 0, 3), 4},
		{"GrantNeedsLittle", GrantSize(20, 1, 2, 3), 2},
		{"GrantNeedsMuch", GrantSize(20, 1, 50, 3), 4},
		{"GrantShrinks", GrantSize(3, 1, 0, 3), 1},
		{"GrantWantsMore", GrantSize(20, 9, 2, 3), 9},
		{"GrantNoneFree", GrantSize(0, 1, 0, 3), 0},
		{"GrantNeverAboveFree", GrantSize(2, 9, 0, 3), 2},
		{"CreditsQuarter", CreditSliceSize(100, 1, 1, 1000), 25},
		{"CreditsCapped", CreditSliceSize(1e9, 1, 1, 1000), 1000},
		{"CreditsCost", CreditSliceSize(100, 50, 3, 1000), 50},
		{"CreditsShort", CreditSliceSize(3, 5, 3, 1000), 3},
		{"CreditsDebt", CreditSliceSize(-4, 1, 3, 1000), 0},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}
