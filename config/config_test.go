package config

import (
	"errors"
	"os"
	"path/filepath"
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

func TestLoadErr(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want []string // each must appear in the error
	}{
		"ErrAddr":            {[]string{"--addr", "nope"}, nil, []string{"APIKEYD_ADDR"}},
		"ErrPort":            {[]string{"--addr", "127.0.0.1:70000"}, nil, []string{"APIKEYD_ADDR"}},
		"ErrDuration":        {nil, map[string]string{"APIKEYD_ROTATION_CHECK_INTERVAL": "soon"}, []string{"APIKEYD_ROTATION_CHECK_INTERVAL (from APIKEYD_ROTATION_CHECK_INTERVAL)"}},
		"ErrDurationRange":   {[]string{"--last-used-flush", "1ms"}, nil, []string{"APIKEYD_LAST_USED_FLUSH"}},
		"ErrStalenessRange":  {[]string{"--max-staleness", "10ms"}, nil, []string{"APIKEYD_MAX_STALENESS"}},
		"ErrGraceRange":      {[]string{"--auto-rotation-grace", "200h"}, nil, []string{"APIKEYD_AUTO_ROTATION_GRACE"}},
		"ErrAttempts":        {[]string{"--webhook-max-attempts", "0"}, nil, []string{"APIKEYD_WEBHOOK_MAX_ATTEMPTS"}},
		"ErrAttemptsNumber":  {[]string{"--webhook-max-attempts", "ten"}, nil, []string{"must be a whole number"}},
		"ErrBool":            {nil, map[string]string{"APIKEYD_INSECURE_WEBHOOKS": "maybe"}, []string{"APIKEYD_INSECURE_WEBHOOKS"}},
		"ErrPrefix":          {[]string{"--key-prefix", "has space"}, nil, []string{"APIKEYD_KEY_PREFIX"}},
		"ErrMasterKey":       {nil, map[string]string{"APIKEYD_MASTER_KEY": "c2hvcnQ="}, []string{"APIKEYD_MASTER_KEY", "32 bytes"}},
		"ErrAdminTokenShort": {nil, map[string]string{"APIKEYD_ADMIN_TOKEN": "short"}, []string{"APIKEYD_ADMIN_TOKEN"}},
		"ErrPostgresSecrets": {nil, map[string]string{"APIKEYD_DATABASE_URL": "postgres://localhost/test"},
			[]string{"APIKEYD_ADMIN_TOKEN: is required with PostgreSQL", "APIKEYD_MASTER_KEY: is required with PostgreSQL"}},
		"ErrDatabaseURL": {nil, map[string]string{"APIKEYD_DATABASE_URL": "mysql://x", "APIKEYD_ADMIN_TOKEN": "a-long-enough-admin-token", "APIKEYD_MASTER_KEY": goodKey}, []string{"APIKEYD_DATABASE_URL"}},
		"ErrLogFormat":   {[]string{"--log-format", "xml"}, nil, []string{"APIKEYD_LOG_FORMAT"}},
		"ErrProxies":     {nil, map[string]string{"APIKEYD_TRUSTED_PROXIES": "10.0.0.1/33"}, []string{"APIKEYD_TRUSTED_PROXIES"}},
		"ErrMissingFile": {nil, map[string]string{"APIKEYD_MASTER_KEY_FILE": "/nonexistent/master.key"}, []string{"APIKEYD_MASTER_KEY_FILE"}},
		"ErrAllAtOnce":   {[]string{"--addr", "x", "--key-prefix", "-", "--webhook-max-attempts", "0"}, nil, []string{"APIKEYD_ADDR", "APIKEYD_KEY_PREFIX", "APIKEYD_WEBHOOK_MAX_ATTEMPTS"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := load(t, tc.args, tc.env)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *Error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
