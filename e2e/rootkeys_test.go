package e2e

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// rootKey issues a root key through the API with token and records its
// plaintext for the log secret scan.
func (s *server) rootKey(t *testing.T, token string, body map[string]any) key {
	t.Helper()
	obj := expect(t, s.do(t, http.MethodPost, "/v1/root-keys", token, body), http.StatusCreated).object(t)
	secret, _ := obj["key"].(string)
	secrets.add("root key", secret)
	if !strings.HasPrefix(secret, "apikeyd_") {
		t.Fatalf("root key %q", secret)
	}
	return key{ID: obj["id"].(string), Secret: secret, Object: obj}
}

// TestRootKeyVerifyOnly: a verify-only root key of every project verifies
// the keys of two projects, and can do nothing else.
func TestRootKeyVerifyOnly(t *testing.T) {
	s := startServer(t)
	guard := s.rootKey(t, s.Admin, map[string]any{"name": "api-gateway", "permissions": []string{"api-keys:verify"}, "project_ids": nil})
	if guard.Object["project_ids"] != nil {
		t.Fatalf("project_ids %v, want null", guard.Object["project_ids"])
	}
	a := s.create(t, s.Admin, map[string]any{"project_id": "acme", "name": "a", "scopes": []string{"orders:read"}})
	b := s.create(t, s.Admin, map[string]any{"project_id": "globex", "name": "b"})
	for _, k := range []key{a, b} {
		if v := s.verify(t, guard.Secret, map[string]any{"key": k.Secret}); v["code"] != "VALID" || v["key_id"] != k.ID {
			t.Errorf("verify %s: %v", k.ID, v)
		}
	}
	if v := s.verify(t, guard.Secret, map[string]any{"key": a.Secret, "scopes": []string{"orders:write"}}); v["code"] != "INSUFFICIENT_SCOPE" {
		t.Errorf("scopes: %v", v)
	}
	// A root key is nobody's customer key.
	if v := s.verify(t, s.Admin, map[string]any{"key": guard.Secret}); v["code"] != "NOT_FOUND" {
		t.Errorf("a root key verified: %v", v)
	}
	problem(t, s.do(t, http.MethodPost, "/v1/api-keys", guard.Secret, map[string]any{"project_id": "acme", "name": "x"}), http.StatusForbidden)
	problem(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=acme", guard.Secret, nil), http.StatusForbidden)
	problem(t, s.do(t, http.MethodGet, "/v1/root-keys", guard.Secret, nil), http.StatusForbidden)
	// Its use is recorded.
	waitFor(t, propagationLimit*5, "the root key's last_used_at", func() bool {
		return expect(t, s.do(t, http.MethodGet, "/v1/root-keys/"+guard.ID, s.Admin, nil), http.StatusOK).object(t)["last_used_at"] != nil
	})
}

// TestRootKeyProjects: a root key limited to a project sees nothing of
// another: 404 for its key IDs, NOT_FOUND on verify, 403 on list and
// create; and it cannot escalate.
func TestRootKeyProjects(t *testing.T) {
	s := startServer(t)
	ops := s.rootKey(t, s.Admin, map[string]any{"name": "acme-ops", "project_ids": []string{"acme"},
		"permissions": []string{"api-keys:write", "api-keys:verify", "root-keys:write"}})
	mine := s.create(t, ops.Secret, map[string]any{"project_id": "acme", "name": "mine", "scopes": []string{"orders:read"}})
	theirs := s.create(t, s.Admin, map[string]any{"project_id": "globex", "name": "theirs"})

	expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+mine.ID, ops.Secret, nil), http.StatusOK)
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/v1/api-keys/" + theirs.ID},
		{http.MethodDelete, "/v1/api-keys/" + theirs.ID},
		{http.MethodPost, "/v1/api-keys/" + theirs.ID + "/rotate"},
	} {
		problem(t, s.do(t, r.method, r.path, ops.Secret, nil), http.StatusNotFound)
	}
	if v := s.verify(t, ops.Secret, map[string]any{"key": theirs.Secret}); v["valid"] != false || v["code"] != "NOT_FOUND" || len(v) != 2 {
		t.Errorf("verify of another project's key: %v", v)
	}
	problem(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=globex", ops.Secret, nil), http.StatusForbidden)
	problem(t, s.do(t, http.MethodPost, "/v1/api-keys", ops.Secret, map[string]any{"project_id": "globex", "name": "x"}), http.StatusForbidden)
	if got := expect(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=acme", ops.Secret, nil), http.StatusOK).list(t); len(got) != 1 {
		t.Errorf("acme's keys: %v", got)
	}

	t.Run("ErrEscalation", func(t *testing.T) {
		for name, body := range map[string]map[string]any{
			"Permission":   {"name": "x", "permissions": []string{"root-keys:*"}, "project_ids": []string{"acme"}},
			"Everything":   {"name": "x", "permissions": []string{"*"}, "project_ids": []string{"acme"}},
			"AllProjects":  {"name": "x", "permissions": []string{"api-keys:read"}, "project_ids": nil},
			"OmitProjects": {"name": "x", "permissions": []string{"api-keys:read"}},
			"OtherProject": {"name": "x", "permissions": []string{"api-keys:read"}, "project_ids": []string{"acme", "globex"}},
		} {
			t.Run(name, func(t *testing.T) {
				problem(t, s.do(t, http.MethodPost, "/v1/root-keys", ops.Secret, body), http.StatusForbidden)
			})
		}
		problem(t, s.do(t, http.MethodPatch, "/v1/root-keys/"+ops.ID, ops.Secret, map[string]any{"project_ids": nil}), http.StatusForbidden)
		problem(t, s.do(t, http.MethodPatch, "/v1/root-keys/"+ops.ID, ops.Secret, map[string]any{"permissions": []string{"*"}}), http.StatusForbidden)
		// A customer key with apikeyd's own scopes is escalation too.
		problem(t, s.do(t, http.MethodPost, "/v1/api-keys", ops.Secret, map[string]any{"project_id": "acme", "name": "x", "scopes": []string{"*"}}), http.StatusForbidden)
		if got := expect(t, s.do(t, http.MethodGet, "/v1/root-keys", s.Admin, nil), http.StatusOK).list(t); len(got) != 1 {
			t.Fatalf("root keys after refused creates: %d, want 1", len(got))
		}
		if got := expect(t, s.do(t, http.MethodGet, "/v1/root-keys/"+ops.ID, s.Admin, nil), http.StatusOK).object(t); got["project_ids"] == nil {
			t.Fatalf("a refused patch changed the key: %v", got)
		}
	})

	t.Run("OtherProjectsRootKeysAreNotFound", func(t *testing.T) {
		all := s.rootKey(t, s.Admin, map[string]any{"name": "everywhere", "permissions": []string{"api-keys:verify"}})
		problem(t, s.do(t, http.MethodGet, "/v1/root-keys/"+all.ID, ops.Secret, nil), http.StatusNotFound)
		problem(t, s.do(t, http.MethodDelete, "/v1/root-keys/"+all.ID, ops.Secret, nil), http.StatusNotFound)
		for _, rk := range expect(t, s.do(t, http.MethodGet, "/v1/root-keys", ops.Secret, nil), http.StatusOK).list(t) {
			if rk["id"] == all.ID {
				t.Fatal("ops lists a root key of every project")
			}
		}
	})

	t.Run("AuditNamesTheRootKey", func(t *testing.T) {
		evs := expect(t, s.do(t, http.MethodGet, "/v1/audit-events?project_id=acme&key_id="+mine.ID, s.Admin, nil), http.StatusOK).list(t)
		if len(evs) != 1 {
			t.Fatalf("events %v", evs)
		}
		actor := evs[0]["actor"].(map[string]any)
		if actor["type"] != "root_key" || actor["key_id"] != ops.ID || actor["name"] != "acme-ops" {
			t.Fatalf("actor %v", actor)
		}
		// The root key's own creation: an event of no project.
		evs = expect(t, s.do(t, http.MethodGet, "/v1/audit-events?key_id="+ops.ID, s.Admin, nil), http.StatusOK).list(t)
		if len(evs) != 1 || evs[0]["action"] != "root_key.created" || evs[0]["project_id"] != nil {
			t.Fatalf("root key events %v", evs)
		}
	})
}

// TestRootKeyRoutesRefuseAPIKeys: API keys, whatever their scopes, are 403
// on every root-key route.
func TestRootKeyRoutesRefuseAPIKeys(t *testing.T) {
	s := startServer(t)
	rk := s.rootKey(t, s.Admin, map[string]any{"name": "target", "permissions": []string{"api-keys:read"}})
	k := s.create(t, s.Admin, map[string]any{"project_id": "acme", "name": "all", "scopes": []string{"*", "root-keys:*"}})
	for _, r := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/v1/root-keys", nil},
		{http.MethodPost, "/v1/root-keys", map[string]any{"name": "x", "permissions": []string{"api-keys:read"}}},
		{http.MethodGet, "/v1/root-keys/" + rk.ID, nil},
		{http.MethodPatch, "/v1/root-keys/" + rk.ID, map[string]any{"name": "x"}},
		{http.MethodDelete, "/v1/root-keys/" + rk.ID, nil},
		{http.MethodPost, "/v1/root-keys/" + rk.ID + "/rotate", map[string]any{}},
	} {
		problem(t, s.do(t, r.method, r.path, k.Secret, r.body), http.StatusForbidden)
	}
	got := expect(t, s.do(t, http.MethodGet, "/v1/root-keys/"+rk.ID, s.Admin, nil), http.StatusOK).object(t)
	if got["name"] != "target" || got["status"] != "active" {
		t.Fatalf("the root key changed: %v", got)
	}
}

// TestRootKeyLifecycle: rotation with grace 0 cuts the old key off at
// once, revocation is idempotent, and bad input is 400 and stores nothing.
func TestRootKeyLifecycle(t *testing.T) {
	s := startServer(t)
	rk := s.rootKey(t, s.Admin, map[string]any{"name": "ci", "permissions": []string{"api-keys:read"}, "project_ids": []string{"acme"}, "expires_in_days": 30})
	expect(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=acme", rk.Secret, nil), http.StatusOK)

	rot := expect(t, s.do(t, http.MethodPost, "/v1/root-keys/"+rk.ID+"/rotate", s.Admin, map[string]any{"grace_period_minutes": 0}), http.StatusCreated).object(t)
	secrets.add("root key", rot["key"].(string))
	for _, f := range []string{"old_key_id", "new_key_id", "name", "key", "key_prefix", "permissions", "project_ids", "expires_at", "created_at", "grace_expires_at"} {
		if _, ok := rot[f]; !ok {
			t.Errorf("rotate answer lacks %s: %v", f, rot)
		}
	}
	problem(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=acme", rk.Secret, nil), http.StatusUnauthorized)
	expect(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=acme", rot["key"].(string), nil), http.StatusOK)
	problem(t, s.do(t, http.MethodPost, "/v1/root-keys/"+rk.ID+"/rotate", s.Admin, nil), http.StatusConflict)
	problem(t, s.do(t, http.MethodPatch, "/v1/root-keys/"+rk.ID, s.Admin, map[string]any{"name": "x"}), http.StatusConflict)

	newID := rot["new_key_id"].(string)
	for range 2 {
		expect(t, s.do(t, http.MethodDelete, "/v1/root-keys/"+newID, s.Admin, nil), http.StatusNoContent)
	}
	problem(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=acme", rot["key"].(string), nil), http.StatusUnauthorized)
	problem(t, s.do(t, http.MethodDelete, "/v1/root-keys/root_nope", s.Admin, nil), http.StatusNotFound)

	t.Run("ErrBadInput", func(t *testing.T) {
		before := len(expect(t, s.do(t, http.MethodGet, "/v1/root-keys", s.Admin, nil), http.StatusOK).list(t))
		seventeen := make([]string, 17)
		for i := range seventeen {
			seventeen[i] = "api-keys:read"
		}
		for name, body := range map[string]any{
			"UnknownPermission": map[string]any{"name": "x", "permissions": []string{"orders:read"}},
			"EmptyPermissions":  map[string]any{"name": "x", "permissions": []string{}},
			"17Permissions":     map[string]any{"name": "x", "permissions": seventeen},
			"UnknownField":      map[string]any{"name": "x", "permissions": []string{"*"}, "scopes": []string{"*"}},
			"EmptyProjects":     map[string]any{"name": "x", "permissions": []string{"*"}, "project_ids": []string{}},
		} {
			t.Run(name, func(t *testing.T) {
				problem(t, s.do(t, http.MethodPost, "/v1/root-keys", s.Admin, body), http.StatusBadRequest)
			})
		}
		problem(t, s.do(t, http.MethodPatch, "/v1/root-keys/"+newID, s.Admin, map[string]any{"permissions": []string{"nope"}}), http.StatusBadRequest)
		if after := len(expect(t, s.do(t, http.MethodGet, "/v1/root-keys", s.Admin, nil), http.StatusOK).list(t)); after != before {
			t.Fatalf("%d root keys after bad input, %d before", after, before)
		}
	})
}

// TestRootKeyRevokedOnReplica: a root key revoked on one replica is 401 on
// the others as soon as the change reaches them — within the propagation
// bound the key revocations have (TestReplicasPropagate).
func TestRootKeyRevokedOnReplica(t *testing.T) {
	rs := startReplicas(t, 2)
	a, b := rs[0], rs[1]
	rk := a.rootKey(t, a.Admin, map[string]any{"name": "ops", "permissions": []string{"api-keys:read"}, "project_ids": []string{"acme"}})
	expect(t, b.do(t, http.MethodGet, "/v1/api-keys?project_id=acme", rk.Secret, nil), http.StatusOK)
	expect(t, a.do(t, http.MethodDelete, "/v1/root-keys/"+rk.ID, a.Admin, nil), http.StatusNoContent)
	waitFor(t, propagationLimit, "the revoked root key to be refused on B", func() bool {
		return b.do(t, http.MethodGet, "/v1/api-keys?project_id=acme", rk.Secret, nil).Status == http.StatusUnauthorized
	})
	// And it stays refused: never 200 again.
	for range 20 {
		problem(t, b.do(t, http.MethodGet, "/v1/api-keys?project_id=acme", rk.Secret, nil), http.StatusUnauthorized)
	}
}

// TestKeyPrefixReservedForRootKeys: APIKEYD_KEY_PREFIX=apikeyd is refused
// at start, with a message that says why.
func TestKeyPrefixReservedForRootKeys(t *testing.T) {
	cmd := exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "data"))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "APIKEYD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "APIKEYD_KEY_PREFIX=apikeyd")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err == nil || cmd.ProcessState.ExitCode() == 0 {
		t.Fatalf("apikeyd started with the root keys' prefix:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "APIKEYD_KEY_PREFIX") || !strings.Contains(out.String(), "root keys") {
		t.Fatalf("the error does not say why:\n%s", out.String())
	}
}
