package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/apikeyd/apikeyd/internal/testserver"
)

// TestKeysRichFields runs the SPEC §9 flags against a real server: owner,
// meta from a file, allowlist, list by owner, disable/enable, revoke with a
// reason, and import from a JSON-lines file.
func TestKeysRichFields(t *testing.T) {
	srv := testserver.New(t)
	dir := t.TempDir()
	run := func(t *testing.T, args ...string) map[string]any {
		t.Helper()
		code, out, errOut := cliRun(t, srv.URL, srv.AdminToken, append(args, "-o", "json")...)
		var m map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &m) != nil {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, errOut)
		}
		return m
	}
	metaFile := filepath.Join(dir, "meta.json")
	if err := os.WriteFile(metaFile, []byte("{\n  \"plan\": \"pro\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k := run(t, "keys", "create", "--project", "acme", "--name", "n", "--owner", "team-1", "--meta", "@"+metaFile,
		"--allow-ip", "10.0.0.0/8", "--allow-ip", "2001:db8::1")
	id := k["id"].(string)
	if b, _ := json.Marshal(k["meta"]); k["owner_id"] != "team-1" || string(b) != `{"plan":"pro"}` {
		t.Errorf("create: %v", k)
	}
	if b, _ := json.Marshal(k["ip_allowlist"]); string(b) != `["10.0.0.0/8","2001:db8::1"]` {
		t.Errorf("ip_allowlist %s", b)
	}
	u := run(t, "keys", "update", id, "--no-owner", "--meta", `{"plan":"free"}`, "--no-allowlist")
	if b, _ := json.Marshal(u["meta"]); u["owner_id"] != nil || u["ip_allowlist"] != nil || string(b) != `{"plan":"free"}` {
		t.Errorf("update: %v", u)
	}
	run(t, "keys", "update", id, "--owner", "team-2")
	code, out, _ := cliRun(t, srv.URL, srv.AdminToken, "keys", "ls", "--project", "acme", "--owner", "team-2", "-o", "json")
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0]["id"] != id {
		t.Errorf("ls --owner: exit %d %s", code, out)
	}
	if d := run(t, "keys", "disable", id, "--reason", "review"); d["status"] != "disabled" || d["disabled_reason"] != "review" {
		t.Errorf("disable: %v", d)
	}
	if e := run(t, "keys", "enable", id); e["status"] != "active" {
		t.Errorf("enable: %v", e)
	}
	run(t, "keys", "revoke", id, "--reason", "superseded")
	if g := run(t, "keys", "get", id); g["revocation_reason"] != "superseded" {
		t.Errorf("revocation_reason %v", g["revocation_reason"])
	}

	lines := filepath.Join(dir, "keys.jsonl")
	if err := os.WriteFile(lines, []byte(`{"name":"a","key":"legacy-key-aaaaaaaaaaaa"}`+"\n\n"+
		`{"name":"b","hash":"sha256:`+"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"+`","owner_id":"o"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cliRun(t, srv.URL, srv.AdminToken, "keys", "import", "--project", "acme", lines, "-o", "json")
	var imported []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &imported) != nil || len(imported) != 2 || imported[1]["source"] != "imported" {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = cliRun(t, srv.URL, srv.AdminToken, "keys", "import", "--project", "acme", lines)
	if code == 0 {
		t.Errorf("importing the same keys again: exit 0\n%s", out)
	}
}
