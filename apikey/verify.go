package apikey

import (
	"net/netip"
	"time"
)

// VerifyCode is the verdict on a presented key.
type VerifyCode string

// Verdicts, as SPEC §5 names them.
const (
	CodeValid               VerifyCode = "VALID"
	CodeMalformed           VerifyCode = "MALFORMED"
	CodeNotFound            VerifyCode = "NOT_FOUND"
	CodeExpired             VerifyCode = "EXPIRED"
	CodeRevoked             VerifyCode = "REVOKED"
	CodeRotated             VerifyCode = "ROTATED"
	CodeInsufficientScope   VerifyCode = "INSUFFICIENT_SCOPE"
	CodeEnvironmentMismatch VerifyCode = "ENVIRONMENT_MISMATCH"
	CodeDisabled            VerifyCode = "DISABLED"
	CodeIPNotAllowed        VerifyCode = "IP_NOT_ALLOWED"
	CodeRateLimited         VerifyCode = "RATE_LIMITED"
	CodeUsageExceeded       VerifyCode = "USAGE_EXCEEDED"
)

// VerifyCodes lists every verdict: the one list of them, from which metrics
// (a series and a counter row per code), the OpenAPI enum of verify's
// answer and the guard derive, and against which the Go client's constants
// are tested. An array, so that its length is a constant others can size
// tables with.
var VerifyCodes = [...]VerifyCode{
	CodeValid, CodeMalformed, CodeNotFound, CodeExpired, CodeRevoked,
	CodeRotated, CodeInsufficientScope, CodeEnvironmentMismatch,
	CodeDisabled, CodeIPNotAllowed,
	CodeRateLimited, CodeUsageExceeded,
}

// RecordsUse reports whether a verification with this verdict on a known
// key records the key's last use. A presenter outside the key's allowlist
// is not its holder using it (SPEC §9), so IP_NOT_ALLOWED touches nothing;
// every other verdict of a known key is a use of the key, as before.
func (c VerifyCode) RecordsUse() bool { return c != CodeIPNotAllowed }

// Record is the part of a key a verification needs. Records are immutable
// values: a change to a key produces a new record with a higher Version.
type Record struct {
	ID             string
	ProjectID      string
	EnvironmentID  string
	Name           string
	Scopes         []string
	ExpiresAt      time.Time
	RevokedAt      time.Time
	Replaced       bool
	GraceExpiresAt time.Time
	Version        int64
	// Root marks the record of a root key (RootKey.Record): its Scopes are
	// its permissions, ProjectIDs its projects (nil: every project), and
	// ProjectID and EnvironmentID are empty. Check never finds it valid.
	Root       bool
	ProjectIDs []string

	// OwnerID and Meta (compact JSON, empty for none) are shown by verify.
	OwnerID string
	Meta    string
	// Allowlist is where the key may be used from; nil for anywhere.
	Allowlist Allowlist
	Disabled  bool
	// Subject, RateLimits and HasCredits are the key's usage control
	// (Key.Subject): what a VALID verdict must still be admitted by.
	Subject    string
	RateLimits []RateLimit
	HasCredits bool
	// OwnerID is the key's owner: its allowance (Owner) is drawn on too.
}

// Check decides the verdict on the key at now, for a caller that needs every
// scope in want and, if environment is not empty, a key bound to exactly that
// environment, presented from the address from (the zero Addr when unknown).
// A key bound to no environment does not match a named one. It is the one
// place that orders the codes (SPEC §9): the first that applies wins.
func (r *Record) Check(now time.Time, want []string, environment string, from netip.Addr) VerifyCode {
	switch {
	case r.Root:
		return CodeNotFound
	case !r.RevokedAt.IsZero():
		return CodeRevoked
	case !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt):
		return CodeExpired
	case r.Replaced && !now.Before(r.GraceExpiresAt):
		return CodeRotated
	case r.Disabled:
		return CodeDisabled
	case environment != "" && environment != r.EnvironmentID:
		return CodeEnvironmentMismatch
	case !r.Allowlist.Allows(from):
		return CodeIPNotAllowed
	case !ScopesCover(r.Scopes, want):
		return CodeInsufficientScope
	}
	return CodeValid
}

// Usable reports whether the key may authenticate at now from the address
// from: not revoked, not expired, not past the end of its grace period, not
// disabled, and from inside its allowlist.
func (r *Record) Usable(now time.Time, from netip.Addr) bool {
	return r.RevokedAt.IsZero() &&
		(r.ExpiresAt.IsZero() || now.Before(r.ExpiresAt)) &&
		(!r.Replaced || now.Before(r.GraceExpiresAt)) &&
		!r.Disabled && r.Allowlist.Allows(from)
}

// Final reports whether the key can never be usable again, whatever is done
// to it later: it is revoked, or it was replaced and its grace period is
// over at now. Neither can be undone: a revoked or replaced key cannot be
// patched or rotated, and revoking a key whose grace is over only turns
// ROTATED into REVOKED. An expired key is not final, since a PATCH may move
// its expires_at. So a replica whose copy of a key may be stale can still
// refuse a final key from that copy, and nothing else.
func (r *Record) Final(now time.Time) bool {
	return !r.RevokedAt.IsZero() || (r.Replaced && !now.Before(r.GraceExpiresAt))
}

// Principal returns the principal a usable key acts as.
func (r *Record) Principal() Principal {
	if r.Root {
		return Principal{Root: true, KeyID: r.ID, Name: r.Name, ProjectIDs: r.ProjectIDs, Scopes: r.Scopes}
	}
	return Principal{KeyID: r.ID, Name: r.Name, ProjectID: r.ProjectID, EnvironmentID: r.EnvironmentID, Scopes: r.Scopes}
}
