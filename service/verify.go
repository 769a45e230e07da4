package service

import (
	"context"
	"net/netip"
	"strconv"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
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
}

// Verdict is the answer to a verification. Known is true, and Record set,
// for a known key (every code but MALFORMED and NOT_FOUND). The record is
// held by value so that a verification allocates nothing for it.
type Verdict struct {
	Code   apikey.VerifyCode
	Known  bool
	Record apikey.Record
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
	if code.RecordsUse() {
		s.usage.Record(rec.ID, now)
	}
	return Verdict{Code: code, Known: true, Record: rec}, nil
}
