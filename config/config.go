// Package config loads apikeyd's settings from flags and environment
// variables into one typed Config, and validates all of it at once.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/seal"
)

// Config is every setting of `apikeyd serve`.
type Config struct {
	Addr        string
	DataDir     string
	DatabaseURL string
	// AdminToken and MasterKey may be empty on SQLite: the server then
	// generates them into the data directory on first start.
	AdminToken string
	MasterKey  string

	KeyPrefix             string
	RotationCheckInterval time.Duration
	AutoRotationGrace     time.Duration
	WebhookBackoff        time.Duration
	WebhookMaxAttempts    int
	InsecureWebhooks      bool
	LastUsedFlush         time.Duration
	// MaxStaleness bounds how long a PostgreSQL replica answers usable keys
	// from memory after it last confirmed that its index was in step with
	// the database.
	MaxStaleness time.Duration

	// AuthFailureBurst failed authentications are allowed from one client
	// address before it is slowed down to one per AuthFailureRefill.
	AuthFailureBurst  int
	AuthFailureRefill time.Duration
	// TrustedProxies are the networks whose X-Forwarded-For is believed
	// when deciding a client's address.
	TrustedProxies []netip.Prefix

	LogFormat string
	LogLevel  string
}

// Postgres reports whether the config selects PostgreSQL over SQLite.
func (c *Config) Postgres() bool { return c.DatabaseURL != "" }

// Setting describes one configuration value: its flag, its environment
// variable, its default and what it means. Settings is the single source of
// the flags, the environment variables and the documentation table.
type Setting struct {
	Flag    string
	Env     string
	Default string
	Usage   string
	// File, when set, names an environment variable holding a path to read
	// the value from (for secrets).
	File string
	set  func(c *Config, v string) error
}

// Settings lists every setting, in the order the docs show them.
var Settings = []Setting{
	{Flag: "addr", Env: "APIKEYD_ADDR", Default: "127.0.0.1:8080", Usage: "listen address (host:port; port 0 picks a free one)",
		set: func(c *Config, v string) error { c.Addr = v; return nil }},
	{Flag: "data-dir", Env: "APIKEYD_DATA_DIR", Default: "./data", Usage: "directory of the SQLite database and the generated secrets",
		set: func(c *Config, v string) error { c.DataDir = v; return nil }},
	{Flag: "database-url", Env: "APIKEYD_DATABASE_URL", Usage: "postgres:// URL: use PostgreSQL instead of SQLite",
		set: func(c *Config, v string) error { c.DatabaseURL = v; return nil }},
	{Flag: "admin-token", Env: "APIKEYD_ADMIN_TOKEN", File: "APIKEYD_ADMIN_TOKEN_FILE", Usage: "admin bearer token for every project; generated into <data-dir>/admin.token if unset on SQLite, required with PostgreSQL",
		set: func(c *Config, v string) error { c.AdminToken = v; return nil }},
	{Flag: "master-key", Env: "APIKEYD_MASTER_KEY", File: "APIKEYD_MASTER_KEY_FILE", Usage: "base64 32-byte key encrypting webhook secrets and undelivered keys; generated into <data-dir>/master.key if unset on SQLite, required with PostgreSQL",
		set: func(c *Config, v string) error { c.MasterKey = v; return nil }},
	{Flag: "key-prefix", Env: "APIKEYD_KEY_PREFIX", Default: "sk", Usage: "first part of every issued key (1-8 of A-Z a-z 0-9, inner _ allowed)",
		set: func(c *Config, v string) error { c.KeyPrefix = v; return nil }},
	{Flag: "rotation-check-interval", Env: "APIKEYD_ROTATION_CHECK_INTERVAL", Default: "30s", Usage: "how often due rotations are looked for",
		set: duration(func(c *Config) *time.Duration { return &c.RotationCheckInterval })},
	{Flag: "auto-rotation-grace", Env: "APIKEYD_AUTO_ROTATION_GRACE", Default: "24h", Usage: "how long an automatically rotated key keeps working",
		set: duration(func(c *Config) *time.Duration { return &c.AutoRotationGrace })},
	{Flag: "webhook-backoff", Env: "APIKEYD_WEBHOOK_BACKOFF", Default: "5s", Usage: "first retry delay of a failed webhook delivery; doubles per attempt, capped at 1h",
		set: duration(func(c *Config) *time.Duration { return &c.WebhookBackoff })},
	{Flag: "webhook-max-attempts", Env: "APIKEYD_WEBHOOK_MAX_ATTEMPTS", Default: "10", Usage: "webhook deliveries tried before a rotation is abandoned",
		set: integer(func(c *Config) *int { return &c.WebhookMaxAttempts })},
	{Flag: "insecure-webhooks", Env: "APIKEYD_INSECURE_WEBHOOKS", Default: "false", Usage: "allow http:// and private or loopback webhook targets (development and tests only)",
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errors.New("must be true or false")
			}
			c.InsecureWebhooks = b
			return nil
		}},
	{Flag: "last-used-flush", Env: "APIKEYD_LAST_USED_FLUSH", Default: "10s", Usage: "how often buffered last_used_at updates are written",
		set: duration(func(c *Config) *time.Duration { return &c.LastUsedFlush })},
	{Flag: "max-staleness", Env: "APIKEYD_MAX_STALENESS", Default: "2s", Usage: "PostgreSQL only: how long a replica that cannot confirm its key index is in step with the database (connection lost) still verifies usable keys from memory; after that they get 503 until it can",
		set: duration(func(c *Config) *time.Duration { return &c.MaxStaleness })},
	{Flag: "auth-failure-burst", Env: "APIKEYD_AUTH_FAILURE_BURST", Default: "20", Usage: "failed authentications allowed from one client address before it gets 429",
		set: integer(func(c *Config) *int { return &c.AuthFailureBurst })},
	{Flag: "auth-failure-refill", Env: "APIKEYD_AUTH_FAILURE_REFILL", Default: "1s", Usage: "once over the burst, a client address may fail once per this interval",
		set: duration(func(c *Config) *time.Duration { return &c.AuthFailureRefill })},
	{Flag: "trusted-proxies", Env: "APIKEYD_TRUSTED_PROXIES", Usage: "comma-separated CIDRs of reverse proxies whose X-Forwarded-For names the client",
		set: func(c *Config, v string) error {
			c.TrustedProxies = nil
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s == "" {
					continue
				}
				p, err := netip.ParsePrefix(s)
				if err != nil {
					return fmt.Errorf("%q is not a CIDR", s)
				}
				c.TrustedProxies = append(c.TrustedProxies, p.Masked())
			}
			return nil
		}},
	{Flag: "log-format", Env: "APIKEYD_LOG_FORMAT", Default: "text", Usage: "log format: text or json",
		set: func(c *Config, v string) error { c.LogFormat = v; return nil }},
	{Flag: "log-level", Env: "APIKEYD_LOG_LEVEL", Default: "info", Usage: "log level: debug, info, warn or error",
		set: func(c *Config, v string) error { c.LogLevel = v; return nil }},
}

func duration(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("must be a duration such as 30s, 5m or 24h")
		}
		*field(c) = d
		return nil
	}
}

func integer(field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errors.New("must be a whole number")
		}
		*field(c) = n
		return nil
	}
}

// RegisterFlags adds a flag for every setting to fs.
func RegisterFlags(fs *pflag.FlagSet) {
	for _, s := range Settings {
		usage := s.Usage + " (" + s.Env + ")"
		fs.String(s.Flag, s.Default, usage)
		if s.Default == "false" {
			fs.Lookup(s.Flag).NoOptDefVal = "true"
		}
	}
}

// Error lists every problem found in a configuration.
type Error struct{ Problems []string }

func (e *Error) Error() string {
	return "invalid configuration:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// Load builds a Config from fs (flags win) and getenv, then validates it.
// Every problem is reported in one *Error.
func Load(fs *pflag.FlagSet, getenv func(string) string) (Config, error) {
	var c Config
	var problems []string
	for _, s := range Settings {
		v, from := s.Default, "default"
		if f := fs.Lookup(s.Flag); f != nil && f.Changed {
			v, from = f.Value.String(), "--"+s.Flag
		} else if e := getenv(s.Env); e != "" {
			v, from = e, s.Env
		} else if s.File != "" && getenv(s.File) != "" {
			b, err := os.ReadFile(getenv(s.File))
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: cannot read the file: %v", s.File, errors.Unwrap(err)))
				continue
			}
			v, from = strings.TrimSpace(string(b)), s.File
		}
		if err := s.set(&c, v); err != nil {
			problems = append(problems, fmt.Sprintf("%s (from %s): %v", s.Env, from, err))
		}
	}
	problems = append(problems, c.validate()...)
	if len(problems) > 0 {
		return c, &Error{Problems: problems}
	}
	return c, nil
}

// validate checks the values of a Config and returns every problem.
func (c *Config) validate() []string {
	var p []string
	bad := func(env, format string, args ...any) { p = append(p, env+": "+fmt.Sprintf(format, args...)) }

	if host, port, err := net.SplitHostPort(c.Addr); err != nil {
		bad("APIKEYD_ADDR", "must be host:port, got %q", c.Addr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("APIKEYD_ADDR", "port must be 0-65535, got %q", port)
	} else if host != "" && net.ParseIP(host) == nil && strings.ContainsAny(host, " /") {
		bad("APIKEYD_ADDR", "invalid host %q", host)
	}
	if c.Postgres() {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			bad("APIKEYD_DATABASE_URL", "must be a postgres:// or postgresql:// URL")
		}
		if c.AdminToken == "" {
			bad("APIKEYD_ADMIN_TOKEN", "is required with PostgreSQL (every replica must share it)")
		}
		if c.MasterKey == "" {
			bad("APIKEYD_MASTER_KEY", "is required with PostgreSQL (every replica must share it)")
		}
	} else if c.DataDir == "" {
		bad("APIKEYD_DATA_DIR", "must not be empty")
	}
	if c.AdminToken != "" && (len(c.AdminToken) < 16 || strings.ContainsAny(c.AdminToken, " \t\r\n")) {
		bad("APIKEYD_ADMIN_TOKEN", "must be at least 16 characters without whitespace")
	}
	if c.MasterKey != "" {
		if _, err := seal.ParseKey(c.MasterKey); err != nil {
			bad("APIKEYD_MASTER_KEY", "%v (want the base64 of 32 random bytes, e.g. `openssl rand -base64 32`)", err)
		}
	}
	if !apikey.ValidKeyPrefix(c.KeyPrefix) {
		bad("APIKEYD_KEY_PREFIX", "must be 1-8 characters of A-Z a-z 0-9 with optional inner underscores, got %q", c.KeyPrefix)
	}
	between := func(env string, d, lo, hi time.Duration) {
		if d < lo || d > hi {
			bad(env, "must be between %v and %v, got %v", lo, hi, d)
		}
	}
	between("APIKEYD_ROTATION_CHECK_INTERVAL", c.RotationCheckInterval, 100*time.Millisecond, 24*time.Hour)
	between("APIKEYD_AUTO_ROTATION_GRACE", c.AutoRotationGrace, 0, apikey.MaxGraceMinutes*time.Minute)
	between("APIKEYD_WEBHOOK_BACKOFF", c.WebhookBackoff, 10*time.Millisecond, time.Hour)
	between("APIKEYD_LAST_USED_FLUSH", c.LastUsedFlush, 100*time.Millisecond, time.Hour)
	between("APIKEYD_MAX_STALENESS", c.MaxStaleness, 100*time.Millisecond, time.Hour)
	between("APIKEYD_AUTH_FAILURE_REFILL", c.AuthFailureRefill, time.Millisecond, time.Hour)
	if c.WebhookMaxAttempts < 1 || c.WebhookMaxAttempts > 100 {
		bad("APIKEYD_WEBHOOK_MAX_ATTEMPTS", "must be between 1 and 100, got %d", c.WebhookMaxAttempts)
	}
	if c.AuthFailureBurst < 1 || c.AuthFailureBurst > 1000000 {
		bad("APIKEYD_AUTH_FAILURE_BURST", "must be between 1 and 1000000, got %d", c.AuthFailureBurst)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("APIKEYD_LOG_FORMAT", "must be text or json, got %q", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("APIKEYD_LOG_LEVEL", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	return p
}
