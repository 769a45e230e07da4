package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

const goodKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func load(t *testing.T, args []string, env map[string]string) (Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return Load(fs, func(k string) string { return env[k] })
}

func TestLoadDefaults(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.DataDir != "./data" || c.KeyPrefix != "sk" ||
		c.RotationCheckInterval != 30*time.Second || c.AutoRotationGrace != 24*time.Hour ||
		c.WebhookBackoff != 5*time.Second || c.WebhookMaxAttempts != 10 || c.InsecureWebhooks ||
		c.LastUsedFlush != 10*time.Second || c.MaxStaleness != 2*time.Second || c.Postgres() || c.LogFormat != "text" {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestLoadPrecedence(t *testing.T) {
	env := map[string]string{"APIKEYD_ADDR": "127.0.0.1:9000", "APIKEYD_KEY_PREFIX": "pk", "APIKEYD_INSECURE_WEBHOOKS": "true"}
	t.Run("OK/env", func(t *testing.T) {
		c, err := load(t, nil, env)
		if err != nil || c.Addr != "127.0.0.1:9000" || c.KeyPrefix != "pk" || !c.InsecureWebhooks {
			t.Fatalf("%+v, %v", c, err)
		}
	})
	t.Run("OK/flagWins", func(t *testing.T) {
		c, err := load(t, []string{"--addr", "127.0.0.1:0", "--insecure-webhooks=false"}, env)
		if err != nil || c.Addr != "127.0.0.1:0" || c.KeyPrefix != "pk" || c.InsecureWebhooks {
			t.Fatalf("%+v, %v", c, err)
		}
	})
	t.Run("OK/boolFlagAlone", func(t *testing.T) {
		c, err := load(t, []string{"--insecure-webhooks"}, nil)
		if err != nil || !c.InsecureWebhooks {
			t.Fatalf("%+v, %v", c, err)
		}
	})
	t.Run("OK/uiByDefault", func(t *testing.T) {
		c, err := load(t, nil, nil)
		if err != nil || !c.UI {
			t.Fatalf("%+v, %v", c, err)
		}
	})
	t.Run("OK/uiOff", func(t *testing.T) {
		c, err := load(t, nil, map[string]string{"APIKEYD_UI": "false"})
		if err != nil || c.UI {
			t.Fatalf("%+v, %v", c, err)
		}
	})
	t.Run("OK/secretFromFile", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(path, []byte("a-long-enough-admin-token\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := load(t, nil, map[string]string{"APIKEYD_ADMIN_TOKEN_FILE": path})
		if err != nil || c.AdminToken != "a-long-enough-admin-token" {
			t.Fatalf("%+v, %v", c, err)
		}
	})
	t.Run("OK/postgresWithSecrets", func(t *testing.T) {
		c, err := load(t, nil, map[string]string{
			"APIKEYD_DATABASE_URL": "postgres://localhost/test", "APIKEYD_ADMIN_TOKEN": "a-long-enough-admin-token",
			"APIKEYD_MASTER_KEY": goodKey, "APIKEYD_TRUSTED_PROXIES": "10.0.0.0/8, ::1/128",
		})
		if err != nil || !c.Postgres() || len(c.TrustedProxies) != 2 {
			t.Fatalf("%+v, %v", c, err)
		}
	})
}

// TestLoadErr checks the exact problems of bad configurations: one per
// setting, each naming where its value came from, all of them at once.
func TestLoadErr(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "master.key")
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want []string
	}{
		"ErrAddr": {[]string{"--addr", "nope"}, nil,
			[]string{`APIKEYD_ADDR (from --addr): must be host:port, got "nope"`}},
		"ErrPort": {nil, map[string]string{"APIKEYD_ADDR": "127.0.0.1:70000"},
			[]string{`APIKEYD_ADDR (from APIKEYD_ADDR): port must be 0-65535, got "70000"`}},
		"ErrDurationEnv": {nil, map[string]string{"APIKEYD_ROTATION_CHECK_INTERVAL": "abc"},
			[]string{"APIKEYD_ROTATION_CHECK_INTERVAL (from APIKEYD_ROTATION_CHECK_INTERVAL): must be a duration such as 30s, 5m or 24h"}},
		"ErrDurationFlag": {[]string{"--webhook-backoff", "soon"}, nil,
			[]string{"APIKEYD_WEBHOOK_BACKOFF (from --webhook-backoff): must be a duration such as 30s, 5m or 24h"}},
		"ErrDurationRangeFlag": {[]string{"--last-used-flush=0s"}, nil,
			[]string{"APIKEYD_LAST_USED_FLUSH (from --last-used-flush): must be between 100ms and 1h, got 0s"}},
		"ErrDurationRangeEnv": {nil, map[string]string{"APIKEYD_MAX_STALENESS": "10ms"},
			[]string{"APIKEYD_MAX_STALENESS (from APIKEYD_MAX_STALENESS): must be between 100ms and 1h, got 10ms"}},
		"ErrGraceRange": {[]string{"--auto-rotation-grace", "200h"}, nil,
			[]string{"APIKEYD_AUTO_ROTATION_GRACE (from --auto-rotation-grace): must be between 0s and 168h, got 200h"}},
		"ErrNegativeGrace": {nil, map[string]string{"APIKEYD_AUTO_ROTATION_GRACE": "-1s"},
			[]string{"APIKEYD_AUTO_ROTATION_GRACE (from APIKEYD_AUTO_ROTATION_GRACE): must be between 0s and 168h, got -1s"}},
		"ErrAttemptsRange": {[]string{"--webhook-max-attempts", "0"}, nil,
			[]string{"APIKEYD_WEBHOOK_MAX_ATTEMPTS (from --webhook-max-attempts): must be between 1 and 100, got 0"}},
		"ErrAttemptsNumber": {[]string{"--webhook-max-attempts", "x"}, nil,
			[]string{"APIKEYD_WEBHOOK_MAX_ATTEMPTS (from --webhook-max-attempts): must be a whole number"}},
		"ErrBurstNumber": {nil, map[string]string{"APIKEYD_AUTH_FAILURE_BURST": "lots"},
			[]string{"APIKEYD_AUTH_FAILURE_BURST (from APIKEYD_AUTH_FAILURE_BURST): must be a whole number"}},
		"ErrBool": {nil, map[string]string{"APIKEYD_INSECURE_WEBHOOKS": "maybe"},
			[]string{"APIKEYD_INSECURE_WEBHOOKS (from APIKEYD_INSECURE_WEBHOOKS): must be true or false"}},
		"ErrPrefix": {[]string{"--key-prefix", "has space"}, nil,
			[]string{`APIKEYD_KEY_PREFIX (from --key-prefix): must be 1-8 characters of A-Z a-z 0-9 with optional inner underscores, got "has space"`}},
		"ErrRootKeyPrefix": {nil, map[string]string{"APIKEYD_KEY_PREFIX": "apikeyd"},
			[]string{`APIKEYD_KEY_PREFIX (from APIKEYD_KEY_PREFIX): must not be "apikeyd": that prefix is reserved for root keys, so that a root key can never be taken for a customer's key`}},
		"ErrMasterKey": {nil, map[string]string{"APIKEYD_MASTER_KEY": "c2hvcnQ="},
			[]string{"APIKEYD_MASTER_KEY (from APIKEYD_MASTER_KEY): must decode to 32 bytes, got 5 (want the base64 of 32 random bytes, e.g. `openssl rand -base64 32`)"}},
		"ErrAdminTokenShort": {[]string{"--admin-token", "short"}, nil,
			[]string{"APIKEYD_ADMIN_TOKEN (from --admin-token): must be at least 16 characters without whitespace"}},
		"ErrPostgresSecrets": {nil, map[string]string{"APIKEYD_DATABASE_URL": "postgres://localhost/test"}, []string{
			"APIKEYD_ADMIN_TOKEN (not set): is required with PostgreSQL (every replica must share it)",
			"APIKEYD_MASTER_KEY (not set): is required with PostgreSQL (every replica must share it)",
		}},
		"ErrDatabaseURL": {[]string{"--database-url", "mysql://x"}, nil, []string{
			"APIKEYD_DATABASE_URL (from --database-url): must be a postgres:// or postgresql:// URL",
			"APIKEYD_ADMIN_TOKEN (not set): is required with PostgreSQL (every replica must share it)",
			"APIKEYD_MASTER_KEY (not set): is required with PostgreSQL (every replica must share it)",
		}},
		"ErrDataDir": {[]string{"--data-dir="}, nil,
			[]string{"APIKEYD_DATA_DIR (from --data-dir): must not be empty"}},
		"ErrLogFormat": {[]string{"--log-format", "xml"}, nil,
			[]string{`APIKEYD_LOG_FORMAT (from --log-format): must be text or json, got "xml"`}},
		"ErrLogLevel": {nil, map[string]string{"APIKEYD_LOG_LEVEL": "verbose"},
			[]string{`APIKEYD_LOG_LEVEL (from APIKEYD_LOG_LEVEL): must be debug, info, warn or error, got "verbose"`}},
		"ErrProxies": {nil, map[string]string{"APIKEYD_TRUSTED_PROXIES": "10.0.0.1/33"},
			[]string{`APIKEYD_TRUSTED_PROXIES (from APIKEYD_TRUSTED_PROXIES): "10.0.0.1/33" is not a CIDR`}},
		// A secret file that cannot be read is one problem, not also a
		// missing secret.
		"ErrMissingFile": {nil, map[string]string{"APIKEYD_MASTER_KEY_FILE": missing, "APIKEYD_DATABASE_URL": "postgres://localhost/test",
			"APIKEYD_ADMIN_TOKEN": "a-long-enough-admin-token"},
			[]string{"APIKEYD_MASTER_KEY (from APIKEYD_MASTER_KEY_FILE): cannot read " + missing + ": no such file or directory"}},
		// A value that cannot be read is one problem, not also a range
		// problem about its zero value.
		"ErrAllAtOnce": {
			[]string{"--addr", "x", "--key-prefix", "-", "--webhook-max-attempts", "x", "--last-used-flush=0s"},
			map[string]string{"APIKEYD_ROTATION_CHECK_INTERVAL": "abc", "APIKEYD_WEBHOOK_MAX_ATTEMPTS": "5", "APIKEYD_LOG_FORMAT": "xml"},
			[]string{
				`APIKEYD_ADDR (from --addr): must be host:port, got "x"`,
				`APIKEYD_KEY_PREFIX (from --key-prefix): must be 1-8 characters of A-Z a-z 0-9 with optional inner underscores, got "-"`,
				"APIKEYD_ROTATION_CHECK_INTERVAL (from APIKEYD_ROTATION_CHECK_INTERVAL): must be a duration such as 30s, 5m or 24h",
				"APIKEYD_WEBHOOK_MAX_ATTEMPTS (from --webhook-max-attempts): must be a whole number",
				"APIKEYD_LAST_USED_FLUSH (from --last-used-flush): must be between 100ms and 1h, got 0s",
				`APIKEYD_LOG_FORMAT (from APIKEYD_LOG_FORMAT): must be text or json, got "xml"`,
			}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := load(t, tc.args, tc.env)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if !slices.Equal(ce.Problems, tc.want) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(ce.Problems, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// TestLimits checks that the limits the docs table shows for ranges and
// choices are the ones Load enforces, and that no setting lacks limits.
func TestLimits(t *testing.T) {
	table := MarkdownTable()
	for _, s := range Settings {
		t.Run(s.Env, func(t *testing.T) {
			lim := s.Limits()
			if lim == "" {
				t.Fatal("no limits for the docs table")
			}
			if !strings.Contains(table, "| `"+s.Env+"`") || !strings.Contains(table, "| "+cell(lim)+" |") {
				t.Fatalf("the docs table lacks %s with %q", s.Env, lim)
			}
			var ok, bad []string
			switch {
			case s.bounds != nil:
				b := s.bounds
				ok = []string{b.format(b.lo), b.format(b.hi)}
				bad = []string{b.format(b.lo - 1), b.format(b.hi + 1)}
				for _, v := range ok {
					if !strings.Contains(lim, "`"+v+"`") {
						t.Errorf("limits %q do not show %s", lim, v)
					}
				}
			case s.choices != nil:
				ok, bad = s.choices, []string{"nope", strings.ToUpper(s.choices[0])}
			default:
				return // checked by TestLoadErr
			}
			for _, v := range ok {
				if _, err := load(t, []string{"--" + s.Flag, v}, nil); err != nil {
					t.Errorf("--%s %s: %v", s.Flag, v, err)
				}
			}
			for _, v := range bad {
				_, err := load(t, nil, map[string]string{s.Env: v})
				var ce *Error
				if !errors.As(err, &ce) || len(ce.Problems) != 1 || !strings.HasPrefix(ce.Problems[0], s.Env+" (from "+s.Env+"): must be ") {
					t.Errorf("%s=%s: %v, want one problem about it", s.Env, v, err)
				}
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", time.Millisecond: "1ms", 100 * time.Millisecond: "100ms", 30 * time.Second: "30s",
		time.Minute: "1m", 90 * time.Second: "1m30s", time.Hour: "1h", 168 * time.Hour: "168h",
		time.Hour + time.Second: "1h0m1s", 24*time.Hour - 1: "23h59m59.999999999s", -time.Second: "-1s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%d) = %q, want %q", d, got, want)
		}
	}
}
