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
	// CreditSliceMax caps one credit reservation of a replica, and so what
	// a SIGKILL can lose per balance it was spending (docs/limits.md).
	CreditSliceMax int
	// MaxStaleness bounds how long a PostgreSQL replica answers usable keys
	// from memory after it last confirmed that its index was in step with
	// the database.
	MaxStaleness time.Duration
	// DatabaseWait is how long a start waits for PostgreSQL to answer.
	DatabaseWait time.Duration

	// AuthFailureBurst failed authentications are allowed from one client
	// address before it is slowed down to one per AuthFailureRefill.
	AuthFailureBurst  int
	AuthFailureRefill time.Duration
	// TrustedProxies are the networks whose X-Forwarded-For is believed
	// when deciding a client's address.
	TrustedProxies []netip.Prefix

	LogFormat string
	LogLevel  string

	// UI serves the dashboard at /ui/.
	UI bool
}

func postgresScheme(scheme string) bool { return scheme == "postgres" || scheme == "postgresql" }

// otherDatabase reports whether raw is a URL of a database other than
// PostgreSQL.
func otherDatabase(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Scheme != "" && !postgresScheme(u.Scheme)
}

// Postgres reports whether the config selects PostgreSQL over SQLite.
func (c *Config) Postgres() bool { return c.DatabaseURL != "" }

// Setting describes one configuration value: its flag, its environment
// variable, its default, what it means and which values it accepts.
// Settings is the single source of the flags, the environment variables,
// the checks and the documentation table.
type Setting struct {
	Flag    string
	Env     string
	Default string
	Usage   string
	// File, when set, names an environment variable holding a path to read
	// the value from (for secrets).
	File string

	// accepts says in words which values are accepted, for settings whose
	// limits are not a range (bounds) or a list (choices).
	accepts string
	bounds  *bounds
	choices []string
	// set parses v, checks it against the setting's own limits and stores
	// it in c. Checks that involve several settings are in Load.
	set func(c *Config, v string) error
}

// Limits says which values the setting accepts, as the docs table shows it.
func (s Setting) Limits() string {
	switch {
	case s.bounds != nil:
		return "`" + s.bounds.format(s.bounds.lo) + "` to `" + s.bounds.format(s.bounds.hi) + "`"
	case s.choices != nil:
		quoted := make([]string, len(s.choices))
		for i, c := range s.choices {
			quoted[i] = "`" + c + "`"
		}
		return oneOf(quoted)
	}
	return s.accepts
}

// bounds is the closed range of a number or duration setting.
type bounds struct {
	lo, hi int64
	format func(int64) string
}

func (b *bounds) check(n int64) error {
	if n < b.lo || n > b.hi {
		return fmt.Errorf("must be between %s and %s, got %s", b.format(b.lo), b.format(b.hi), b.format(n))
	}
	return nil
}

// oneOf joins words as "a, b or c".
func oneOf(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// Settings lists every setting, in the order the docs show them.
var Settings = []Setting{
	{Flag: "addr", Env: "APIKEYD_ADDR", Default: "127.0.0.1:8080", Usage: "listen address (host:port; port 0 picks a free one)",
		accepts: "host:port, port 0-65535; an empty host means every interface",
		set: func(c *Config, v string) error {
			host, port, err := net.SplitHostPort(v)
			if err != nil {
				return fmt.Errorf("must be host:port, got %q", v)
			}
			if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
				return fmt.Errorf("port must be 0-65535, got %q", port)
			}
			if host != "" && net.ParseIP(host) == nil && strings.ContainsAny(host, " /") {
				return fmt.Errorf("invalid host %q", host)
			}
			c.Addr = v
			return nil
		}},
	{Flag: "data-dir", Env: "APIKEYD_DATA_DIR", Default: "./data", Usage: "directory of the SQLite database and the generated secrets",
		accepts: "a directory path; must not be empty with SQLite",
		set:     func(c *Config, v string) error { c.DataDir = v; return nil }},
	{Flag: "database-url", Env: "APIKEYD_DATABASE_URL", Usage: "postgres:// URL: use PostgreSQL instead of SQLite",
		accepts: "empty, or a `postgres://` or `postgresql://` URL",
		set: func(c *Config, v string) error {
			if v != "" {
				u, err := url.Parse(v)
				if err == nil && u.Scheme != "" && !postgresScheme(u.Scheme) {
					// The scheme only: the URL may hold a password.
					return fmt.Errorf("unsupported database URL (scheme %q): apikeyd runs on SQLite (leave this empty) or PostgreSQL (postgres:// or postgresql://)", u.Scheme)
				}
				if err != nil || !postgresScheme(u.Scheme) {
					return errors.New("must be a postgres:// or postgresql:// URL")
				}
			}
			c.DatabaseURL = v
			return nil
		}},
	{Flag: "admin-token", Env: "APIKEYD_ADMIN_TOKEN", File: "APIKEYD_ADMIN_TOKEN_FILE", Usage: "admin bearer token for every project; generated into <data-dir>/admin.token if unset on SQLite, required with PostgreSQL",
		accepts: "at least 16 characters, no whitespace; required with PostgreSQL",
		set: func(c *Config, v string) error {
			if v != "" && (len(v) < 16 || strings.ContainsAny(v, " \t\r\n")) {
				return errors.New("must be at least 16 characters without whitespace")
			}
			c.AdminToken = v
			return nil
		}},
	{Flag: "master-key", Env: "APIKEYD_MASTER_KEY", File: "APIKEYD_MASTER_KEY_FILE", Usage: "base64 32-byte key encrypting webhook secrets and undelivered keys; generated into <data-dir>/master.key if unset on SQLite, required with PostgreSQL",
		accepts: "base64 (standard or URL-safe, padded or not) of exactly 32 bytes; required with PostgreSQL",
		set: func(c *Config, v string) error {
			if v != "" {
				if _, err := seal.ParseKey(v); err != nil {
					return fmt.Errorf("%v (want the base64 of 32 random bytes, e.g. `openssl rand -base64 32`)", err)
				}
			}
			c.MasterKey = v
			return nil
		}},
	{Flag: "key-prefix", Env: "APIKEYD_KEY_PREFIX", Default: "sk", Usage: "first part of every issued key",
		accepts: "1-8 characters of A-Z a-z 0-9, with optional inner underscores; not `apikeyd` (root keys)",
		set: func(c *Config, v string) error {
			if !apikey.ValidKeyPrefix(v) {
				return fmt.Errorf("must be 1-8 characters of A-Z a-z 0-9 with optional inner underscores, got %q", v)
			}
			if v == apikey.RootKeyPrefix {
				return fmt.Errorf("must not be %q: that prefix is reserved for root keys, so that a root key can never be taken for a customer's key", v)
			}
			c.KeyPrefix = v
			return nil
		}},
	durationSetting(Setting{Flag: "rotation-check-interval", Env: "APIKEYD_ROTATION_CHECK_INTERVAL", Default: "30s", Usage: "how often due rotations are looked for"},
		100*time.Millisecond, 24*time.Hour, func(c *Config) *time.Duration { return &c.RotationCheckInterval }),
	durationSetting(Setting{Flag: "auto-rotation-grace", Env: "APIKEYD_AUTO_ROTATION_GRACE", Default: "24h", Usage: "how long an automatically rotated key keeps working"},
		0, apikey.MaxGraceMinutes*time.Minute, func(c *Config) *time.Duration { return &c.AutoRotationGrace }),
	durationSetting(Setting{Flag: "webhook-backoff", Env: "APIKEYD_WEBHOOK_BACKOFF", Default: "5s", Usage: "first retry delay of a failed webhook delivery; doubles per attempt, capped at 1h"},
		10*time.Millisecond, time.Hour, func(c *Config) *time.Duration { return &c.WebhookBackoff }),
	intSetting(Setting{Flag: "webhook-max-attempts", Env: "APIKEYD_WEBHOOK_MAX_ATTEMPTS", Default: "10", Usage: "webhook deliveries tried before a rotation is abandoned"},
		1, 100, func(c *Config) *int { return &c.WebhookMaxAttempts }),
	{Flag: "insecure-webhooks", Env: "APIKEYD_INSECURE_WEBHOOKS", Default: "false", Usage: "allow http:// and private or loopback webhook targets (development and tests only)",
		accepts: "`true` or `false` (also `1`, `0`, `t`, `f`); the flag alone means `true`",
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errors.New("must be true or false")
			}
			c.InsecureWebhooks = b
			return nil
		}},
	durationSetting(Setting{Flag: "last-used-flush", Env: "APIKEYD_LAST_USED_FLUSH", Default: "10s", Usage: "how often buffered last_used_at updates are written"},
		100*time.Millisecond, time.Hour, func(c *Config) *time.Duration { return &c.LastUsedFlush }),
	intSetting(Setting{Flag: "credit-slice-max", Env: "APIKEYD_CREDIT_SLICE_MAX", Default: "1000", Usage: "the most credits of one balance a replica reserves at a time: what a replica killed without a shutdown can lose per balance it was spending (docs/limits.md)"},
		1, 1000000000, func(c *Config) *int { return &c.CreditSliceMax }),
	durationSetting(Setting{Flag: "database-wait", Env: "APIKEYD_DATABASE_WAIT", Default: "30s", Usage: "PostgreSQL only: how long a start retries, with backoff, a database that does not answer before it gives up"},
		0, time.Hour, func(c *Config) *time.Duration { return &c.DatabaseWait }),
	durationSetting(Setting{Flag: "max-staleness", Env: "APIKEYD_MAX_STALENESS", Default: "2s", Usage: "PostgreSQL only: how long a replica that cannot confirm its key index is in step with the database (connection lost) still verifies usable keys from memory; after that they get 503 until it can"},
		100*time.Millisecond, time.Hour, func(c *Config) *time.Duration { return &c.MaxStaleness }),
	intSetting(Setting{Flag: "auth-failure-burst", Env: "APIKEYD_AUTH_FAILURE_BURST", Default: "20", Usage: "failed authentications allowed from one client address before it gets 429"},
		1, 1000000, func(c *Config) *int { return &c.AuthFailureBurst }),
	durationSetting(Setting{Flag: "auth-failure-refill", Env: "APIKEYD_AUTH_FAILURE_REFILL", Default: "1s", Usage: "once over the burst, a client address may fail once per this interval"},
		time.Millisecond, time.Hour, func(c *Config) *time.Duration { return &c.AuthFailureRefill }),
	{Flag: "trusted-proxies", Env: "APIKEYD_TRUSTED_PROXIES", Usage: "comma-separated CIDRs of reverse proxies whose X-Forwarded-For names the client",
		accepts: "empty, or CIDRs separated by commas, e.g. `10.0.0.0/8,::1/128`",
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
	{Flag: "ui", Env: "APIKEYD_UI", Default: "true", Usage: "serve the dashboard at /ui/",
		accepts: "`true` or `false` (also `1`, `0`, `t`, `f`)",
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errors.New("must be true or false")
			}
			c.UI = b
			return nil
		}},
	choiceSetting(Setting{Flag: "log-format", Env: "APIKEYD_LOG_FORMAT", Default: "text", Usage: "log format"},
		func(c *Config) *string { return &c.LogFormat }, "text", "json"),
	choiceSetting(Setting{Flag: "log-level", Env: "APIKEYD_LOG_LEVEL", Default: "info", Usage: "lowest level of the lines written"},
		func(c *Config) *string { return &c.LogLevel }, "debug", "info", "warn", "error"),
}

// durationSetting makes s a duration between lo and hi, stored by field.
func durationSetting(s Setting, lo, hi time.Duration, field func(*Config) *time.Duration) Setting {
	b := &bounds{lo: int64(lo), hi: int64(hi), format: func(n int64) string { return formatDuration(time.Duration(n)) }}
	s.bounds = b
	s.set = func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("must be a duration such as 30s, 5m or 24h")
		}
		if err := b.check(int64(d)); err != nil {
			return err
		}
		*field(c) = d
		return nil
	}
	return s
}

// intSetting makes s a whole number between lo and hi, stored by field.
func intSetting(s Setting, lo, hi int, field func(*Config) *int) Setting {
	b := &bounds{lo: int64(lo), hi: int64(hi), format: func(n int64) string { return strconv.FormatInt(n, 10) }}
	s.bounds = b
	s.set = func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errors.New("must be a whole number")
		}
		if err := b.check(int64(n)); err != nil {
			return err
		}
		*field(c) = n
		return nil
	}
	return s
}

// choiceSetting makes s one of choices, stored by field.
func choiceSetting(s Setting, field func(*Config) *string, choices ...string) Setting {
	s.choices = choices
	s.set = func(c *Config, v string) error {
		for _, ch := range choices {
			if v == ch {
				*field(c) = v
				return nil
			}
		}
		return fmt.Errorf("must be %s, got %q", oneOf(choices), v)
	}
	return s
}

// formatDuration writes d as an operator would: 24h rather than 24h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
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

// Error lists every problem found in a configuration. Each problem names
// the setting's environment variable and where its value came from: a
// flag, the variable itself, a *_FILE variable, the default, or nothing
// ("not set").
type Error struct{ Problems []string }

func (e *Error) Error() string {
	return "invalid configuration:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// Load builds a Config from fs (flags win) and getenv, then validates it.
// Every problem is reported in one *Error, at most one per setting: a
// value that cannot be read is not also checked against other settings.
func Load(fs *pflag.FlagSet, getenv func(string) string) (Config, error) {
	var c Config
	var problems []string
	source := map[string]string{} // env → where its value came from
	given := map[string]string{}  // env → its value, before any check
	failed := map[string]bool{}
	report := func(env, format string, args ...any) {
		if failed[env] {
			return
		}
		failed[env] = true
		problems = append(problems, env+" ("+source[env]+"): "+fmt.Sprintf(format, args...))
	}
	for _, s := range Settings {
		v, from := s.Default, "default"
		if s.Default == "" {
			from = "not set"
		}
		if f := fs.Lookup(s.Flag); f != nil && f.Changed {
			v, from = f.Value.String(), "from --"+s.Flag
		} else if e := getenv(s.Env); e != "" {
			v, from = e, "from "+s.Env
		} else if s.File != "" && getenv(s.File) != "" {
			path := getenv(s.File)
			source[s.Env] = "from " + s.File
			b, err := os.ReadFile(path)
			if err != nil {
				report(s.Env, "cannot read %s: %v", path, errors.Unwrap(err))
				continue
			}
			v, from = strings.TrimSpace(string(b)), "from "+s.File
		}
		source[s.Env], given[s.Env] = from, v
		if err := s.set(&c, v); err != nil {
			report(s.Env, "%v", err)
		}
	}
	// A database URL that is given but wrong still means PostgreSQL: its
	// requirements are reported with it, not after it is fixed. One of
	// another database (mysql://) means nothing of the kind.
	if dbURL := given["APIKEYD_DATABASE_URL"]; dbURL != "" && !otherDatabase(dbURL) {
		if c.AdminToken == "" {
			report("APIKEYD_ADMIN_TOKEN", "is required with PostgreSQL (every replica must share it)")
		}
		if c.MasterKey == "" {
			report("APIKEYD_MASTER_KEY", "is required with PostgreSQL (every replica must share it)")
		}
	} else if c.DataDir == "" {
		report("APIKEYD_DATA_DIR", "must not be empty")
	}
	if len(problems) > 0 {
		return c, &Error{Problems: problems}
	}
	return c, nil
}
