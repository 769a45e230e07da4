package service_test

import (
	"errors"
	"testing"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/service"
)

// TestNames: a name is stored as given or refused; invalid UTF-8 (a lone
// surrogate as Go holds it, a stray byte) and the bidirectional controls
// that make text display as something else are refused at create and at
// PATCH, and nothing is stored.
func TestNames(t *testing.T) {
	svc, _ := newService(t)
	ctx := t.Context()
	k, err := svc.Create(ctx, apikey.AdminPrincipal, service.CreateInput{ProjectID: "p1", Name: "before"})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OK", func(t *testing.T) {
		for _, name := range []string{"checkout", "héllo wörld", "ключ", "مفتاح", "😀", "a\u200fb"} {
			c, err := svc.Create(ctx, apikey.AdminPrincipal, service.CreateInput{ProjectID: "p2", Name: name})
			if err != nil || c.Key.Name != name {
				t.Fatalf("create %q: %v, %+v", name, err, c)
			}
		}
	})
	for _, tc := range []struct{ name, value, message string }{
		{"ErrLoneSurrogate", "a\xed\xa0\x80b", "must be valid UTF-8"},
		{"ErrStrayByte", "a\xffb", "must be valid UTF-8"},
		{"ErrLRE", "a\u202ab", bidiMessage},
		{"ErrRLO", "invoice\u202efdp.exe", bidiMessage},
		{"ErrPDF", "a\u202cb", bidiMessage},
		{"ErrLRI", "\u2066x", bidiMessage},
		{"ErrPDI", "x\u2069", bidiMessage},
		{"ErrControl", "a\nb", "must not contain control characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svc.Create(ctx, apikey.AdminPrincipal, service.CreateInput{ProjectID: "p3", Name: tc.value})
			checkInvalid(t, "create", err, "name", tc.message)
			_, err = svc.Patch(ctx, apikey.AdminPrincipal, k.Key.ID, service.PatchInput{Name: apikey.Some(tc.value)})
			checkInvalid(t, "patch", err, "name", tc.message)
		})
	}
	if keys, _, err := svc.List(ctx, apikey.AdminPrincipal, service.ListInput{ProjectID: "p3"}); err != nil || len(keys) != 0 {
		t.Fatalf("p3 after rejected creates: %d keys, %v", len(keys), err)
	}
	if got, err := svc.Get(ctx, apikey.AdminPrincipal, k.Key.ID); err != nil || got.Name != "before" {
		t.Fatalf("key after rejected patches: %+v, %v", got, err)
	}
}

const bidiMessage = "must not contain bidirectional control characters (U+202A-U+202E, U+2066-U+2069)"

// checkInvalid fails unless err is EINVALID with exactly one field error.
func checkInvalid(t *testing.T, what string, err error, field, message string) {
	t.Helper()
	var e *apikey.Error
	if !errors.As(err, &e) || e.Code != apikey.EINVALID || len(e.Fields) != 1 || e.Fields[0].Field != field || e.Fields[0].Message != message {
		t.Fatalf("%s: %v (%+v), want EINVALID %s: %s", what, err, e, field, message)
	}
}
