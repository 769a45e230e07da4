package apikey

import (
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.key.Status(now); got != tc.status {
				t.Errorf("Status = %s, want %s", got, tc.status)
			}
			r := tc.key.Record()
			if got := r.Check(now, nil, ""); got != tc.code {
				t.Errorf("Check = %s, want %s", got, tc.code)
			}
			if got := r.Usable(now); got != (tc.code == CodeValid) {
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
		if got := r.Check(now, tc.want, tc.env); got != tc.code {
			t.Errorf("Check(%v, %q) = %s, want %s", tc.want, tc.env, got, tc.code)
		}
	}
	unbound := Record{}
	if got := unbound.Check(now, nil, "prod"); got != CodeEnvironmentMismatch {
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
