package service

import (
	"context"
	"net/netip"
	"strconv"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/usage"
)

// VerifyInput is a presented key and what the caller needs of it.
type VerifyInput struct {
	Key           string
	Scopes        []string // all required
	EnvironmentID string   // empty: any environment
	// ClientIP is the address the key was presented from, as the caller
	// saw it; a key with an allowlist refuses an empty or unparsable one.
	ClientIP string
	// At is the time of the verification, when the caller has already read
	// the clock; zero means the service's clock.
	At time.Time
	// Cost is what a VALID verify spends of the key's credits (SPEC §10):
	// 0–MaxCost; absent means DefaultCost, and 0 checks without spending.
	Cost apikey.Optional[int64]
}

// Verdict is the answer to a verification. Known is true, and Record set,
// for a known key (every code but MALFORMED and NOT_FOUND). The record is
// held by value so that a verification allocates nothing for it.
type Verdict struct {
	Code   apikey.VerifyCode
	Known  bool
	Record apikey.Record
	// Metered is set when the usage engine decided the verify (a key with
	// rate limits or credits that passed every other check: VALID,
	// RATE_LIMITED or USAGE_EXCEEDED); Usage then holds what its key's
	// subject has left (Usage.Subjects[0]).
	Metered bool
	Usage   usage.Decision
	// Owner is the allowance of the key's owner when the verify drew on
	// it too (Usage.Subjects[1]); nil otherwise.
	Owner *apikey.Owner
}

// Valid reports whether the key may be used as asked.
func (v Verdict) Valid() bool { return v.Code == apikey.CodeValid }

// Verify decides whether a presented key is valid for the caller's project
// with the given scopes and environment. A key of another project is
// NOT_FOUND, exactly as an unknown one. Verifying a known key records its
// use unless the verdict says otherwise (apikey.VerifyCode.RecordsUse).
func (s *Service) Verify(ctx context.Context, p apikey.Principal, in VerifyInput) (Verdict, error) {
	if !p.Allows(apikey.ScopeVerify) {
		return Verdict{}, errNoVerify
	}
	var bad problems
	for i, sc := range in.Scopes {
		if !apikey.ValidScope(sc) {
			bad.add("scopes["+strconv.Itoa(i)+"]", "is not a valid scope")
		}
	}
	if in.EnvironmentID != "" {
		bad.identifier("environment_id", in.EnvironmentID)
	}
	cost := int64(apikey.DefaultCost)
	switch {
	case in.Cost.Null:
		bad.add("cost", "must be a number")
	case in.Cost.Set:
		cost = in.Cost.Value
		bad = append(bad, apikey.ValidateCost(cost)...)
	}
	if err := bad.err(); err != nil {
		return Verdict{}, err
	}
	if !apikey.ParseKey(in.Key) {
		// A key of another format may be imported (SPEC §9); one of ours
		// with a bad checksum never is.
		if apikey.OwnFormat(in.Key) || in.Key == "" || len(in.Key) > apikey.MaxPresentedKeyBytes || !s.mayBeImported() {
			return Verdict{Code: apikey.CodeMalformed}, nil
		}
	}
	if apikey.ParseRootKey(in.Key) {
		// A root key is no customer's key: it is not looked up here, and
		// not its use recorded, whoever asks.
		return Verdict{Code: apikey.CodeNotFound}, nil
	}
	rec, found, err := s.index.Lookup(ctx, apikey.HashKey(in.Key))
	if err != nil {
		return Verdict{}, err
	}
	if !found || !p.SeesRecord(&rec) {
		return Verdict{Code: apikey.CodeNotFound}, nil
	}
	now := in.At
	if now.IsZero() {
		now = s.clock()
	}
	var from netip.Addr
	if rec.Allowlist != nil { // only then does the address matter
		from, _ = netip.ParseAddr(in.ClientIP)
	}
	code := rec.Check(now, in.Scopes, in.EnvironmentID, from)
	v := Verdict{Code: code, Known: true, Record: rec}
	if err := s.meter(ctx, &v, cost, now); err != nil {
		return Verdict{}, err
	}
	if v.Code.RecordsUse() {
		s.usage.Record(rec.ID, now)
	}
	return v, nil
}

// meter asks the usage engine to admit a verdict that passed every other
// check, for a key with rate limits or credits (SPEC §10: rate limits,
// then credits, all or nothing), and counts the final verdict for the
// usage endpoints. The engine's store errors are EUNAVAILABLE: the
// verify cannot be decided.
func (s *Service) meter(ctx context.Context, v *Verdict, cost int64, now time.Time) error {
	r := &v.Record
	spent := int64(0)
	var owner ownerEntry
	var owned bool
	if v.Code == apikey.CodeValid {
		var err error
		if owner, owned, err = s.owner(ctx, r, now); err != nil {
			return err
		}
	}
	if v.Code == apikey.CodeValid && (r.RateLimits != nil || r.HasCredits || owned) {
		subjects := [usage.MaxSubjects]usage.Subject{{ID: r.Subject, Limits: r.RateLimits, Credits: r.HasCredits}}
		n := 1
		if owned {
			subjects[1] = usage.Subject{ID: owner.subject, Limits: owner.o.RateLimits, Credits: owner.o.HasCredits}
			v.Owner = owner.o
			n = 2
		}
		if err := s.engine.Admit(ctx, cost, subjects[:n], &v.Usage); err != nil {
			return unavailableUsage(err)
		}
		v.Metered = true
		switch v.Usage.Outcome {
		case usage.RateLimited:
			v.Code = apikey.CodeRateLimited
		case usage.UsageExceeded:
			v.Code = apikey.CodeUsageExceeded
		default:
			if r.HasCredits || owned && owner.o.HasCredits {
				spent = cost
			}
		}
	}
	s.counter.Count(r.ID, r.ProjectID, r.EnvironmentID, r.OwnerID, string(v.Code), spent)
	return nil
}

// unavailableUsage makes an engine's failure to reach the store
// EUNAVAILABLE, keeping an error that already says what it is.
func unavailableUsage(err error) error {
	if c := apikey.ErrorCode(err); c != "" && c != apikey.EINTERNAL {
		return err
	}
	return &apikey.Error{Code: apikey.EUNAVAILABLE, Message: "the usage store is unavailable", Err: err}
}
