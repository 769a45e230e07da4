package e2e

import (
	"net/http"
	"testing"
	"time"
)

// TestVerifyCodes produces every verdict of SPEC §5.
func TestVerifyCodes(t *testing.T) {
	s := startServer(t)
	verifier := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "verifier", "scopes": []string{"api-keys:verify"}})
	good := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "good", "scopes": []string{"orders:*", "profile"}, "environment_id": "prod"})
	revoked := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "revoked"})
	expect(t, s.do(t, http.MethodDelete, "/v1/api-keys/"+revoked.ID, s.Admin, nil), http.StatusNoContent)
	rotated := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "rotated"})
	r := expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+rotated.ID+"/rotate", s.Admin, `{"grace_period_minutes": 0}`), http.StatusCreated).object(t)
	secrets.add("API key", r["key"].(string))
	expiring := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "expiring",
		"expires_at": time.Now().Add(1200 * time.Millisecond).UTC().Format(time.RFC3339Nano)})
	if v := s.verify(t, verifier.Secret, map[string]any{"key": expiring.Secret}); v["code"] != "VALID" {
		t.Fatalf("expiring key before its time: %v", v)
	}
	other := s.create(t, s.Admin, map[string]any{"project_id": "p2", "name": "other"})
	time.Sleep(1300 * time.Millisecond)

	for _, tc := range []struct {
		name  string
		body  map[string]any
		code  string
		known bool
	}{
		{"VALID", map[string]any{"key": good.Secret}, "VALID", true},
		{"VALID/scopes", map[string]any{"key": good.Secret, "scopes": []string{"orders:read", "profile"}, "environment_id": "prod"}, "VALID", true},
		{"MALFORMED", map[string]any{"key": "hello"}, "MALFORMED", false},
		{"MALFORMED/empty", map[string]any{"key": ""}, "MALFORMED", false},
		{"MALFORMED/checksum", map[string]any{"key": typo(good.Secret)}, "MALFORMED", false},
		{"NOT_FOUND", map[string]any{"key": "sk_00000000000000000000000000000000000000000004LPos6"}, "NOT_FOUND", false},
		{"NOT_FOUND/otherProject", map[string]any{"key": other.Secret}, "NOT_FOUND", false},
		{"EXPIRED", map[string]any{"key": expiring.Secret}, "EXPIRED", true},
		{"REVOKED", map[string]any{"key": revoked.Secret}, "REVOKED", true},
		{"ROTATED", map[string]any{"key": rotated.Secret}, "ROTATED", true},
		{"INSUFFICIENT_SCOPE", map[string]any{"key": good.Secret, "scopes": []string{"orders:read", "admin"}}, "INSUFFICIENT_SCOPE", true},
		{"ENVIRONMENT_MISMATCH", map[string]any{"key": good.Secret, "environment_id": "dev"}, "ENVIRONMENT_MISMATCH", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := s.verify(t, verifier.Secret, tc.body)
			if v["code"] != tc.code || v["valid"] != (tc.code == "VALID") {
				t.Fatalf("verdict %v, want %s", v, tc.code)
			}
			if tc.known {
				hasExactly(t, v, "valid", "code", "key_id", "project_id", "environment_id", "name", "scopes", "expires_at", "grace_expires_at",
					"owner_id", "meta") // SPEC §9 adds owner_id and meta
				if v["project_id"] != "p1" {
					t.Fatalf("project_id %v", v["project_id"])
				}
			} else {
				hasExactly(t, v, "valid", "code")
			}
		})
	}
	v := s.verify(t, verifier.Secret, map[string]any{"key": good.Secret})
	if v["key_id"] != good.ID || v["name"] != "good" || v["environment_id"] != "prod" {
		t.Fatalf("details %v", v)
	}
	// The admin token verifies keys of every project.
	if v := s.verify(t, s.Admin, map[string]any{"key": other.Secret}); v["code"] != "VALID" {
		t.Fatalf("admin verifying p2 key: %v", v)
	}
	for name, body := range map[string]string{
		"ErrNoKey":       `{}`,
		"ErrKeyType":     `{"key": 5}`,
		"ErrUnknown":     `{"key": "x", "extra": true}`,
		"ErrScope":       `{"key": "x", "scopes": ["bad scope"]}`,
		"ErrEnvironment": `{"key": "x", "environment_id": "a b"}`,
		"ErrJSON":        `{"key": `,
	} {
		t.Run(name, func(t *testing.T) {
			problem(t, s.do(t, http.MethodPost, "/v1/api-keys/verify", verifier.Secret, body), http.StatusBadRequest)
		})
	}
}

// TestExpiringAndAudit checks the expiring listing and the audit trail.
func TestExpiringAndAudit(t *testing.T) {
	s := startServer(t)
	in5 := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "in5", "expires_in_days": 5})
	in2 := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "in2", "expires_in_days": 2})
	s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "in40", "expires_in_days": 40})
	s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "never"})
	gone := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "gone", "expires_in_days": 1})
	expect(t, s.do(t, http.MethodDelete, "/v1/api-keys/"+gone.ID, s.Admin, nil), http.StatusNoContent)
	s.create(t, s.Admin, map[string]any{"project_id": "p2", "name": "other", "expires_in_days": 1})

	list := expect(t, s.do(t, http.MethodGet, "/v1/api-keys/expiring?project_id=p1", s.Admin, nil), http.StatusOK).list(t)
	if len(list) != 2 || list[0]["id"] != in2.ID || list[1]["id"] != in5.ID {
		t.Fatalf("expiring within 30 days: %v", list)
	}
	list = expect(t, s.do(t, http.MethodGet, "/v1/api-keys/expiring?project_id=p1&within_days=3", s.Admin, nil), http.StatusOK).list(t)
	if len(list) != 1 || list[0]["id"] != in2.ID {
		t.Fatalf("expiring within 3 days: %v", list)
	}
	list = expect(t, s.do(t, http.MethodGet, "/v1/api-keys/expiring?project_id=p1&within_days=60", s.Admin, nil), http.StatusOK).list(t)
	if len(list) != 3 {
		t.Fatalf("expiring within 60 days: %d keys", len(list))
	}
	problem(t, s.do(t, http.MethodGet, "/v1/api-keys/expiring?project_id=p1&within_days=0", s.Admin, nil), http.StatusBadRequest)
	problem(t, s.do(t, http.MethodGet, "/v1/api-keys/expiring", s.Admin, nil), http.StatusBadRequest)

	// Audit: who did what to which key.
	writer := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "writer", "scopes": []string{"api-keys:write"}})
	k := s.create(t, writer.Secret, map[string]any{"project_id": "p1", "name": "audited"})
	expect(t, s.do(t, http.MethodPatch, "/v1/api-keys/"+k.ID, writer.Secret, map[string]any{"name": "renamed"}), http.StatusOK)
	rot := expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+k.ID+"/rotate", s.Admin, `{}`), http.StatusCreated).object(t)
	secrets.add("API key", rot["key"].(string))
	expect(t, s.do(t, http.MethodDelete, "/v1/api-keys/"+k.ID, writer.Secret, nil), http.StatusNoContent)
	events := expect(t, s.do(t, http.MethodGet, "/v1/audit-events?project_id=p1&key_id="+k.ID, s.Admin, nil), http.StatusOK).list(t)
	var actions []string
	for _, e := range events {
		actions = append(actions, e["action"].(string))
		hasExactly(t, e, "id", "project_id", "environment_id", "key_id", "action", "actor", "details", "created_at")
	}
	want := []string{"api_key.revoked", "api_key.rotated", "api_key.updated", "api_key.created"}
	if len(actions) != 4 || actions[0] != want[0] || actions[1] != want[1] || actions[2] != want[2] || actions[3] != want[3] {
		t.Fatalf("actions %v, want %v", actions, want)
	}
	actor := events[3]["actor"].(map[string]any)
	if actor["type"] != "api_key" || actor["key_id"] != writer.ID {
		t.Fatalf("create actor %v", actor)
	}
	if a := events[1]["actor"].(map[string]any); a["type"] != "admin" || a["key_id"] != nil {
		t.Fatalf("rotate actor %v", a)
	}
	if d := events[2]["details"].(map[string]any); d["name"] != "renamed" {
		t.Fatalf("update details %v", d)
	}
	// Reading the audit log needs read access to the project.
	reader := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "reader", "scopes": []string{"api-keys:read"}})
	expect(t, s.do(t, http.MethodGet, "/v1/audit-events?project_id=p1&limit=2", reader.Secret, nil), http.StatusOK)
	paged := expect(t, s.do(t, http.MethodGet, "/v1/audit-events?project_id=p1&limit=2", s.Admin, nil), http.StatusOK)
	if len(paged.list(t)) != 2 || paged.Header.Get("Link") == "" {
		t.Fatalf("audit paging: %s, Link %q", paged.Body, paged.Header.Get("Link"))
	}
}

// TestOperationalRoutes checks /healthz, /readyz and /openapi.json.
func TestOperationalRoutes(t *testing.T) {
	s := startServer(t)
	expect(t, s.do(t, http.MethodGet, "/healthz", "", nil), http.StatusOK)
	expect(t, s.do(t, http.MethodGet, "/readyz", "", nil), http.StatusOK)
	doc := expect(t, s.do(t, http.MethodGet, "/openapi.json", "", nil), http.StatusOK).object(t)
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi %v", doc["openapi"])
	}
	paths := doc["paths"].(map[string]any)
	for path, methods := range map[string][]string{
		"/v1/api-keys":                {"get", "post"},
		"/v1/api-keys/{keyID}":        {"get", "patch", "delete"},
		"/v1/api-keys/{keyID}/rotate": {"post"},
		"/v1/api-keys/verify":         {"post"},
		"/v1/api-keys/expiring":       {"get"},
		"/v1/audit-events":            {"get"},
		"/healthz":                    {"get"},
		"/readyz":                     {"get"},
		"/openapi.json":               {"get"},
	} {
		item, ok := paths[path].(map[string]any)
		if !ok {
			t.Errorf("openapi lacks %s", path)
			continue
		}
		for _, m := range methods {
			if _, ok := item[m]; !ok {
				t.Errorf("openapi lacks %s %s", m, path)
			}
		}
	}
}
