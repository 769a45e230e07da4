package e2e

import (
	"net/http"
	"sort"
	"strings"
	"testing"
)

var keyFields = []string{
	"id", "project_id", "name", "key_prefix", "scopes", "expires_at", "last_used_at", "created_at",
	"revoked_at", "replaced_by_key_id", "grace_expires_at", "environment_id", "rotation_interval_days",
	"next_rotation_at", "rotation_webhook_url", "status",
	// SPEC §9 (issue 12) adds these to the key object.
	"owner_id", "meta", "ip_allowlist", "disabled_at", "disabled_reason", "revocation_reason", "source",
	// SPEC §10 (issue 13).
	"ratelimits", "credits",
}

var rotateFields = []string{
	"old_key_id", "new_key_id", "project_id", "name", "key", "key_prefix", "scopes", "expires_at",
	"created_at", "grace_expires_at",
}

// hasExactly fails unless obj has exactly the given fields.
func hasExactly(t *testing.T, obj map[string]any, fields ...string) {
	t.Helper()
	var got []string
	for k := range obj {
		got = append(got, k)
	}
	want := append([]string(nil), fields...)
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("fields %v, want %v", got, want)
	}
}

// TestSeedReference replays the calls of the seed API reference exactly as
// shown there and checks the shapes of the answers.
func TestSeedReference(t *testing.T) {
	s := startServer(t)

	// Create: the seed's body.
	r := expect(t, s.do(t, http.MethodPost, "/v1/api-keys", s.Admin, `{    "project_id": "string",    "name": "string"  }`), http.StatusCreated)
	created := r.object(t)
	hasExactly(t, created, append(keyFields, "key")...)
	secrets.add("API key", created["key"].(string))
	if created["project_id"] != "string" || created["name"] != "string" || created["status"] != "active" {
		t.Fatalf("created %v", created)
	}
	for _, f := range []string{"expires_at", "last_used_at", "revoked_at", "replaced_by_key_id", "grace_expires_at",
		"environment_id", "rotation_interval_days", "next_rotation_at", "rotation_webhook_url"} {
		if created[f] != nil {
			t.Errorf("%s = %v, want null", f, created[f])
		}
	}
	if sc, ok := created["scopes"].([]any); !ok || len(sc) != 0 {
		t.Errorf("scopes = %v, want []", created["scopes"])
	}
	plaintext := created["key"].(string)
	if !strings.HasPrefix(plaintext, "sk_") || len(plaintext) != 52 || created["key_prefix"] != plaintext[:12] {
		t.Errorf("key %d chars, key_prefix %v", len(plaintext), created["key_prefix"])
	}
	if loc := r.Header.Get("Location"); loc != "/v1/api-keys/"+created["id"].(string) {
		t.Errorf("Location %q", loc)
	}

	// List: a bare array of key objects, without the plaintext.
	list := expect(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=string", s.Admin, nil), http.StatusOK)
	if !strings.HasPrefix(strings.TrimSpace(string(list.Body)), "[") {
		t.Fatalf("list is not a bare array: %s", list.Body)
	}
	items := list.list(t)
	if len(items) != 1 || items[0]["id"] != created["id"] {
		t.Fatalf("list = %v", items)
	}
	hasExactly(t, items[0], keyFields...)

	// Rotate with the seed's empty body.
	rot := expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+created["id"].(string)+"/rotate", s.Admin, `{}`), http.StatusCreated).object(t)
	hasExactly(t, rot, rotateFields...)
	secrets.add("API key", rot["key"].(string))
	if rot["old_key_id"] != created["id"] || rot["grace_expires_at"] == nil || rot["project_id"] != "string" {
		t.Fatalf("rotate = %v", rot)
	}

	// Revoke: 204 and an empty body.
	del := s.do(t, http.MethodDelete, "/v1/api-keys/"+rot["new_key_id"].(string), s.Admin, nil)
	expect(t, del, http.StatusNoContent)
	if len(del.Body) != 0 {
		t.Fatalf("revoke body %q, want empty", del.Body)
	}
}
