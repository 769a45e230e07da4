package apikey

import (
	"strconv"
	"strings"
)

// Scopes are the customer's own vocabulary, plus the three that govern
// apikeyd's API itself.
const (
	ScopeRead   = "api-keys:read"
	ScopeWrite  = "api-keys:write"
	ScopeVerify = "api-keys:verify"

	MaxScopeLen     = 128
	MaxScopesPerKey = 64
)

// ValidScope reports whether s is a well-formed scope: 1–128 characters of
// [A-Za-z0-9_.:-], where a trailing ":*" or a lone "*" is a wildcard. A "*"
// anywhere else is rejected, as are empty segments around a wildcard.
func ValidScope(s string) bool {
	if len(s) == 0 || len(s) > MaxScopeLen {
		return false
	}
	if s == "*" {
		return true
	}
	body := s
	if strings.HasSuffix(s, ":*") {
		body = s[:len(s)-2]
		if body == "" {
			return false
		}
	}
	for i := 0; i < len(body); i++ {
		if !identChar(body[i]) {
			return false
		}
	}
	return true
}

// ValidateScopes checks a scope list and returns it without duplicates, in
// the order given. field names the JSON field for error messages.
func ValidateScopes(field string, scopes []string) ([]string, *Error) {
	if len(scopes) > MaxScopesPerKey {
		return nil, Invalid("too many scopes", FieldError{Field: field, Message: "at most 64 scopes"})
	}
	out := make([]string, 0, len(scopes))
	seen := make(map[string]struct{}, len(scopes))
	var bad []FieldError
	for i, s := range scopes {
		if !ValidScope(s) {
			bad = append(bad, FieldError{
				Field:   field + "[" + strconv.Itoa(i) + "]",
				Message: "a scope is 1-128 characters of A-Z a-z 0-9 _ . : - with an optional trailing :* or a lone *",
			})
			continue
		}
		if _, dup := seen[s]; dup {
			continue
		}
		seen[s] = struct{}{}
		out = append(out, s)
	}
	if bad != nil {
		return nil, Invalid("invalid scopes", bad...)
	}
	return out, nil
}

// ScopeCovers reports whether holding scope held grants scope want.
// "*" grants everything; "a:*" grants "a:x", "a:x:y" and the wildcards
// "a:*" and "a:x:*"; any other scope grants only itself.
func ScopeCovers(held, want string) bool {
	if held == "*" || held == want {
		return true
	}
	if strings.HasSuffix(held, ":*") {
		return strings.HasPrefix(want, held[:len(held)-1])
	}
	return false
}

// ScopesCover reports whether the set held grants every scope in want.
func ScopesCover(held, want []string) bool {
	for _, w := range want {
		if !anyCovers(held, w) {
			return false
		}
	}
	return true
}

func anyCovers(held []string, want string) bool {
	for _, h := range held {
		if ScopeCovers(h, want) {
			return true
		}
	}
	return false
}
