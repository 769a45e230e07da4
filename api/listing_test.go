package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/service"
)

var nextRE = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// nextOf returns the target of an answer's Link header, failing if there
// is none.
func nextOf(t *testing.T, resp *http.Response) string {
	t.Helper()
	m := nextRE.FindStringSubmatch(resp.Header.Get("Link"))
	if m == nil {
		t.Fatalf("no next link in %q", resp.Header.Get("Link"))
	}
	return m[1]
}

// cursorOf is the cursor of a Link target.
func cursorOf(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("cursor")
}

// TestCursors: a cursor works only for the listing it was returned for
// (route, project, filters); one forged, edited or taken from another
// listing is a 400 naming the cursor. The page size may change between
// pages, and /expiring-soon shares /expiring's cursors.
func TestCursors(t *testing.T) {
	f := newFixture(t, 1000)
	in30 := time.Now().Add(24 * time.Hour)
	for _, p := range []string{"p1", "p2"} {
		for range 3 {
			f.create(t, service.CreateInput{ProjectID: p, Name: "k", ExpiresAt: &in30})
		}
	}
	get := func(target string) (*http.Response, []byte) {
		t.Helper()
		return f.request(t, http.MethodGet, target, f.admin, nil)
	}
	first := func(path string) string {
		t.Helper()
		resp, body := get(path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		return cursorOf(t, nextOf(t, resp))
	}
	keys := first("/v1/api-keys?project_id=p1&limit=1")
	expiring := first("/v1/api-keys/expiring?project_id=p1&limit=1")
	audit := first("/v1/audit-events?project_id=p1&limit=1")

	raw, _ := base64.RawURLEncoding.DecodeString(keys)
	edited := append([]byte(nil), raw...)
	edited[0] ^= 1 // another microsecond, same tag
	retagged := append([]byte(nil), raw...)
	retagged[len(retagged)-1] ^= 1
	enc := base64.RawURLEncoding.EncodeToString

	t.Run("OK", func(t *testing.T) {
		for _, target := range []string{
			"/v1/api-keys?project_id=p1&limit=1&cursor=" + keys,
			"/v1/api-keys?project_id=p1&limit=50&cursor=" + keys, // another page size, same listing
			"/v1/api-keys/expiring?project_id=p1&cursor=" + expiring,
			"/v1/api-keys/expiring-soon?project_id=p1&within_days=30&cursor=" + expiring,
			"/v1/audit-events?project_id=p1&cursor=" + audit,
		} {
			if resp, body := get(target); resp.StatusCode != http.StatusOK {
				t.Errorf("%s: %d %s, want 200", target, resp.StatusCode, body)
			}
		}
		// Following the Link of each listing walks all of p1 once.
		for _, start := range []string{"/v1/api-keys?project_id=p1&limit=1", "/v1/api-keys/expiring-soon?project_id=p1&limit=1"} {
			seen := 0
			for target := start; target != ""; {
				resp, body := get(target)
				var page []KeyObject
				if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: %d %s", target, resp.StatusCode, body)
				}
				seen += len(page)
				target = ""
				if m := nextRE.FindStringSubmatch(resp.Header.Get("Link")); m != nil {
					target = m[1]
					if !strings.HasPrefix(target, start[:strings.Index(start, "?")]+"?") {
						t.Fatalf("link %s leaves %s", target, start)
					}
				}
			}
			if seen != 3 {
				t.Fatalf("%s: walked %d keys, want 3", start, seen)
			}
		}
	})
	for _, tc := range []struct{ name, target string }{
		{"ErrForged", "/v1/api-keys?project_id=p1&cursor=MC5rZXlfeA"},
		{"ErrForgedPlain", "/v1/api-keys?project_id=p1&cursor=" + enc([]byte("0.key_x"))},
		{"ErrNotBase64", "/v1/api-keys?project_id=p1&cursor=***"},
		{"ErrEdited", "/v1/api-keys?project_id=p1&cursor=" + enc(edited)},
		{"ErrTagEdited", "/v1/api-keys?project_id=p1&cursor=" + enc(retagged)},
		{"ErrTruncated", "/v1/api-keys?project_id=p1&cursor=" + keys[:len(keys)-2]},
		{"ErrOtherProject", "/v1/api-keys?project_id=p2&cursor=" + keys},
		{"ErrOtherFilter", "/v1/api-keys?project_id=p1&status=active&cursor=" + keys},
		{"ErrOtherEnvironment", "/v1/api-keys?project_id=p1&environment_id=e1&cursor=" + keys},
		{"ErrOtherRouteExpiring", "/v1/api-keys/expiring?project_id=p1&cursor=" + keys},
		{"ErrOtherRouteAudit", "/v1/audit-events?project_id=p1&cursor=" + keys},
		{"ErrAuditOnKeys", "/v1/api-keys?project_id=p1&cursor=" + audit},
		{"ErrOtherWindow", "/v1/api-keys/expiring?project_id=p1&within_days=7&cursor=" + expiring},
		{"ErrAuditOtherAction", "/v1/audit-events?project_id=p1&action=api_key.created&cursor=" + audit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(tc.target)
			checkProblem(t, tc.target, resp.StatusCode, body, FieldProblem{Field: "cursor", Message: "is not a cursor this API returned for this listing"})
		})
	}
	t.Run("ErrOtherServer", func(t *testing.T) {
		// Another server signs with another key: its cursors are not ours.
		other := newFixture(t, 1000)
		for range 2 {
			other.create(t, service.CreateInput{ProjectID: "p1", Name: "k"})
		}
		resp, _ := other.request(t, http.MethodGet, "/v1/api-keys?project_id=p1&limit=1", other.admin, nil)
		target := "/v1/api-keys?project_id=p1&cursor=" + cursorOf(t, nextOf(t, resp))
		resp, body := get(target)
		checkProblem(t, target, resp.StatusCode, body, FieldProblem{Field: "cursor", Message: "is not a cursor this API returned for this listing"})
	})
}

// TestCursorsShareKey: servers given one cursor key (replicas deriving it
// from one master key) take each other's cursors.
func TestCursorsShareKey(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	a, b := newCursors(key), newCursors(key)
	l := listing{route: "keys", path: "/v1/api-keys", filters: query("project_id", "p1")}
	cur := &apikey.Cursor{Time: time.UnixMicro(1764000000123456).UTC(), ID: "key_01"}
	got, err := b.decode(l, a.encode(l, cur))
	if err != nil || !got.Time.Equal(cur.Time) || got.ID != cur.ID {
		t.Fatalf("decode: %+v, %v; want %+v", got, err, cur)
	}
	if _, err := newCursors(nil).decode(l, a.encode(l, cur)); err == nil {
		t.Fatal("a cursor signed with another key was taken")
	}
}

// TestListQueryIdentifiers: identifiers in the query of a listing are
// checked as they are in bodies; a NUL or a space is a 400 naming the
// parameter, not an empty page.
func TestListQueryIdentifiers(t *testing.T) {
	f := newFixture(t, 1000)
	const msg = "expected string to match pattern ^[A-Za-z0-9_.:-]+$"
	for _, tc := range []struct{ name, target, field string }{
		{"ErrProjectNUL", "/v1/api-keys?project_id=p%00g", "project_id"},
		{"ErrProjectSpace", "/v1/api-keys?project_id=p+g", "project_id"},
		{"ErrEnvironmentNUL", "/v1/api-keys?project_id=p1&environment_id=e%00", "environment_id"},
		{"ErrEnvironmentSpace", "/v1/api-keys?project_id=p1&environment_id=e+1", "environment_id"},
		{"ErrAuditKeyIDSlash", "/v1/audit-events?project_id=p1&key_id=key/1", "key_id"},
		{"ErrExpiringProject", "/v1/api-keys/expiring?project_id=p%00g", "project_id"},
		{"ErrExpiringSoonProject", "/v1/api-keys/expiring-soon?project_id=%C3%A9", "project_id"},
		{"ErrExpiringEnvironment", "/v1/api-keys/expiring?project_id=p1&environment_id=a/b", "environment_id"},
		{"ErrAuditProject", "/v1/audit-events?project_id=p%00g", "project_id"},
		{"ErrAuditKeyID", "/v1/audit-events?project_id=p1&key_id=key%00", "key_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := f.do(t, http.MethodGet, tc.target, f.admin, nil)
			if strings.Contains(tc.target, "%00") {
				// The router refuses a query with a control character
				// before any handler sees it (routing.go): 400, no field.
				checkProblem(t, tc.target, status, body)
				return
			}
			checkProblem(t, tc.target, status, body, FieldProblem{Field: tc.field, Message: msg})
		})
	}
}

// TestListOwnProject (SPEC §12): on the list, expiring and audit routes
// an API key may leave project_id out and gets its own project; the admin
// token, which has none, still gets a 400.
func TestListOwnProject(t *testing.T) {
	f := newFixture(t, 1000)
	soon := time.Now().Add(24 * time.Hour)
	reader := f.create(t, service.CreateInput{ProjectID: "p1", Name: "reader", Scopes: []string{apikey.ScopeRead}, ExpiresAt: &soon})
	f.create(t, service.CreateInput{ProjectID: "p2", Name: "other", ExpiresAt: &soon})
	for _, path := range []string{"/v1/api-keys", "/v1/api-keys/expiring", "/v1/api-keys/expiring-soon"} {
		t.Run("OK"+path, func(t *testing.T) {
			status, body := f.do(t, http.MethodGet, path, reader.Plaintext, nil)
			var page []KeyObject
			if err := json.Unmarshal(body, &page); err != nil || status != http.StatusOK || len(page) != 1 || page[0].ProjectID != "p1" {
				t.Fatalf("%d %s, want p1's one key", status, body)
			}
		})
	}
	t.Run("OK/v1/audit-events", func(t *testing.T) {
		status, body := f.do(t, http.MethodGet, "/v1/audit-events", reader.Plaintext, nil)
		var page []AuditEventObject
		if err := json.Unmarshal(body, &page); err != nil || status != http.StatusOK || len(page) != 1 || page[0].ProjectID == nil || *page[0].ProjectID != "p1" {
			t.Fatalf("%d %s, want p1's one event", status, body)
		}
	})
	t.Run("ErrOtherProject", func(t *testing.T) {
		if status, body := f.do(t, http.MethodGet, "/v1/api-keys?project_id=p2", reader.Plaintext, nil); status != http.StatusForbidden {
			t.Fatalf("%d %s, want 403", status, body)
		}
	})
	// The admin's audit log without project_id is the events of no project
	// (SPEC §8: the changes to root keys), so only the key listings need it.
	t.Run("OK/AdminAuditWithoutProject", func(t *testing.T) {
		status, body := f.do(t, http.MethodGet, "/v1/audit-events", f.admin, nil)
		var page []AuditEventObject
		if err := json.Unmarshal(body, &page); err != nil || status != http.StatusOK || len(page) != 0 {
			t.Fatalf("%d %s, want no events (there are no root keys)", status, body)
		}
	})
	for _, path := range []string{"/v1/api-keys", "/v1/api-keys/expiring", "/v1/api-keys/expiring-soon"} {
		t.Run("ErrAdmin"+path, func(t *testing.T) {
			status, body := f.do(t, http.MethodGet, path, f.admin, nil)
			checkProblem(t, path, status, body, FieldProblem{Field: "project_id", Message: msgProjectRequired})
		})
	}
}
