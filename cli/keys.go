package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/apikeyd/apikeyd/client"
)

// exitInvalidKey is the exit code of `keys verify` for a key that is not
// valid, so that scripts can tell it from a failure to ask (1).
const exitInvalidKey = 3

// errInvalidKey makes Main exit with exitInvalidKey, after the verdict has
// been printed.
var errInvalidKey = errors.New("the key is not valid")

// keysCmd holds what every keys subcommand shares.
type keysCmd struct {
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	getenv  func(string) string
	url     string
	token   string
	json    bool
	output  string
	timeout time.Duration
}

func newKeys(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	k := &keysCmd{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage and verify API keys on a running server",
		Long: `Manage and verify API keys on a running apikeyd, through its HTTP API.

The server is APIKEYD_URL (or --url; default http://127.0.0.1:8080). The
token is APIKEYD_TOKEN, the contents of the file APIKEYD_TOKEN_FILE, or
--token: the admin token, or an API key with the api-keys:* scopes the
command needs. Prefer the environment: a flag shows in the process list.

Output is a table; --json (or -o json) prints the API's JSON instead, for
scripts.`,
		Example: `  export APIKEYD_URL=http://127.0.0.1:8080 APIKEYD_TOKEN_FILE=./data/admin.token
  apikeyd keys create --project acme --name checkout --scope orders:read
  apikeyd keys ls --project acme
  apikeyd keys ls --project acme -o json | jq -r '.[].id'`,
		Args: cobra.ArbitraryArgs,
		// A mistyped subcommand is reported as one, not as an unknown flag
		// of "keys" (apikeyd keys lst --project acme).
		FParseErrWhitelist:         cobra.FParseErrWhitelist{UnknownFlags: true},
		SuggestionsMinimumDistance: 2,
		RunE:                       unknownSubcommand,
	}
	k.connectionFlags(cmd)
	cmd.AddCommand(k.list(), k.get(), k.create(), k.update(), k.rotate(), k.revoke(), k.verify(), k.expiring(), k.audit(),
		k.disable(), k.enable(), k.importKeys(), k.credits())
	return cmd
}

// unknownSubcommand is the RunE of a command group: a mistyped subcommand
// is reported as one, with suggestions; no argument shows the help.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
		}
		return usageError{errors.New(msg + "\n\nRun '" + cmd.CommandPath() + " --help' for the commands.")}
	}
	return cmd.Help()
}

// connectionFlags gives cmd the flags every command that talks to a
// server shares (keys, root-keys): where, with which token, and how to
// print.
func (k *keysCmd) connectionFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&k.url, "url", "", "server URL (APIKEYD_URL; default http://127.0.0.1:8080)")
	f.StringVar(&k.token, "token", "", "bearer token (APIKEYD_TOKEN or APIKEYD_TOKEN_FILE)")
	f.BoolVar(&k.json, "json", false, "print JSON instead of a table (same as -o json)")
	f.StringVarP(&k.output, "output", "o", "table", "output format: table or json")
	f.DurationVar(&k.timeout, "timeout", 30*time.Second, "give up on the server after this long")
	cmd.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		switch k.output {
		case "table":
		case "json":
			k.json = true
		default:
			return usageError{fmt.Errorf("-o/--output must be table or json, got %q", k.output)}
		}
		return nil
	}
}

// baseURL is the server the CLI talks to: --url, APIKEYD_URL, or the
// default address of apikeyd serve.
func (k *keysCmd) baseURL() string {
	url := k.url
	if url == "" {
		url = k.getenv("APIKEYD_URL")
	}
	if url == "" {
		url = "http://127.0.0.1:8080"
	}
	return url
}

// client builds the API client from flags and environment.
func (k *keysCmd) client() (*client.Client, error) {
	url := k.baseURL()
	token := k.token
	if token == "" {
		token = k.getenv("APIKEYD_TOKEN")
	}
	if token == "" {
		if path := k.getenv("APIKEYD_TOKEN_FILE"); path != "" {
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, usageError{fmt.Errorf("APIKEYD_TOKEN_FILE: %w", err)}
			}
			token = strings.TrimSpace(string(b))
		}
	}
	if token == "" {
		return nil, usageError{errors.New("no token: set APIKEYD_TOKEN (or APIKEYD_TOKEN_FILE, or --token); the admin token is in <data-dir>/admin.token")}
	}
	c, err := client.New(url, token, client.WithUserAgent("apikeyd-cli/"+version()))
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// run gives a subcommand its client and a context bounded by --timeout.
func (k *keysCmd) run(fn func(ctx context.Context, c *client.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), k.timeout)
		defer cancel()
		return reachError(k.baseURL(), fn(ctx, c, args))
	}
}

// requireFlags marks flags required, for cobra and in the help text.
func requireFlags(cmd *cobra.Command, names ...string) {
	for _, n := range names {
		_ = cmd.MarkFlagRequired(n)
		if f := cmd.Flags().Lookup(n); f != nil && !strings.HasSuffix(f.Usage, "(required)") {
			f.Usage += " (required)"
		}
	}
}

var statuses = []string{"active", "rotating", "rotated", "expired", "revoked"}

func (k *keysCmd) list() *cobra.Command {
	var p client.ListParams
	var max int
	cmd := &cobra.Command{
		Use:     "list --project ID",
		Aliases: []string{"ls"},
		Short:   "List a project's keys, newest first",
		Long:    "List a project's keys, newest first, following the pages for you.",
		Example: `  apikeyd keys list --project acme
  apikeyd keys ls --project acme --status active --environment prod
  apikeyd keys ls --project acme -o json | jq -r '.[] | "\(.id) \(.name)"'`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringVar(&p.ProjectID, "project", "", "project whose keys to list")
	cmd.Flags().StringVar(&p.EnvironmentID, "environment", "", "only keys of this environment")
	cmd.Flags().StringVar(&p.OwnerID, "owner", "", "only keys of this owner")
	cmd.Flags().StringVar((*string)(&p.Status), "status", "", "only keys in this state: "+strings.Join(statuses, ", "))
	cmd.Flags().IntVar(&max, "limit", 0, "show at most this many keys (0: all)")
	cmd.Flags().IntVar(&p.Limit, "page-size", 0, "keys fetched per request (1-1000; 0: the server's default)")
	requireFlags(cmd, "project")
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(statuses, cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = k.run(func(ctx context.Context, c *client.Client, _ []string) error {
		keys := []client.Key{}
		for key, err := range c.ListKeys(ctx, p) {
			if err != nil {
				return err
			}
			keys = append(keys, key)
			if max > 0 && len(keys) == max {
				break
			}
		}
		return k.print(keys, func(t *table) { keyRows(t, keys) })
	})
	return cmd
}

func (k *keysCmd) expiring() *cobra.Command {
	var p client.ExpiringParams
	cmd := &cobra.Command{
		Use:   "expiring --project ID",
		Short: "List a project's usable keys that expire soon, soonest first",
		Example: `  apikeyd keys expiring --project acme
  apikeyd keys expiring --project acme --within-days 7`,
		Args: cobra.NoArgs,
	}
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error { return positive(cmd, "within-days", p.WithinDays) }
	cmd.Flags().StringVar(&p.ProjectID, "project", "", "project whose keys to list")
	cmd.Flags().StringVar(&p.EnvironmentID, "environment", "", "only keys of this environment")
	cmd.Flags().IntVar(&p.WithinDays, "within-days", 30, "window from now, in days")
	requireFlags(cmd, "project")
	cmd.RunE = k.run(func(ctx context.Context, c *client.Client, _ []string) error {
		keys := []client.Key{}
		for key, err := range c.ExpiringKeys(ctx, p) {
			if err != nil {
				return err
			}
			keys = append(keys, key)
		}
		return k.print(keys, func(t *table) { keyRows(t, keys) })
	})
	return cmd
}

func (k *keysCmd) get() *cobra.Command {
	cmd := &cobra.Command{
		Use:               "get KEY_ID",
		Short:             "Show a key",
		Example:           "  apikeyd keys get key_01j…\n  apikeyd keys get key_01j… -o json",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	cmd.RunE = k.run(func(ctx context.Context, c *client.Client, args []string) error {
		key, err := c.GetKey(ctx, args[0])
		if err != nil {
			return err
		}
		return k.print(key, func(t *table) { keyFields(t, key) })
	})
	return cmd
}

func (k *keysCmd) create() *cobra.Command {
	var p client.CreateParams
	var expiresAt string
	cmd := &cobra.Command{
		Use:   "create --project ID --name NAME",
		Short: "Issue a key; the key itself is printed this once",
		Example: `  apikeyd keys create --project acme --name checkout --scope orders:read --scope orders:write
  apikeyd keys create --project acme --name ci --expires-in-days 90 --environment prod
  apikeyd keys create --project acme --name deploy --expires-at 2030-01-01T00:00:00Z
  apikeyd keys create --project acme --name n -o json | jq -r .key   # the key, for a secret store`,
		Args: cobra.NoArgs,
	}
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		if err := positive(cmd, "expires-in-days", p.ExpiresInDays); err != nil {
			return err
		}
		return positive(cmd, "rotation-interval-days", p.RotationIntervalDays)
	}
	f := cmd.Flags()
	f.StringVar(&p.ProjectID, "project", "", "project the key belongs to")
	f.StringVar(&p.Name, "name", "", "human-readable name")
	f.StringSliceVar(&p.Scopes, "scope", nil, "scope the key holds (repeat, or comma-separate)")
	f.StringVar(&p.EnvironmentID, "environment", "", "bind the key to this environment")
	f.IntVar(&p.ExpiresInDays, "expires-in-days", 0, "lifetime in days")
	f.StringVar(&expiresAt, "expires-at", "", "expiry instant, RFC 3339 (e.g. 2030-01-01T00:00:00Z)")
	f.IntVar(&p.RotationIntervalDays, "rotation-interval-days", 0, "rotate automatically every this many days (needs --rotation-webhook-url)")
	f.StringVar(&p.RotationWebhookURL, "rotation-webhook-url", "", "https URL that receives rotated keys")
	f.StringVar(&p.OwnerID, "owner", "", "the user, team or service account the key belongs to")
	var meta string
	f.StringVar(&meta, "meta", "", "JSON object every verifier sees, or @file.json")
	f.StringArrayVar(&p.IPAllowlist, "allow-ip", nil, "address or CIDR the key may be used from (repeat)")
	var limits []string
	credits := int64(-1)
	f.StringArrayVar(&limits, "ratelimit", nil, "rate limit NAME:LIMIT:DURATION_MS, e.g. per_minute:100:60000 (repeat for several)")
	f.Int64Var(&credits, "credits", -1, "starting balance that verifies spend (default: unlimited)")
	requireFlags(cmd, "project", "name")
	cmd.MarkFlagsMutuallyExclusive("expires-in-days", "expires-at")
	cmd.RunE = k.run(func(ctx context.Context, c *client.Client, _ []string) error {
		if meta != "" {
			m, err := readMeta(meta)
			if err != nil {
				return err
			}
			p.Meta = m
		}
		if expiresAt != "" {
			t, err := parseTime("expires-at", expiresAt)
			if err != nil {
				return err
			}
			p.ExpiresAt = t
		}
		for _, l := range limits {
			rl, err := parseRateLimit(l)
			if err != nil {
				return err
			}
			p.RateLimits = append(p.RateLimits, rl)
		}
		if cmd.Flags().Changed("credits") {
			p.Credits = &client.Credits{Remaining: credits}
		}
		created, err := c.CreateKey(ctx, p)
		if err != nil {
			return err
		}
		if !k.json {
			fmt.Fprintln(k.stderr, "The key is shown this once: store it now. apikeyd keeps only its hash.")
		}
		return k.print(created, func(t *table) {
			t.row("key", created.Secret)
			if created.WebhookSecret != "" {
				t.row("rotation_webhook_secret", created.WebhookSecret)
			}
			keyFields(t, &created.Key)
		})
	})
	return cmd
}

func (k *keysCmd) rotate() *cobra.Command {
	var grace int
	cmd := &cobra.Command{
		Use:               "rotate KEY_ID",
		Short:             "Replace a key; the old one keeps working for a grace period",
		Example:           "  apikeyd keys rotate key_01j…\n  apikeyd keys rotate key_01j… --grace-minutes 0   # the old key stops now",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	cmd.Flags().IntVar(&grace, "grace-minutes", 60, "how long the old key keeps working (0: stops now; at most 10080)")
	cmd.RunE = k.run(func(ctx context.Context, c *client.Client, args []string) error {
		var p client.RotateParams
		if cmd.Flags().Changed("grace-minutes") {
			p.GracePeriodMinutes = &grace
		}
		r, err := c.RotateKey(ctx, args[0], p)
		if err != nil {
			return err
		}
		if !k.json {
			fmt.Fprintln(k.stderr, "The new key is shown this once: store it now.")
		}
		return k.print(r, func(t *table) {
			t.row("key", r.Secret)
			t.row("new_key_id", r.NewKeyID)
			t.row("old_key_id", r.OldKeyID)
			t.row("old_key_works_until", timeOrDash(r.GraceExpiresAt))
			t.row("project_id", r.ProjectID)
			t.row("name", r.Name)
			t.row("key_prefix", r.KeyPrefix)
			t.row("scopes", scopeList(r.Scopes))
			t.row("expires_at", timeOrDash(r.ExpiresAt))
			t.row("created_at", r.CreatedAt.UTC().Format(time.RFC3339))
		})
	})
	return cmd
}

func (k *keysCmd) revoke() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:               "revoke KEY_ID",
		Aliases:           []string{"rm"},
		Short:             "Revoke a key at once (ending any grace period)",
		Example:           "  apikeyd keys revoke key_01j…\n  apikeyd keys rm key_01j…",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why: unspecified, key_compromise, superseded, privilege_withdrawn or cessation_of_operation")
	cmd.RunE = k.run(func(ctx context.Context, c *client.Client, args []string) error {
		if err := c.RevokeKeyFor(ctx, args[0], reason); err != nil {
			return err
		}
		out := struct {
			ID      string `json:"id"`
			Revoked bool   `json:"revoked"`
		}{args[0], true}
		return k.print(out, func(t *table) { t.row("revoked", args[0]) })
	})
	return cmd
}

func (k *keysCmd) verify() *cobra.Command {
	var p client.VerifyParams
	cmd := &cobra.Command{
		Use:   "verify [KEY | -]",
		Short: "Ask whether a key is valid",
		Example: `  echo "$KEY" | apikeyd keys verify --scope orders:read
  apikeyd keys verify - --environment prod < key.txt`,
		Long: `Ask whether a key is valid, with the given scopes and environment.

The key is read from standard input when it is "-" or left out, so that it
stays out of the shell history and the process list.

Exit status: 0 when the key is valid, 3 when it is not (the verdict says
why), 1 when the server could not be asked, 2 for a usage error.`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	cmd.Flags().StringSliceVar(&p.Scopes, "scope", nil, "scope the key must hold (repeat, or comma-separate)")
	cmd.Flags().StringVar(&p.EnvironmentID, "environment", "", "environment the key must be bound to")
	cmd.Flags().StringVar(&p.ClientIP, "client-ip", "", "address the key was presented from (for keys with an allowlist)")
	var cost int64
	cmd.Flags().Int64Var(&cost, "cost", 1, "credits a VALID verify spends (0: check without spending)")
	cmd.RunE = k.run(func(ctx context.Context, c *client.Client, args []string) error {
		if cmd.Flags().Changed("cost") {
			p.Cost = client.Cost(cost)
		}
		if len(args) == 1 && args[0] != "-" {
			p.Key = args[0]
		} else {
			if f, ok := k.stdin.(*os.File); ok {
				if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
					fmt.Fprint(k.stderr, "Key to verify: ")
				}
			}
			line, err := bufio.NewReader(io.LimitReader(k.stdin, 4096)).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read the key from standard input: %w", err)
			}
			p.Key = strings.TrimSpace(line)
		}
		v, err := c.Verify(ctx, p)
		if err != nil {
			return err
		}
		err = k.print(v, func(t *table) {
			t.row("valid", fmt.Sprint(v.Valid))
			t.row("code", string(v.Code))
			if v.KeyID != "" {
				t.row("key_id", v.KeyID)
				t.row("project_id", v.ProjectID)
				t.row("environment_id", stringOrDash(v.EnvironmentID))
				t.row("name", v.Name)
				t.row("scopes", scopeList(v.Scopes))
				t.row("expires_at", timeOrDash(v.ExpiresAt))
				t.row("grace_expires_at", timeOrDash(v.GraceExpiresAt))
			}
		})
		if err == nil && !v.Valid {
			err = errInvalidKey
		}
		return err
	})
	return cmd
}

// parseRateLimit reads a --ratelimit NAME:LIMIT:DURATION_MS.
func parseRateLimit(s string) (client.RateLimit, error) {
	parts := strings.Split(s, ":")
	if len(parts) == 3 {
		limit, err1 := strconv.ParseInt(parts[1], 10, 64)
		d, err2 := strconv.ParseInt(parts[2], 10, 64)
		if err1 == nil && err2 == nil {
			return client.RateLimit{Name: parts[0], Limit: limit, DurationMS: d}, nil
		}
	}
	return client.RateLimit{}, usageError{fmt.Errorf("--ratelimit %q: want NAME:LIMIT:DURATION_MS, e.g. per_minute:100:60000", s)}
}

func (k *keysCmd) credits() *cobra.Command {
	var p client.CreditParams
	cmd := &cobra.Command{
		Use:               "credits KEY_ID --op set|increment|decrement --amount N",
		Short:             "Change a key's credits; prints what is left",
		Example:           "  apikeyd keys credits key_01j… --op increment --amount 1000",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	cmd.Flags().StringVar(&p.Op, "op", "", "set, increment or decrement")
	cmd.Flags().Int64Var(&p.Amount, "amount", 0, "0-1000000000000; a decrement stops at 0")
	requireFlags(cmd, "op", "amount")
	cmd.RunE = k.run(func(ctx context.Context, c *client.Client, args []string) error {
		n, err := c.AdjustCredits(ctx, args[0], p)
		if err != nil {
			return err
		}
		out := struct {
			Remaining int64 `json:"remaining"`
		}{n}
		return k.print(out, func(t *table) { t.row("remaining", strconv.FormatInt(n, 10)) })
	})
	return cmd
}
