package sqlite

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestDecodeScopes checks the hand-split path and every way off it against
// encoding/json.
func TestDecodeScopes(t *testing.T) {
	for _, s := range []string{
		`[]`, `[""]`, `["orders:read"]`, `["orders:read","orders:write","*","a.b-c_d:*"]`,
		`null`, `[ "a"]`, `["a" ]`, `["a",]`, `[,"a"]`, `["a,b"]`, `["x\",\"y"]`, `["\u00e9"]`, `["é"]`,
		`["a"`, `"a"]`, `[1]`, `["a"]x`, `{}`, ``, `[`, `]`, `["a","b"],["c"]`,
	} {
		assertSameAsJSON(t, s)
	}
}

func FuzzDecodeScopes(f *testing.F) {
	for _, s := range []string{`[]`, `["orders:read","orders:write"]`, `["a,b"]`, `["x\",\"y"]`, `null`} {
		f.Add(s)
	}
	f.Fuzz(assertSameAsJSON)
}

func assertSameAsJSON(t *testing.T, s string) {
	var want []string
	wantErr := json.Unmarshal([]byte(s), &want)
	got, err := decodeScopes(s)
	if (err == nil) != (wantErr == nil) || wantErr == nil && !reflect.DeepEqual(got, want) {
		t.Errorf("decodeScopes(%q) = %#v, %v; encoding/json: %#v, %v", s, got, err, want, wantErr)
	}
}
