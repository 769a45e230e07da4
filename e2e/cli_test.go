package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// cliResult is what one run of the CLI printed and how it exited.
type cliResult struct {
	Stdout, Stderr string
	Code           int
}

// cli runs `apikeyd args…` as a subprocess against s, with APIKEYD_URL and
// APIKEYD_TOKEN set to token (unless token is "-": then neither is set).
func (s *server) cli(t *testing.T, token, stdin string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(binary, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "APIKEYD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if token != "-" {
		cmd.Env = append(cmd.Env, "APIKEYD_URL="+s.URL, "APIKEYD_TOKEN="+token)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run apikeyd %v: %v", args, err)
	}
	return cliResult{Stdout: stdout.String(), Stderr: stderr.String(), Code: cmd.ProcessState.ExitCode()}
}

// ok fails unless the CLI exited with code.
func (r cliResult) ok(t *testing.T, code int) cliResult {
	t.Helper()
	if r.Code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.Code, code, r.Stdout, r.Stderr)
	}
	return r
}

func (r cliResult) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.Stdout), v); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.Stdout)
	}
}

// fields parses the two-column table of a single object.
func (r cliResult) fields(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for line := range strings.Lines(r.Stdout) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			t.Fatalf("not a field line: %q", line)
		}
		m[name] = strings.TrimSpace(value)
	}
	return m
}

// rows parses a table with a header line into one map per row.
func (r cliResult) rows(t *testing.T) []map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.Stdout, "\n"), "\n")
	cols := regexp.MustCompile(`\S+( \S+)*`) // cells are separated by 2+ spaces
	header := cols.FindAllStringIndex(lines[0], -1)
	var out []map[string]string
	for _, line := range lines[1:] {
		row := map[string]string{}
		for i, h := range header {
			end := len(line)
			if i+1 < len(header) {
				end = min(header[i+1][0], len(line))
			}
			row[lines[0][h[0]:h[1]]] = strings.TrimSpace(line[h[0]:end])
		}
		out = append(out, row)
	}
	return out
}

// TestCLI runs `apikeyd keys …` and `apikeyd version` as a user would,
// against a real server, and checks table and JSON output.
func TestCLI(t *testing.T) {
	s := startServer(t)

	// create, table output: the key comes first, shown once.
	r := s.cli(t, s.Admin, "", "keys", "create", "--project", "cli", "--name", "checkout service",
		"--scope", "orders:read,orders:write", "--environment", "prod", "--expires-in-days", "30").ok(t, 0)
	created := r.fields(t)
	secrets.add("API key", created["key"])
	if !strings.HasPrefix(created["key"], "sk_") || created["name"] != "checkout service" || created["status"] != "active" ||
		created["scopes"] != "orders:read,orders:write" || created["environment_id"] != "prod" || created["revoked_at"] != "-" {
		t.Fatalf("create table:\n%s", r.Stdout)
	}
	if !strings.Contains(r.Stderr, "shown this once") {
		t.Fatalf("no warning that the key is shown once: %q", r.Stderr)
	}

	// create --json, with the token given as a flag instead.
	r = s.cli(t, "-", "", "keys", "create", "--url", s.URL, "--token", s.Admin, "--json",
		"--project", "cli", "--name", "verifier", "--scope", "api-keys:verify").ok(t, 0)
	var verifier map[string]any
	r.json(t, &verifier)
	secrets.add("API key", verifier["key"].(string))
	hasExactly(t, verifier, append(keyFields, "key")...)
	if r.Stderr != "" {
		t.Fatalf("--json printed to stderr: %q", r.Stderr)
	}

	// Read-only commands run side by side: each is a process start of a
	// race-instrumented binary.
	t.Run("ReadOnly", func(t *testing.T) {
		t.Run("List", func(t *testing.T) {
			t.Parallel()
			rows := s.cli(t, s.Admin, "", "keys", "list", "--project", "cli").ok(t, 0).rows(t)
			if len(rows) != 2 || rows[0]["NAME"] != "verifier" || rows[1]["NAME"] != "checkout service" ||
				rows[1]["ID"] != created["id"] || rows[1]["STATUS"] != "active" || rows[1]["ENVIRONMENT"] != "prod" ||
				rows[1]["SCOPES"] != "orders:read,orders:write" || rows[1]["EXPIRES"] == "-" {
				t.Fatalf("rows %v", rows)
			}
			// --json follows the pages: two pages of one key.
			var keys []map[string]any
			s.cli(t, s.Admin, "", "keys", "list", "--project", "cli", "--page-size", "1", "--json").ok(t, 0).json(t, &keys)
			if len(keys) != 2 || keys[1]["id"] != created["id"] {
				t.Fatalf("list --json: %v", keys)
			}
			hasExactly(t, keys[0], keyFields...)
			var empty []any
			s.cli(t, s.Admin, "", "keys", "list", "--project", "nobody", "--json").ok(t, 0).json(t, &empty)
			if empty == nil || len(empty) != 0 {
				t.Fatalf("empty list: %v", empty)
			}
		})

		t.Run("Get", func(t *testing.T) {
			t.Parallel()
			got := s.cli(t, s.Admin, "", "keys", "get", created["id"]).ok(t, 0).fields(t)
			if got["id"] != created["id"] || got["key_prefix"] != created["key"][:12] || got["key"] != "" {
				t.Fatalf("get: %v", got)
			}
			var obj map[string]any
			s.cli(t, s.Admin, "", "keys", "get", created["id"], "--json").ok(t, 0).json(t, &obj)
			hasExactly(t, obj, keyFields...)
		})

		t.Run("Verify", func(t *testing.T) {
			t.Parallel()
			// The key as an argument, with the verifier key as the token.
			v := s.cli(t, verifier["key"].(string), "", "keys", "verify", created["key"], "--scope", "orders:read", "--environment", "prod").ok(t, 0).fields(t)
			if v["valid"] != "true" || v["code"] != "VALID" || v["key_id"] != created["id"] || v["project_id"] != "cli" {
				t.Fatalf("verify: %v", v)
			}
			// The key from standard input; not valid → exit 3.
			var verdict map[string]any
			s.cli(t, verifier["key"].(string), created["key"]+"\n", "keys", "verify", "--scope", "billing:read", "--json").ok(t, 3).json(t, &verdict)
			if verdict["valid"] != false || verdict["code"] != "INSUFFICIENT_SCOPE" {
				t.Fatalf("verify from stdin: %v", verdict)
			}
			v = s.cli(t, verifier["key"].(string), "not-a-key", "keys", "verify", "-").ok(t, 3).fields(t)
			if v["code"] != "MALFORMED" || v["key_id"] != "" {
				t.Fatalf("verify garbage: %v", v)
			}
		})

		t.Run("Expiring", func(t *testing.T) {
			t.Parallel()
			rows := s.cli(t, s.Admin, "", "keys", "expiring", "--project", "cli", "--within-days", "31").ok(t, 0).rows(t)
			if len(rows) != 1 || rows[0]["ID"] != created["id"] || rows[0]["EXPIRES"] == "-" {
				t.Fatalf("expiring: %v", rows)
			}
			if rows := s.cli(t, s.Admin, "", "keys", "expiring", "--project", "cli", "--within-days", "7").ok(t, 0).rows(t); len(rows) != 0 {
				t.Fatalf("expiring within 7 days: %v", rows)
			}
		})

		t.Run("Version", func(t *testing.T) {
			t.Parallel()
			r := s.cli(t, "-", "", "version").ok(t, 0)
			if !strings.HasPrefix(r.Stdout, "apikeyd ") || !strings.Contains(r.Stdout, "go1.") {
				t.Fatalf("version: %q", r.Stdout)
			}
			var b map[string]any
			s.cli(t, "-", "", "version", "--json").ok(t, 0).json(t, &b)
			if b["version"] == "" || b["go_version"] == "" || b["module"] != "github.com/apikeyd/apikeyd" {
				t.Fatalf("version --json: %v", b)
			}
		})

		t.Run("Completion", func(t *testing.T) {
			t.Parallel()
			for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
				r := s.cli(t, "-", "", "completion", shell).ok(t, 0)
				if !strings.Contains(r.Stdout, "apikeyd") {
					t.Fatalf("%s completion: %q", shell, r.Stdout[:min(200, len(r.Stdout))])
				}
			}
			// Dynamic completion of --status values.
			r := s.cli(t, "-", "", "__complete", "keys", "list", "--status", "")
			if !strings.Contains(r.Stdout, "rotating") {
				t.Fatalf("--status completion: %q", r.Stdout)
			}
		})
	})

	t.Run("RotateAndRevoke", func(t *testing.T) {
		var rot map[string]any
		s.cli(t, s.Admin, "", "keys", "rotate", created["id"], "--grace-minutes", "0", "--json").ok(t, 0).json(t, &rot)
		secrets.add("API key", rot["key"].(string))
		hasExactly(t, rot, rotateFields...)
		if rot["old_key_id"] != created["id"] {
			t.Fatalf("rotate: %v", rot)
		}
		v := s.cli(t, verifier["key"].(string), created["key"], "keys", "verify").ok(t, 3).fields(t)
		if v["code"] != "ROTATED" {
			t.Fatalf("old key after rotation: %v", v)
		}

		table := s.cli(t, s.Admin, "", "keys", "rotate", rot["new_key_id"].(string)).ok(t, 0).fields(t)
		secrets.add("API key", table["key"])
		if table["old_key_id"] != rot["new_key_id"] || table["old_key_works_until"] == "-" || !strings.HasPrefix(table["key"], "sk_") {
			t.Fatalf("rotate table: %v", table)
		}

		r := s.cli(t, s.Admin, "", "keys", "revoke", table["new_key_id"]).ok(t, 0)
		if strings.TrimSpace(r.Stdout) != "revoked  "+table["new_key_id"] {
			t.Fatalf("revoke: %q", r.Stdout)
		}
		if got := s.cli(t, s.Admin, "", "keys", "get", table["new_key_id"]).ok(t, 0).fields(t); got["status"] != "revoked" {
			t.Fatalf("after revoke: %v", got)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		r := s.cli(t, s.Admin, "", "keys", "get", "key_00000000000000000000000000").ok(t, 1)
		if !strings.HasPrefix(r.Stderr, "apikeyd: 404 Not Found: ") {
			t.Fatalf("not found: %q", r.Stderr)
		}
		r = s.cli(t, created["key"], "", "keys", "list", "--project", "cli").ok(t, 1)
		if !strings.Contains(r.Stderr, "401") || strings.Contains(r.Stderr, created["key"]) {
			t.Fatalf("rotated-away token: %q", r.Stderr)
		}
		r = s.cli(t, verifier["key"].(string), "", "keys", "create", "--project", "cli", "--name", "x").ok(t, 1)
		if !strings.Contains(r.Stderr, "403") {
			t.Fatalf("verify-only token creating: %q", r.Stderr)
		}
		r = s.cli(t, s.Admin, "", "keys", "create", "--project", "cli", "--name", "x", "--scope", "bad scope").ok(t, 1)
		if !strings.Contains(r.Stderr, "400") || !strings.Contains(r.Stderr, "scopes[0]") {
			t.Fatalf("invalid scope: %q", r.Stderr)
		}
		s.cli(t, "-", "", "keys", "list", "--project", "cli").ok(t, 2)                        // no token
		s.cli(t, s.Admin, "", "keys", "list").ok(t, 2)                                        // --project missing
		s.cli(t, s.Admin, "", "keys", "frobnicate").ok(t, 2)                                  // no such command
		s.cli(t, s.Admin, "", "keys", "get", "--url", "http://127.0.0.1:1", "key_x").ok(t, 1) // unreachable
	})
}
