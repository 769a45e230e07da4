package e2e

import (
	"net/http"
	"testing"
)

// TestStraitCLI replays, byte for byte, the requests Strait's CLI
// (strait-dev/cli, `strait api-keys …`) sends, with an API key holding
// api-keys:* as its bearer: expiring-soon with no query, list with no
// query, create, rotate and revoke. Nothing of Strait is built; these are
// its requests as its client writes them (SPEC §12).
func TestStraitCLI(t *testing.T) {
	s := startServer(t)
	cli := s.create(t, s.Admin, map[string]any{"project_id": "strait", "name": "strait cli", "scopes": []string{"api-keys:*"}})
	other := s.create(t, s.Admin, map[string]any{"project_id": "elsewhere", "name": "not strait's", "expires_in_days": 1})

	// strait api-keys expiring-soon
	soon := expect(t, s.do(t, http.MethodGet, "/v1/api-keys/expiring-soon", cli.Secret, nil), http.StatusOK).list(t)
	if len(soon) != 0 {
		t.Fatalf("expiring-soon before any expiring key: %v", soon)
	}

	// strait api-keys create --name ci --scopes api-keys:read --expires-in-days 30
	// (an API key issues only scopes it holds itself: SPEC §3)
	r := expect(t, s.do(t, http.MethodPost, "/v1/api-keys", cli.Secret,
		`{"project_id":"strait","name":"ci","scopes":["api-keys:read"],"expires_in_days":30}`), http.StatusCreated)
	created := r.object(t)
	id, _ := created["id"].(string)
	plain, _ := created["key"].(string)
	secrets.add("API key", plain)
	if id == "" || plain == "" || created["project_id"] != "strait" || created["expires_at"] == nil {
		t.Fatalf("create: %s", r.Body)
	}

	// strait api-keys list
	list := expect(t, s.do(t, http.MethodGet, "/v1/api-keys", cli.Secret, nil), http.StatusOK).list(t)
	if len(list) != 2 || list[0]["id"] != id || list[1]["id"] != cli.ID {
		t.Fatalf("list without project_id: %v, want the two keys of strait, newest first", list)
	}

	// strait api-keys expiring-soon, now that one expires within 30 days
	soon = expect(t, s.do(t, http.MethodGet, "/v1/api-keys/expiring-soon", cli.Secret, nil), http.StatusOK).list(t)
	if len(soon) != 1 || soon[0]["id"] != id {
		t.Fatalf("expiring-soon: %v, want only %s (not %s of another project)", soon, id, other.ID)
	}

	// strait api-keys rotate <id>
	r = expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+id+"/rotate", cli.Secret, `{"grace_period_minutes":60}`), http.StatusCreated)
	rotated := r.object(t)
	newKey, _ := rotated["key"].(string)
	secrets.add("API key", newKey)
	newID, _ := rotated["new_key_id"].(string)
	if rotated["old_key_id"] != id || newID == "" || newKey == "" || rotated["grace_expires_at"] == nil {
		t.Fatalf("rotate: %s", r.Body)
	}

	// strait api-keys revoke <id>
	r = expect(t, s.do(t, http.MethodDelete, "/v1/api-keys/"+newID, cli.Secret, nil), http.StatusNoContent)
	if len(r.Body) != 0 {
		t.Fatalf("revoke answered a body: %s", r.Body)
	}
	got := expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+newID, cli.Secret, nil), http.StatusOK).object(t)
	if got["status"] != "revoked" {
		t.Fatalf("after revoke: %v", got)
	}
	// The audit log of its own project, without project_id either.
	events := expect(t, s.do(t, http.MethodGet, "/v1/audit-events", cli.Secret, nil), http.StatusOK).list(t)
	if len(events) != 4 { // cli created, ci created, rotated, revoked
		t.Fatalf("audit events: %d, want 4: %v", len(events), events)
	}
	for _, e := range events {
		if e["project_id"] != "strait" {
			t.Fatalf("audit event of another project: %v", e)
		}
	}
}
