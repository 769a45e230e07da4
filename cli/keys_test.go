package cli

import (
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/apikeyd/apikeyd/internal/testserver"
)

// cliRun runs the CLI in-process against url with the admin token.
func cliRun(t *testing.T, url, token string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{"APIKEYD_URL": url, "APIKEYD_TOKEN": token}
	code = run(args, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

// TestKeysFirstUse: what a new user of `apikeyd keys` runs into.
func TestKeysFirstUse(t *testing.T) {
	srv := testserver.New(t)
	run := func(t *testing.T, args ...string) (int, string, string) {
		t.Helper()
		return cliRun(t, srv.URL, srv.AdminToken, args...)
	}
	var created struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	code, out, errOut := run(t, "keys", "create", "--project", "acme", "--name", "first", "--scope", "orders:read", "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &created) != nil || created.ID == "" {
		t.Fatalf("create -o json: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Run("OKUpdateEveryField", func(t *testing.T) {
		code, out, errOut := run(t, "keys", "update", created.ID, "--name", "renamed", "--scope", "orders:read,orders:write",
			"--expires-at", "2031-01-02T03:04:05Z", "--rotation-interval-days", "30",
			"--rotation-webhook-url", "https://hooks.example.com/apikeyd", "--next-rotation-at", "2030-06-01T00:00:00Z", "--json")
		var k map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &k) != nil {
			t.Fatalf("update: exit %d\n%s\n%s", code, out, errOut)
		}
		for field, want := range map[string]any{"name": "renamed", "expires_at": "2031-01-02T03:04:05Z", "rotation_interval_days": 30.0,
			"rotation_webhook_url": "https://hooks.example.com/apikeyd", "next_rotation_at": "2030-06-01T00:00:00Z"} {
			if k[field] != want {
				t.Errorf("%s = %v, want %v", field, k[field], want)
			}
		}
		if s, _ := json.Marshal(k["scopes"]); string(s) != `["orders:read","orders:write"]` {
			t.Errorf("scopes = %s", s)
		}
		if _, ok := k["rotation_webhook_secret"].(string); !ok {
			t.Errorf("no rotation_webhook_secret shown when a webhook URL was set: %v", k)
		}
		code, out, errOut = run(t, "keys", "update", created.ID, "--no-rotation", "--no-rotation-webhook-url", "--no-expiry", "--no-scopes", "-o", "json")
		k = nil
		if code != 0 || json.Unmarshal([]byte(out), &k) != nil {
			t.Fatalf("update clearing: exit %d\n%s\n%s", code, out, errOut)
		}
		for _, field := range []string{"expires_at", "rotation_interval_days", "rotation_webhook_url", "next_rotation_at"} {
			if k[field] != nil {
				t.Errorf("%s = %v after clearing", field, k[field])
			}
		}
		if s, _ := json.Marshal(k["scopes"]); string(s) != `[]` {
			t.Errorf("scopes = %s after --no-scopes", s)
		}
	})
	t.Run("OKAudit", func(t *testing.T) {
		code, out, errOut := run(t, "keys", "audit", "--project", "acme", "--key", created.ID, "-o", "json")
		var events []map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &events) != nil || len(events) != 3 || events[2]["action"] != "api_key.created" {
			t.Fatalf("audit: exit %d, %d events\n%s\n%s", code, len(events), out, errOut)
		}
		code, out, _ = run(t, "keys", "audit", "--project", "acme")
		if code != 0 || !strings.Contains(out, "api_key.updated") || !strings.Contains(out, "ACTION") {
			t.Fatalf("audit table: exit %d\n%s", code, out)
		}
	})
	t.Run("OKAliases", func(t *testing.T) {
		if code, out, errOut := run(t, "keys", "ls", "--project", "acme"); code != 0 || !strings.Contains(out, created.ID) {
			t.Fatalf("ls: exit %d\n%s\n%s", code, out, errOut)
		}
		code, out, errOut := run(t, "keys", "create", "--project", "acme", "--name", "doomed", "-o", "json")
		var d struct{ ID string }
		if code != 0 || json.Unmarshal([]byte(out), &d) != nil {
			t.Fatalf("create: %d %s %s", code, out, errOut)
		}
		if code, out, errOut := run(t, "keys", "rm", d.ID); code != 0 || !strings.Contains(out, d.ID) {
			t.Fatalf("rm: exit %d\n%s\n%s", code, out, errOut)
		}
	})
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"ErrZeroExpiresInDays", []string{"keys", "create", "--project", "acme", "--name", "n", "--expires-in-days", "0"}, []string{"--expires-in-days must be at least 1, got 0"}},
		{"ErrNegativeExpiresInDays", []string{"keys", "create", "--project", "acme", "--name", "n", "--expires-in-days=-3"}, []string{"--expires-in-days must be at least 1, got -3"}},
		{"ErrZeroWithinDays", []string{"keys", "expiring", "--project", "acme", "--within-days", "0"}, []string{"--within-days must be at least 1, got 0"}},
		{"ErrNegativeWithinDays", []string{"keys", "expiring", "--project", "acme", "--within-days=-1"}, []string{"--within-days must be at least 1, got -1"}},
		{"ErrExpiresAt", []string{"keys", "create", "--project", "acme", "--name", "n", "--expires-at", "tomorrow"}, []string{"RFC 3339", "2030-01-01T00:00:00Z"}},
		{"ErrUpdateExpiresAt", []string{"keys", "update", created.ID, "--expires-at", "2030-01-01"}, []string{"RFC 3339", "2030-01-01T00:00:00Z"}},
		{"ErrUpdateNothing", []string{"keys", "update", created.ID}, []string{"nothing to change"}},
		{"ErrOutput", []string{"keys", "ls", "--project", "acme", "-o", "yaml"}, []string{"table or json"}},
		{"ErrMistypedSubcommand", []string{"keys", "lst", "--project", "acme"}, []string{`unknown command "lst"`, "Did you mean this?", "list"}},
		{"ErrMistypedRotate", []string{"keys", "rotat", created.ID}, []string{`unknown command "rotat"`, "rotate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, tc.args...)
			if code != exitUsage || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d", code, out, errOut, exitUsage)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not say %q", errOut, w)
				}
			}
		})
	}
	// Nothing the rejected commands did reached the server.
	code, out, _ = run(t, "keys", "ls", "--project", "acme", "--json")
	var keys []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &keys) != nil || len(keys) != 2 {
		t.Fatalf("keys after the rejected commands: %d\n%s", len(keys), out)
	}
}

// TestKeysConnectionRefused: a server that is not there is named, with the
// setting that points the CLI at the right one.
func TestKeysConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	code, _, errOut := cliRun(t, url, "some-token-0123456789", "keys", "ls", "--project", "acme")
	if code != exitFailed {
		t.Fatalf("exit %d, want %d: %s", code, exitFailed, errOut)
	}
	for _, w := range []string{url, "connection refused", "APIKEYD_URL"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr %q does not say %q", errOut, w)
		}
	}
}

// TestHelpTexts: every keys and root-keys command has examples, and its required flags
// say so.
func TestHelpTexts(t *testing.T) {
	root := newRoot(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}, func(string) string { return "" })
	var cmds []*cobra.Command
	for _, group := range []string{"keys", "root-keys"} {
		g, _, err := root.Find([]string{group})
		if err != nil || g.Name() != group {
			t.Fatalf("%s: %v", group, err)
		}
		cmds = append(append(cmds, g.Commands()...), g)
	}
	for _, c := range cmds {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if c.Example == "" {
			t.Errorf("%s has no examples", c.CommandPath())
		}
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if _, required := f.Annotations[cobra.BashCompOneRequiredFlag]; required && !strings.HasSuffix(f.Usage, "(required)") {
				t.Errorf("%s --%s is required but its help does not say so", c.CommandPath(), f.Name)
			}
		})
	}
}

// TestKeysUsageControl: create with a rate limit and credits, verify with
// a cost, change the credits.
func TestKeysUsageControl(t *testing.T) {
	srv := testserver.New(t)
	var created struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	code, out, errOut := cliRun(t, srv.URL, srv.AdminToken, "keys", "create", "--project", "acme", "--name", "metered",
		"--ratelimit", "per_minute:5:60000", "--credits", "10", "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &created) != nil || !strings.Contains(out, `"per_minute"`) {
		t.Fatalf("create: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = cliRun(t, srv.URL, srv.AdminToken, "keys", "verify", created.Key, "--cost", "4", "-o", "json")
	if code != 0 || !strings.Contains(out, `"remaining": 6`) {
		t.Fatalf("verify --cost 4: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = cliRun(t, srv.URL, srv.AdminToken, "keys", "credits", created.ID, "--op", "increment", "--amount", "5")
	if code != 0 || !strings.Contains(out, "11") {
		t.Fatalf("credits: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = cliRun(t, srv.URL, srv.AdminToken, "keys", "get", created.ID)
	if code != 0 || !strings.Contains(out, "per_minute:5:60000") {
		t.Fatalf("get: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, _ := cliRun(t, srv.URL, srv.AdminToken, "keys", "create", "--project", "acme", "--name", "bad", "--ratelimit", "x"); code != 2 {
		t.Fatalf("a malformed --ratelimit: exit %d, want 2", code)
	}
}
