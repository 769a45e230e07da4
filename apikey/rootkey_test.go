package apikey

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValidatePermissions(t *testing.T) {
	seventeen := make([]string, 17)
	for i := range seventeen {
		seventeen[i] = ScopeRead
	}
	for _, tc := range []struct {
		name   string
		in     []string
		want   []string
		fields []string // fields of the error, nil when valid
	}{
		{"OK", []string{ScopeVerify}, []string{ScopeVerify}, nil},
		{"OKEvery", RootPermissions, RootPermissions, nil},
		{"OKDuplicates", []string{ScopeRootRead, ScopeVerify, ScopeRootRead}, []string{ScopeRootRead, ScopeVerify}, nil},
		{"OKSixteen", seventeen[:16], []string{ScopeRead}, nil},
		{"ErrNil", nil, nil, []string{"permissions"}},
		{"ErrEmpty", []string{}, nil, []string{"permissions"}},
		{"ErrSeventeen", seventeen, nil, []string{"permissions"}},
		{"ErrUnknown", []string{ScopeRead, "billing:read", "root-keys:verify"}, nil, []string{"permissions[1]", "permissions[2]"}},
		{"ErrCustomerWildcard", []string{"api:*"}, nil, []string{"permissions[0]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ValidatePermissions("permissions", tc.in)
			if tc.fields == nil {
				if err != nil || !slices.Equal(got, tc.want) {
					t.Fatalf("ValidatePermissions(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
				}
				return
			}
			if err == nil || err.Code != EINVALID {
				t.Fatalf("ValidatePermissions(%q) = %q, %v; want EINVALID", tc.in, got, err)
			}
			var fields []string
			for _, f := range err.Fields {
				fields = append(fields, f.Field)
			}
			if !slices.Equal(fields, tc.fields) {
				t.Errorf("fields %q, want %q", fields, tc.fields)
			}
		})
	}
}

func TestValidateProjectIDs(t *testing.T) {
	many := make([]string, MaxRootProjects+1)
	for i := range many {
		many[i] = "p" + strings.Repeat("x", i%5) + string(rune('a'+i%26))
	}
	for _, tc := range []struct {
		name string
		in   []string
		want []string
		ok   bool
	}{
		{"OKEvery", nil, nil, true},
		{"OK", []string{"p1", "p2", "p1"}, []string{"p1", "p2"}, true},
		{"ErrEmpty", []string{}, nil, false},
		{"ErrBadID", []string{"p1", "no spaces"}, nil, false},
		{"ErrTooMany", many, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ValidateProjectIDs("project_ids", tc.in)
			if tc.ok != (err == nil) {
				t.Fatalf("ValidateProjectIDs = %q, %v", got, err)
			}
			if tc.ok && (!slices.Equal(got, tc.want) || (got == nil) != (tc.want == nil)) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestRootKeyToken(t *testing.T) {
	s, err := GenerateRootKey()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.Plaintext, "apikeyd_") || len(s.Plaintext) != len("apikeyd_")+43+6 {
		t.Fatalf("root key %q", s.Plaintext)
	}
	if s.Prefix != s.Plaintext[:KeyPrefixLen] || s.Hash != HashKey(s.Plaintext) {
		t.Fatal("prefix or hash do not match the plaintext")
	}
	customer, err := GenerateKey("sk_live")
	if err != nil {
		t.Fatal(err)
	}
	other, err := GenerateKey("apikey")
	if err != nil {
		t.Fatal(err)
	}
	flipped := []byte(s.Plaintext)
	flipped[len(flipped)-1] ^= 1
	for _, tc := range []struct {
		token string
		ok    bool
	}{
		{s.Plaintext, true},
		{string(flipped), false},                  // checksum fails
		{s.Plaintext[:len(s.Plaintext)-1], false}, // truncated
		{s.Plaintext + "0", false},
		{customer.Plaintext, false},
		{other.Plaintext, false},
		{"apikeyd_" + customer.Plaintext[len("sk_live_"):], false}, // the checksum covers the prefix
		{"", false},
	} {
		if got := ParseRootKey(tc.token); got != tc.ok {
			t.Errorf("ParseRootKey(%q) = %v, want %v", tc.token, got, tc.ok)
		}
	}
}

func TestRootKeyStatus(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		rk   RootKey
		want Status
	}{
		{RootKey{}, StatusActive},
		{RootKey{ExpiresAt: now}, StatusExpired},
		{RootKey{ReplacedByKeyID: "root_x", GraceExpiresAt: now.Add(time.Second)}, StatusRotating},
		{RootKey{ReplacedByKeyID: "root_x", GraceExpiresAt: now}, StatusRotated},
		{RootKey{RevokedAt: now, ExpiresAt: now}, StatusRevoked},
	} {
		if got := tc.rk.Status(now); got != tc.want {
			t.Errorf("%+v Status = %s, want %s", tc.rk, got, tc.want)
		}
	}
}

func TestRootKeyRecord(t *testing.T) {
	rk := &RootKey{ID: "root_1", Name: "guard", Permissions: []string{ScopeVerify}, ProjectIDs: []string{"p1"}, Version: 3}
	r := rk.Record()
	now := time.Now()
	// A root key is no customer's key: verify never finds it valid, and no
	// one sees it as a key of theirs.
	if got := r.Check(now, nil, "", netip.Addr{}); got != CodeNotFound {
		t.Errorf("Check of a root record = %s, want NOT_FOUND", got)
	}
	for _, p := range []Principal{AdminPrincipal, rk.Principal(), {ProjectID: "p1", Scopes: []string{"*"}}} {
		if p.SeesRecord(&r) {
			t.Errorf("%+v sees the record of a root key", p)
		}
	}
	if !r.Usable(now, netip.Addr{}) {
		t.Error("an active root key is not usable")
	}
	p := r.Principal()
	if !p.Root || p.KeyID != "root_1" || p.Name != "guard" || !slices.Equal(p.ProjectIDs, []string{"p1"}) || !slices.Equal(p.Scopes, []string{ScopeVerify}) {
		t.Errorf("principal %+v", p)
	}
	if got := p.Actor(); got != (Actor{Type: ActorRootKey, KeyID: "root_1", Name: "guard"}) {
		t.Errorf("actor %+v", got)
	}
	key := &Key{ID: "key_1", Name: "ci", ProjectID: "p1"}
	kr := key.Record()
	if got := kr.Principal().Actor(); got != (Actor{Type: ActorAPIKey, KeyID: "key_1", Name: "ci"}) {
		t.Errorf("actor of an API key %+v", got)
	}
	// A clone keeps "every project" apart from "no project".
	every := (&RootKey{}).Clone()
	none := (&RootKey{ProjectIDs: []string{}}).Clone()
	if every.ProjectIDs != nil || !every.AllProjects() || none.ProjectIDs == nil || none.AllProjects() {
		t.Errorf("clones: every %#v, none %#v", every.ProjectIDs, none.ProjectIDs)
	}
}

func TestRootPrincipalAllows(t *testing.T) {
	for _, tc := range []struct {
		held  []string
		scope string
		ok    bool
	}{
		{[]string{ScopeVerify}, ScopeVerify, true},
		{[]string{ScopeVerify}, ScopeRead, false},
		{[]string{ScopeVerify}, ScopeWrite, false},
		{[]string{ScopeWrite}, ScopeRead, true},
		{[]string{ScopeAPIKeys}, ScopeVerify, true},
		{[]string{ScopeAPIKeys}, ScopeRootRead, false},
		{[]string{ScopeRootWrite}, ScopeRootRead, true},
		{[]string{ScopeRootRead}, ScopeRootWrite, false},
		{[]string{ScopeRootKeys}, ScopeRootWrite, true},
		{[]string{ScopeRootKeys}, ScopeRead, false},
		{[]string{ScopeAll}, ScopeRootWrite, true},
		{[]string{ScopeAll}, ScopeWrite, true},
	} {
		p := Principal{Root: true, KeyID: "root_x", Scopes: tc.held}
		if got := p.Allows(tc.scope); got != tc.ok {
			t.Errorf("root %v Allows(%q) = %v, want %v", tc.held, tc.scope, got, tc.ok)
		}
	}
	// API keys never hold root-key permissions, whatever their wildcard.
	for _, held := range [][]string{{"*"}, {"root-keys:*"}, {ScopeRootRead, ScopeRootWrite}} {
		p := Principal{KeyID: "key_x", ProjectID: "p1", Scopes: held}
		for _, scope := range []string{ScopeRootRead, ScopeRootWrite} {
			if p.Allows(scope) {
				t.Errorf("API key %v Allows(%q)", held, scope)
			}
		}
		if p.HoldsPermissions([]string{ScopeVerify}) || p.HoldsProjects([]string{"p1"}) {
			t.Errorf("API key %v may grant root-key permissions or projects", held)
		}
	}
	if !AdminPrincipal.Allows(ScopeRootWrite) {
		t.Error("admin lacks root-keys:write")
	}
}

func TestRootPrincipalReach(t *testing.T) {
	limited := Principal{Root: true, KeyID: "root_l", ProjectIDs: []string{"p1", "p2"}, Scopes: []string{ScopeAll}}
	every := Principal{Root: true, KeyID: "root_e", Scopes: []string{ScopeVerify}}
	for _, tc := range []struct {
		p                    Principal
		project, environment string
		in                   bool
	}{
		{limited, "p1", "", true},
		{limited, "p2", "prod", true}, // no environment binding
		{limited, "p3", "", false},
		{every, "p3", "", true},
		{every, "anything", "dev", true},
	} {
		if got := tc.p.InProject(tc.project, tc.environment); got != tc.in {
			t.Errorf("%s InProject(%s, %s) = %v", tc.p.KeyID, tc.project, tc.environment, got)
		}
		k := &Key{ProjectID: tc.project, EnvironmentID: tc.environment}
		if got := tc.p.Sees(k); got != tc.in {
			t.Errorf("%s Sees(%s/%s) = %v", tc.p.KeyID, tc.project, tc.environment, got)
		}
		r := k.Record()
		if got := tc.p.SeesRecord(&r); got != tc.in {
			t.Errorf("%s SeesRecord(%s/%s) = %v", tc.p.KeyID, tc.project, tc.environment, got)
		}
	}
}

func TestRootPrincipalEscalation(t *testing.T) {
	verify := Principal{Root: true, Scopes: []string{ScopeVerify}, ProjectIDs: []string{"p1"}}
	writer := Principal{Root: true, Scopes: []string{ScopeWrite, ScopeRootWrite}}
	all := Principal{Root: true, Scopes: []string{ScopeAll}}

	// Customer keys: any scope of the customer's vocabulary; apikeyd's own
	// only when held.
	for _, tc := range []struct {
		name   string
		p      Principal
		scopes []string
		ok     bool
	}{
		{"OKCustomerScopes", verify, []string{"billing:read", "orders:*", "root-keys:write"}, true},
		{"OKHeldVerify", verify, []string{ScopeVerify, "billing:read"}, true},
		{"OKReadFromWrite", writer, []string{ScopeRead}, true},
		{"OKStarFromStar", all, []string{"*"}, true},
		{"ErrUnheldWrite", verify, []string{ScopeWrite}, false},
		{"ErrStar", writer, []string{"*"}, false},
		{"ErrAPIKeysWildcard", writer, []string{"api-keys:*"}, false},
		{"ErrOtherAPIKeysScope", verify, []string{"api-keys:read:x"}, false},
	} {
		t.Run("Covers/"+tc.name, func(t *testing.T) {
			if got := tc.p.Covers(tc.scopes); got != tc.ok {
				t.Errorf("Covers(%q) = %v, want %v", tc.scopes, got, tc.ok)
			}
		})
	}

	// Root keys: only permissions held, only projects held.
	for _, tc := range []struct {
		name  string
		p     Principal
		perms []string
		ok    bool
	}{
		{"OKSame", verify, []string{ScopeVerify}, true},
		{"OKReadFromWrite", writer, []string{ScopeRead, ScopeRootRead}, true},
		{"OKAnyFromStar", all, RootPermissions, true},
		{"ErrMore", writer, []string{ScopeVerify}, false},
		{"ErrWildcard", writer, []string{ScopeRootKeys}, false},
		{"ErrStar", writer, []string{ScopeAll}, false},
	} {
		t.Run("HoldsPermissions/"+tc.name, func(t *testing.T) {
			if got := tc.p.HoldsPermissions(tc.perms); got != tc.ok {
				t.Errorf("HoldsPermissions(%q) = %v, want %v", tc.perms, got, tc.ok)
			}
		})
	}
	for _, tc := range []struct {
		name     string
		p        Principal
		projects []string
		ok       bool
	}{
		{"OKSubset", verify, []string{"p1"}, true},
		{"OKEveryFromEvery", all, nil, true},
		{"OKAnyFromEvery", all, []string{"p9"}, true},
		{"ErrOther", verify, []string{"p1", "p2"}, false},
		{"ErrEveryFromLimited", verify, nil, false},
	} {
		t.Run("HoldsProjects/"+tc.name, func(t *testing.T) {
			if got := tc.p.HoldsProjects(tc.projects); got != tc.ok {
				t.Errorf("HoldsProjects(%q) = %v, want %v", tc.projects, got, tc.ok)
			}
		})
	}
	if !AdminPrincipal.HoldsPermissions(RootPermissions) || !AdminPrincipal.HoldsProjects(nil) {
		t.Error("the admin may not grant everything")
	}
}
