package apikey

import (
	"net/netip"
	"testing"
	"time"
)

func TestPrincipalAllows(t *testing.T) {
	for _, tc := range []struct {
		held  []string
		scope string
		ok    bool
	}{
		{[]string{ScopeRead}, ScopeRead, true},
		{[]string{ScopeRead}, ScopeWrite, false},
		{[]string{ScopeWrite}, ScopeRead, true},
		{[]string{ScopeWrite}, ScopeVerify, false},
		{[]string{ScopeVerify}, ScopeRead, false},
		{[]string{"api-keys:*"}, ScopeVerify, true},
		{[]string{"*"}, ScopeWrite, true},
		{nil, ScopeRead, false},
	} {
		p := Principal{KeyID: "key_x", ProjectID: "p", Scopes: tc.held}
		if got := p.Allows(tc.scope); got != tc.ok {
			t.Errorf("%v Allows(%q) = %v, want %v", tc.held, tc.scope, got, tc.ok)
		}
	}
	if !AdminPrincipal.Allows(ScopeWrite) {
		t.Error("admin lacks a scope")
	}
}

func TestPrincipalReach(t *testing.T) {
	project := Principal{ProjectID: "p1", Scopes: []string{"*"}}
	env := Principal{ProjectID: "p1", EnvironmentID: "prod", Scopes: []string{"*"}}
	keys := map[string]*Key{
		"p1":      {ProjectID: "p1"},
		"p1/prod": {ProjectID: "p1", EnvironmentID: "prod"},
		"p1/dev":  {ProjectID: "p1", EnvironmentID: "dev"},
		"p2":      {ProjectID: "p2"},
	}
	for _, tc := range []struct {
		p    Principal
		key  string
		sees bool
	}{
		{project, "p1", true}, {project, "p1/prod", true}, {project, "p1/dev", true}, {project, "p2", false},
		{env, "p1", false}, {env, "p1/prod", true}, {env, "p1/dev", false}, {env, "p2", false},
		{AdminPrincipal, "p2", true},
	} {
		k := keys[tc.key]
		if got := tc.p.Sees(k); got != tc.sees {
			t.Errorf("%+v Sees(%s) = %v", tc.p, tc.key, got)
		}
		r := k.Record()
		if got := tc.p.SeesRecord(&r); got != tc.sees {
			t.Errorf("%+v SeesRecord(%s) = %v", tc.p, tc.key, got)
		}
	}
	for _, tc := range []struct {
		p             Principal
		project, envi string
		ok            bool
	}{
		{project, "p1", "", true}, {project, "p1", "dev", true}, {project, "p2", "", false},
		{env, "p1", "", true}, {env, "p1", "prod", true}, {env, "p1", "dev", false}, {env, "p2", "prod", false},
	} {
		if got := tc.p.InProject(tc.project, tc.envi); got != tc.ok {
			t.Errorf("%+v InProject(%s, %s) = %v", tc.p, tc.project, tc.envi, got)
		}
	}
}

func TestKeyStatusAndCheck(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Second), now.Add(time.Hour)
	for _, tc := range []struct {
		name   string
		key    Key
		status Status
		code   VerifyCode
	}{
		{"active", Key{}, StatusActive, CodeValid},
		{"expiresLater", Key{ExpiresAt: future}, StatusActive, CodeValid},
		{"expiredNow", Key{ExpiresAt: now}, StatusExpired, CodeExpired},
		{"revoked", Key{RevokedAt: past}, StatusRevoked, CodeRevoked},
		{"revokedAndExpired", Key{RevokedAt: past, ExpiresAt: past}, StatusRevoked, CodeRevoked},
		{"rotating", Key{ReplacedByKeyID: "key_n", GraceExpiresAt: future}, StatusRotating, CodeValid},
		{"rotatedAtGraceEnd", Key{ReplacedByKeyID: "key_n", GraceExpiresAt: now}, StatusRotated, CodeRotated},
		{"rotatingButExpired", Key{ReplacedByKeyID: "key_n", GraceExpiresAt: future, ExpiresAt: past}, StatusExpired, CodeExpired},
		{"disabled", Key{DisabledAt: past}, StatusDisabled, CodeDisabled},
		{"disabledAndRevoked", Key{DisabledAt: past, RevokedAt: past}, StatusRevoked, CodeRevoked},
		{"disabledAndExpired", Key{DisabledAt: past, ExpiresAt: past}, StatusExpired, CodeExpired},
		{"disabledAndRotated", Key{DisabledAt: past, ReplacedByKeyID: "key_n", GraceExpiresAt: now}, StatusRotated, CodeRotated},
		{"disabledWhileRotating", Key{DisabledAt: past, ReplacedByKeyID: "key_n", GraceExpiresAt: future}, StatusDisabled, CodeDisabled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.key.Status(now); got != tc.status {
				t.Errorf("Status = %s, want %s", got, tc.status)
			}
			r := tc.key.Record()
			if got := r.Check(now, nil, "", netip.Addr{}); got != tc.code {
				t.Errorf("Check = %s, want %s", got, tc.code)
			}
			if got := r.Usable(now, netip.Addr{}); got != (tc.code == CodeValid) {
				t.Errorf("Usable = %v", got)
			}
		})
	}
	r := Record{Scopes: []string{"read:*"}, EnvironmentID: "prod"}
	for _, tc := range []struct {
		want []string
		env  string
		code VerifyCode
	}{
		{[]string{"read:x"}, "prod", CodeValid},
		{[]string{"read:x"}, "", CodeValid},
		{[]string{"write:x"}, "prod", CodeInsufficientScope},
		{[]string{"read:x"}, "dev", CodeEnvironmentMismatch},
		{[]string{"write:x"}, "dev", CodeEnvironmentMismatch},
	} {
		if got := r.Check(now, tc.want, tc.env, netip.Addr{}); got != tc.code {
			t.Errorf("Check(%v, %q) = %s, want %s", tc.want, tc.env, got, tc.code)
		}
	}
	unbound := Record{}
	if got := unbound.Check(now, nil, "prod", netip.Addr{}); got != CodeEnvironmentMismatch {
		t.Errorf("unbound key for env prod: %s", got)
	}
}

func TestNewID(t *testing.T) {
	prev := ""
	for range 1000 {
		id, err := NewID(IDKindKey)
		if err != nil {
			t.Fatal(err)
		}
		if !ValidID(IDKindKey, id) {
			t.Fatalf("ValidID(%q) = false", id)
		}
		if id <= prev {
			t.Fatalf("IDs do not sort by creation: %q after %q", id, prev)
		}
		prev = id
	}
	for _, bad := range []string{"", "key_", "evt_01jd3m5x8q7w9e2r4t6y8u0i1o", "key_01JD3M5X8Q7W9E2R4T6Y8U0V1W", "key_01jd3m5x8q7w9e2r4t6y8u0i1", "key_01jd3m5x8q7w9e2r4t6y8u0ilo"} {
		if ValidID(IDKindKey, bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

// TestCheckOrder checks the order of SPEC §9's verdicts: of several that
// apply, the first in the list wins; and that a key with an allowlist
// refuses an absent or outside address, as verdict and as a bearer.
func TestCheckOrder(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	past := now.Add(-time.Hour)
	list, _, err := ParseAllowlist([]string{"10.0.0.0/8", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	in, out, in6, mapped := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("192.0.2.1"),
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("::ffff:10.9.9.9")
	// full is a key that every check after MALFORMED/NOT_FOUND refuses.
	full := func() Record {
		return Record{RevokedAt: past, ExpiresAt: past, Replaced: true, GraceExpiresAt: past, Disabled: true,
			EnvironmentID: "prod", Allowlist: list, Scopes: []string{"read"}}
	}
	steps := []struct {
		code  VerifyCode
		clear func(r *Record) // makes the check stop applying
	}{
		{CodeRevoked, func(r *Record) { r.RevokedAt = time.Time{} }},
		{CodeExpired, func(r *Record) { r.ExpiresAt = time.Time{} }},
		{CodeRotated, func(r *Record) { r.Replaced = false }},
		{CodeDisabled, func(r *Record) { r.Disabled = false }},
		{CodeEnvironmentMismatch, func(r *Record) { r.EnvironmentID = "dev" }},
		{CodeIPNotAllowed, func(r *Record) { r.Allowlist = nil }},
		{CodeInsufficientScope, func(r *Record) { r.Scopes = []string{"write"} }},
		{CodeValid, nil},
	}
	r := full()
	for _, st := range steps {
		if got := r.Check(now, []string{"write"}, "dev", out); got != st.code {
			t.Fatalf("Check = %s, want %s", got, st.code)
		}
		if st.clear != nil {
			st.clear(&r)
		}
	}
	fenced := Record{Allowlist: list}
	for _, tc := range []struct {
		name string
		from netip.Addr
		want VerifyCode
	}{
		{"IPv4Inside", in, CodeValid},
		{"IPv4Outside", out, CodeIPNotAllowed},
		{"IPv6Inside", in6, CodeValid},
		{"IPv6Outside", netip.MustParseAddr("2001:db9::1"), CodeIPNotAllowed},
		{"MappedIPv4Inside", mapped, CodeValid},
		{"Absent", netip.Addr{}, CodeIPNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fenced.Check(now, nil, "", tc.from); got != tc.want {
				t.Errorf("Check = %s, want %s", got, tc.want)
			}
			if got := fenced.Usable(now, tc.from); got != (tc.want == CodeValid) {
				t.Errorf("Usable = %v", got)
			}
		})
	}
	if (&Record{Disabled: true}).Usable(now, in) {
		t.Error("a disabled key is usable as a bearer")
	}
	if CodeIPNotAllowed.RecordsUse() || !CodeDisabled.RecordsUse() {
		t.Error("RecordsUse")
	}
}
