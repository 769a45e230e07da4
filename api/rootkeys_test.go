package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/service"
)

// createRoot creates a root key through the API as the admin.
func createRoot(t *testing.T, f *fixture, body string) map[string]any {
	t.Helper()
	status, b := f.do(t, http.MethodPost, "/v1/root-keys", f.admin, []byte(body))
	if status != http.StatusCreated {
		t.Fatalf("create root key: %d %s", status, b)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRootKeyObject(t *testing.T) {
	f := newFixture(t, 1000)
	rk := createRoot(t, f, `{"name":"guard","permissions":["api-keys:verify"],"project_ids":null}`)
	var names []string
	for k := range rk {
		names = append(names, k)
	}
	slices.Sort(names)
	want := []string{"created_at", "created_by", "expires_at", "grace_expires_at", "id", "key", "key_prefix", "last_used_at",
		"name", "permissions", "project_ids", "replaced_by_key_id", "revoked_at", "status"}
	if !slices.Equal(names, want) {
		t.Fatalf("fields %v, want %v", names, want)
	}
	key := rk["key"].(string)
	if !strings.HasPrefix(key, "apikeyd_") || rk["key_prefix"] != key[:12] || rk["project_ids"] != nil || rk["status"] != "active" {
		t.Fatalf("object %v", rk)
	}
	if by := rk["created_by"].(map[string]any); by["type"] != "admin" || by["key_id"] != nil || by["name"] != nil {
		t.Fatalf("created_by %v", by)
	}
	// Shown once: the get has no key.
	status, b := f.do(t, http.MethodGet, "/v1/root-keys/"+rk["id"].(string), f.admin, nil)
	if status != http.StatusOK || strings.Contains(string(b), key) || strings.Contains(string(b), `"key"`) {
		t.Fatalf("get %d %s", status, b)
	}
}

// TestRootKeyRoutesRefuseAPIKeys checks that an API key, whatever its
// scopes, is 403 on every root-key route.
func TestRootKeyRoutesRefuseAPIKeys(t *testing.T) {
	f := newFixture(t, 1000)
	rk := createRoot(t, f, `{"name":"ops","permissions":["*"]}`)
	id := rk["id"].(string)
	for _, scopes := range [][]string{{"*"}, {"root-keys:*", "root-keys:read", "root-keys:write"}} {
		k := f.create(t, service.CreateInput{ProjectID: "p1", Name: "k", Scopes: scopes})
		for _, r := range []struct{ method, path, body string }{
			{http.MethodGet, "/v1/root-keys", ""},
			{http.MethodPost, "/v1/root-keys", `{"name":"x","permissions":["api-keys:read"]}`},
			{http.MethodGet, "/v1/root-keys/" + id, ""},
			{http.MethodPatch, "/v1/root-keys/" + id, `{"name":"x"}`},
			{http.MethodDelete, "/v1/root-keys/" + id, ""},
			{http.MethodPost, "/v1/root-keys/" + id + "/rotate", `{}`},
		} {
			var body []byte
			if r.body != "" {
				body = []byte(r.body)
			}
			if status, b := f.do(t, r.method, r.path, k.Plaintext, body); status != http.StatusForbidden {
				t.Errorf("%v: %s %s: %d %s, want 403", scopes, r.method, r.path, status, b)
			}
		}
	}
	if status, b := f.do(t, http.MethodGet, "/v1/root-keys/"+id, f.admin, nil); status != http.StatusOK || !strings.Contains(string(b), `"revoked_at":null`) {
		t.Fatalf("the root key changed: %d %s", status, b)
	}
}

// TestRootKeyBadInput checks that invalid bodies are 400 and store nothing.
func TestRootKeyBadInput(t *testing.T) {
	f := newFixture(t, 1000)
	seventeen := make([]string, 17)
	for i := range seventeen {
		seventeen[i] = `"api-keys:read"`
	}
	for name, body := range map[string]string{
		"ErrUnknownPermission": `{"name":"x","permissions":["orders:read"]}`,
		"ErrEmptyPermissions":  `{"name":"x","permissions":[]}`,
		"ErrNoPermissions":     `{"name":"x"}`,
		"Err17Permissions":     `{"name":"x","permissions":[` + strings.Join(seventeen, ",") + `]}`,
		"ErrUnknownField":      `{"name":"x","permissions":["*"],"scopes":["*"]}`,
		"ErrEmptyProjects":     `{"name":"x","permissions":["*"],"project_ids":[]}`,
		"ErrBadProject":        `{"name":"x","permissions":["*"],"project_ids":["a b"]}`,
		"ErrNoName":            `{"permissions":["*"]}`,
		"ErrBothExpiries":      `{"name":"x","permissions":["*"],"expires_in_days":1,"expires_at":"2999-01-01T00:00:00Z"}`,
	} {
		t.Run(name, func(t *testing.T) {
			status, b := f.do(t, http.MethodPost, "/v1/root-keys", f.admin, []byte(body))
			if status != http.StatusBadRequest || !strings.Contains(string(b), `"errors"`) {
				t.Fatalf("%d %s, want 400 naming the field", status, b)
			}
		})
	}
	status, b := f.do(t, http.MethodGet, "/v1/root-keys", f.admin, nil)
	if status != http.StatusOK || string(b) != "[]\n" && string(b) != "[]" {
		t.Fatalf("stored after bad input: %d %s", status, b)
	}
}

// TestRootKeyAudit checks the audit events of and by a root key on the
// wire: actor name, and project_id null for root-key changes, listed
// without project_id.
func TestRootKeyAudit(t *testing.T) {
	f := newFixture(t, 1000)
	rk := createRoot(t, f, `{"name":"deployer","permissions":["api-keys:write","root-keys:read"],"project_ids":["p1"]}`)
	token := rk["key"].(string)
	status, b := f.do(t, http.MethodPost, "/v1/api-keys", token, []byte(`{"project_id":"p1","name":"k"}`))
	if status != http.StatusCreated {
		t.Fatalf("create by root key: %d %s", status, b)
	}
	var k KeyObject
	if err := json.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	status, b = f.do(t, http.MethodGet, "/v1/audit-events?project_id=p1&key_id="+k.ID, token, nil)
	var evs []AuditEventObject
	if err := json.Unmarshal(b, &evs); err != nil || status != http.StatusOK || len(evs) != 1 {
		t.Fatalf("%d %s", status, b)
	}
	if a := evs[0].Actor; a.Type != apikey.ActorRootKey || a.KeyID == nil || *a.KeyID != rk["id"] || a.Name == nil || *a.Name != "deployer" {
		t.Fatalf("actor %s", b)
	}
	// Root-key events: no project; the admin and root-keys:read see them.
	for _, tok := range []string{f.admin, token} {
		status, b = f.do(t, http.MethodGet, "/v1/audit-events", tok, nil)
		if err := json.Unmarshal(b, &evs); err != nil || status != http.StatusOK || len(evs) != 1 ||
			evs[0].Action != apikey.ActionRootKeyCreated || evs[0].ProjectID != nil || !strings.Contains(string(b), `"project_id":null`) {
			t.Fatalf("%d %s", status, b)
		}
	}
	// A root key with neither api-keys:read nor root-keys:read is 403.
	v := createRoot(t, f, `{"name":"v","permissions":["api-keys:verify"]}`)
	if status, b := f.do(t, http.MethodGet, "/v1/audit-events", v["key"].(string), nil); status != http.StatusForbidden {
		t.Fatalf("%d %s", status, b)
	}
	// A limited root key without project_id on key listings: 400, as the admin.
	if status, b := f.do(t, http.MethodGet, "/v1/api-keys", token, nil); status != http.StatusBadRequest {
		t.Fatalf("%d %s", status, b)
	}
}
