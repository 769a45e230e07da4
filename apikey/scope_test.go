package apikey

import (
	"strings"
	"testing"
)

func TestValidScope(t *testing.T) {
	for s, want := range map[string]bool{
		"*": true, "read": true, "api-keys:read": true, "billing:*": true, "a.b_c-d:e:f": true,
		"a:b:*": true, strings.Repeat("a", 128): true,
		"": false, strings.Repeat("a", 129): false, ":*": false, "a*": false, "*:a": false,
		"a:*:b": false, "a b": false, "a/b": false, "**": false, "a:**": false, "é": false,
	} {
		if got := ValidScope(s); got != want {
			t.Errorf("ValidScope(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestScopeCovers(t *testing.T) {
	for _, tc := range []struct {
		held, want string
		ok         bool
	}{
		{"*", "anything", true},
		{"*", "*", true},
		{"*", "a:*", true},
		{"read", "read", true},
		{"read", "write", false},
		{"a:*", "a:x", true},
		{"a:*", "a:x:y", true},
		{"a:*", "a:*", true},
		{"a:*", "a:x:*", true},
		{"a:*", "a", false},
		{"a:*", "ab:x", false},
		{"a:*", "*", false},
		{"a:x", "a:*", false},
		{"a:x:*", "a:*", false},
		{"api-keys:*", "api-keys:read", true},
	} {
		if got := ScopeCovers(tc.held, tc.want); got != tc.ok {
			t.Errorf("ScopeCovers(%q, %q) = %v, want %v", tc.held, tc.want, got, tc.ok)
		}
	}
}

func TestScopesCover(t *testing.T) {
	held := []string{"read:*", "write:docs"}
	for name, tc := range map[string]struct {
		want []string
		ok   bool
	}{
		"OK/empty":      {nil, true},
		"OK/all":        {[]string{"read:a", "write:docs"}, true},
		"ErrOneMissing": {[]string{"read:a", "write:other"}, false},
		"ErrWildcard":   {[]string{"write:*"}, false},
	} {
		t.Run(name, func(t *testing.T) {
			if got := ScopesCover(held, tc.want); got != tc.ok {
				t.Fatalf("ScopesCover(%v, %v) = %v", held, tc.want, got)
			}
		})
	}
}

func TestValidateScopes(t *testing.T) {
	t.Run("OK/dedup", func(t *testing.T) {
		got, err := ValidateScopes("scopes", []string{"a", "b", "a"})
		if err != nil || strings.Join(got, ",") != "a,b" {
			t.Fatalf("got %v, %v", got, err)
		}
	})
	t.Run("OK/nilIsEmpty", func(t *testing.T) {
		got, err := ValidateScopes("scopes", nil)
		if err != nil || got == nil || len(got) != 0 {
			t.Fatalf("got %#v, %v", got, err)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		_, err := ValidateScopes("scopes", []string{"ok", "bad scope", "*x"})
		if err == nil || len(err.Fields) != 2 || err.Fields[0].Field != "scopes[1]" || err.Fields[1].Field != "scopes[2]" {
			t.Fatalf("err = %+v", err)
		}
	})
	t.Run("ErrTooMany", func(t *testing.T) {
		many := make([]string, 65)
		for i := range many {
			many[i] = "s" + strings.Repeat("x", i)
		}
		if _, err := ValidateScopes("scopes", many); err == nil || err.Fields[0].Field != "scopes" {
			t.Fatalf("err = %+v", err)
		}
	})
}

func FuzzScope(f *testing.F) {
	for _, s := range []string{"*", "a:*", "api-keys:read", "a:b:*", ":*", "a*", ""} {
		f.Add(s, "a:b")
	}
	f.Fuzz(func(t *testing.T, held, want string) {
		if !ValidScope(held) {
			return
		}
		// A valid scope is made only of allowed characters, with "*" only
		// alone or as a trailing ":*".
		body := strings.TrimSuffix(held, ":*")
		if held != "*" && (strings.Contains(body, "*") || body == "" || len(held) > MaxScopeLen) {
			t.Fatalf("ValidScope accepted %q", held)
		}
		if !ScopeCovers(held, held) {
			t.Fatalf("%q does not cover itself", held)
		}
		if !ScopeCovers("*", held) {
			t.Fatalf("* does not cover %q", held)
		}
		if ScopeCovers(held, want) && held != "*" && held != want &&
			!(strings.HasSuffix(held, ":*") && strings.HasPrefix(want, body+":")) {
			t.Fatalf("%q covers %q without reason", held, want)
		}
		if held != "*" && ScopeCovers(held, "*") {
			t.Fatalf("%q covers *", held)
		}
	})
}
