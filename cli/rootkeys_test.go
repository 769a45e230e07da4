package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/testserver"
)

// TestRootKeysCommands runs every root-keys command against a real server,
// as an operator would: issue a verify-only key of every project and an
// operator key of one, change, rotate and revoke it.
func TestRootKeysCommands(t *testing.T) {
	srv := testserver.New(t)
	run := func(t *testing.T, token string, args ...string) (int, string, string) {
		t.Helper()
		return cliRun(t, srv.URL, token, args...)
	}
	var guard, ops struct {
		ID         string   `json:"id"`
		Key        string   `json:"key"`
		ProjectIDs []string `json:"project_ids"`
	}
	code, out, errOut := run(t, srv.AdminToken, "root-keys", "create", "--name", "gateway", "--permission", "api-keys:verify", "--all-projects", "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &guard) != nil || !strings.HasPrefix(guard.Key, "apikeyd_") || guard.ProjectIDs != nil {
		t.Fatalf("create --all-projects: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = run(t, srv.AdminToken, "root-keys", "create", "--name", "ops", "--permission", "api-keys:write,root-keys:write",
		"--project", "acme", "--expires-in-days", "30", "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &ops) != nil || len(ops.ProjectIDs) != 1 || ops.ProjectIDs[0] != "acme" {
		t.Fatalf("create --project: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Run("ErrNoProjects", func(t *testing.T) {
		code, _, errOut := run(t, srv.AdminToken, "root-keys", "create", "--name", "x", "--permission", "*")
		if code != 2 || !strings.Contains(errOut, "--all-projects") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
	t.Run("ErrUnknownPermission", func(t *testing.T) {
		code, _, errOut := run(t, srv.AdminToken, "root-keys", "create", "--name", "x", "--permission", "orders:read", "--all-projects")
		if code != 1 || !strings.Contains(errOut, "permissions[0]") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
	t.Run("OKList", func(t *testing.T) {
		code, out, errOut := run(t, srv.AdminToken, "root-keys", "ls")
		if code != 0 || !strings.Contains(out, "gateway") || !strings.Contains(out, "(all)") || !strings.Contains(out, "acme") {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		if strings.Contains(out, guard.Key) || strings.Contains(out, ops.Key) {
			t.Fatal("a list shows a root key's plaintext")
		}
		// The operator key sees only its own project's root keys.
		code, out, _ = run(t, ops.Key, "root-keys", "ls", "-o", "json")
		if code != 0 || strings.Contains(out, guard.ID) || !strings.Contains(out, ops.ID) {
			t.Fatalf("ops lists: exit %d\n%s", code, out)
		}
	})
	t.Run("OKUpdateGet", func(t *testing.T) {
		code, out, errOut := run(t, srv.AdminToken, "root-keys", "update", guard.ID, "--name", "gateway-eu", "--no-expiry")
		if code != 0 || !strings.Contains(out, "gateway-eu") {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		code, out, _ = run(t, srv.AdminToken, "root-keys", "get", guard.ID)
		if code != 0 || !strings.Contains(out, "gateway-eu") || !strings.Contains(out, "created_by") {
			t.Fatalf("get: exit %d\n%s", code, out)
		}
	})
	t.Run("ErrEscalation", func(t *testing.T) {
		code, _, errOut := run(t, ops.Key, "root-keys", "create", "--name", "x", "--permission", "api-keys:read", "--all-projects")
		if code != 1 || !strings.Contains(errOut, "403") && !strings.Contains(strings.ToLower(errOut), "forbidden") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
	t.Run("OKRotateRevoke", func(t *testing.T) {
		code, out, errOut := run(t, srv.AdminToken, "root-keys", "rotate", ops.ID, "--grace-minutes", "0", "-o", "json")
		var r struct {
			NewKeyID string `json:"new_key_id"`
			Key      string `json:"key"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.NewKeyID == "" {
			t.Fatalf("rotate: exit %d\n%s\n%s", code, out, errOut)
		}
		if code, _, _ := run(t, ops.Key, "root-keys", "ls"); code != 1 {
			t.Fatalf("the rotated-out key still works: exit %d", code)
		}
		if code, out, errOut := run(t, srv.AdminToken, "root-keys", "revoke", r.NewKeyID); code != 0 || !strings.Contains(out, r.NewKeyID) {
			t.Fatalf("revoke: exit %d\n%s\n%s", code, out, errOut)
		}
		if code, _, _ := run(t, r.Key, "root-keys", "ls"); code != 1 {
			t.Fatalf("the revoked key still works: exit %d", code)
		}
	})
	t.Run("OKAuditOfRootKeys", func(t *testing.T) {
		code, out, errOut := run(t, srv.AdminToken, "keys", "audit", "--action", "root_key.revoked")
		if code != 0 || !strings.Contains(out, "root_key.revoked") || !strings.Contains(out, "admin") {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
	})
}
