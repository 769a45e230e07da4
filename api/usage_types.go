package api

import (
	"encoding/json"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/apikeyd/apikeyd/apikey"
)

// RateLimitObject is one rate limit of a key (SPEC §10): at most limit
// VALID verifies in any interval of duration_ms.
type RateLimitObject struct {
	Name       string `json:"name" doc:"1–64 of [a-z0-9_.-], unique per key."`
	Limit      int64  `json:"limit" doc:"1–1000000000."`
	DurationMS int64  `json:"duration_ms" doc:"1000–2592000000 (30 days)."`
}

func rateLimitObjects(ls []apikey.RateLimit) []RateLimitObject {
	if ls == nil {
		return nil
	}
	out := make([]RateLimitObject, len(ls))
	for i, l := range ls {
		out[i] = RateLimitObject(l)
	}
	return out
}

func rateLimits(ls []RateLimitObject) []apikey.RateLimit {
	if ls == nil {
		return nil
	}
	out := make([]apikey.RateLimit, len(ls))
	for i, l := range ls {
		out[i] = apikey.RateLimit(l)
	}
	return out
}

// RefillObject is a balance's refill schedule.
type RefillObject struct {
	Interval   string `json:"interval" doc:"daily or monthly."`
	Amount     int64  `json:"amount" doc:"1–10^12."`
	Mode       string `json:"mode" doc:"replace (the balance becomes amount) or add (amount is added)."`
	DayOfMonth *int   `json:"day_of_month,omitempty" nullable:"true" doc:"Monthly only, 1–31; the last day of a shorter month. Default 1."`
}

// CreditsInputObject is the credits of a key as a request gives them.
type CreditsInputObject struct {
	Remaining int64                  `json:"remaining" doc:"The balance, 0–10^12."`
	Refill    Optional[RefillObject] `json:"refill,omitempty" doc:"null or absent: never refilled."`
}

func (c *CreditsInputObject) credits() *apikey.Credits {
	if c == nil {
		return nil
	}
	out := &apikey.Credits{Remaining: c.Remaining}
	if c.Refill.Valid() {
		r := &c.Refill.Value
		out.Refill = &apikey.Refill{Interval: apikey.RefillInterval(r.Interval), Amount: r.Amount, Mode: apikey.RefillMode(r.Mode)}
		if r.DayOfMonth != nil {
			out.Refill.DayOfMonth = *r.DayOfMonth
		}
	}
	return out
}

func optionalCredits(o Optional[CreditsInputObject]) apikey.Optional[apikey.Credits] {
	out := apikey.Optional[apikey.Credits]{Set: o.Set, Null: o.Null}
	if o.Valid() {
		out.Value = *o.Value.credits()
	}
	return out
}

func optionalLimits(o Optional[[]RateLimitObject]) apikey.Optional[[]apikey.RateLimit] {
	out := apikey.Optional[[]apikey.RateLimit]{Set: o.Set, Null: o.Null}
	if o.Valid() {
		out.Value = rateLimits(o.Value)
		if out.Value == nil {
			out.Value = []apikey.RateLimit{}
		}
	}
	return out
}

// CreditsObject is a key's balance as the key object shows it.
type CreditsObject struct {
	Remaining    int64         `json:"remaining" doc:"What is left, every replica's reserved slices included."`
	Refill       *RefillObject `json:"refill"`
	RefilledAt   *time.Time    `json:"refilled_at" doc:"The last refill applied."`
	NextRefillAt *time.Time    `json:"next_refill_at"`
}

func creditsObject(c *apikey.Credits) *CreditsObject {
	if c == nil {
		return nil
	}
	out := &CreditsObject{Remaining: c.Remaining, RefilledAt: optTime(c.RefilledAt), NextRefillAt: optTime(c.NextRefillAt)}
	if r := c.Refill; r != nil {
		out.Refill = &RefillObject{Interval: string(r.Interval), Amount: r.Amount, Mode: string(r.Mode)}
		if r.Interval == apikey.RefillMonthly {
			d := max(r.DayOfMonth, 1)
			out.Refill.DayOfMonth = &d
		}
	}
	return out
}

// VerifyLimitObject is one rate limit in a verify answer.
type VerifyLimitObject struct {
	Name       string     `json:"name"`
	Limit      int64      `json:"limit"`
	DurationMS int64      `json:"duration_ms"`
	Remaining  int64      `json:"remaining" doc:"VALID verifies the limit still allows now."`
	ResetAt    *millisUTC `json:"reset_at" doc:"When remaining next grows (RFC 3339, milliseconds); null when nothing is counted."`
}

// VerifyCreditsObject is a key's balance in a verify answer.
type VerifyCreditsObject struct {
	Remaining    int64      `json:"remaining"`
	NextRefillAt *millisUTC `json:"next_refill_at"`
}

// VerifyUsage is what a verify answer says of a key's usage control: the
// key's rate limits (every one, in its order) and credits (null when
// unlimited). Present for a key with either that passed every other
// check (VALID, RATE_LIMITED, USAGE_EXCEEDED).
type VerifyUsage struct {
	RateLimits []VerifyLimitObject  `json:"ratelimits"`
	Credits    *VerifyCreditsObject `json:"credits"`
	// Owner is the allowance of the key's owner, when it has one.
	Owner *VerifyOwnerObject `json:"owner,omitempty"`
}

// VerifyOwnerObject is the owner's shared allowance in a verify answer.
type VerifyOwnerObject struct {
	ID         string               `json:"id"`
	Meta       json.RawMessage      `json:"meta" doc:"The owner's meta object, or null."`
	RateLimits []VerifyLimitObject  `json:"ratelimits"`
	Credits    *VerifyCreditsObject `json:"credits"`
}

// millisUTC is an instant written as RFC 3339 in UTC with exactly three
// fractional digits.
type millisUTC time.Time

// millisLayout is how millisUTC is written.
const millisLayout = "2006-01-02T15:04:05.000Z07:00"

// MarshalJSON implements json.Marshaler.
func (t millisUTC) MarshalJSON() ([]byte, error) {
	return appendMillis(nil, time.Time(t)), nil
}

func appendMillis(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, millisLayout)
	return append(b, '"')
}

func optMillis(t time.Time) *millisUTC {
	if t.IsZero() {
		return nil
	}
	m := millisUTC(t)
	return &m
}

// Schema implements huma.SchemaProvider.
func (millisUTC) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: huma.TypeString, Format: "date-time"}
}

func createCredits(o Optional[CreditsInputObject]) *apikey.Credits {
	if !o.Valid() {
		return nil
	}
	return o.Value.credits()
}
