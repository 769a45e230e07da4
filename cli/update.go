package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/apikeyd/apikeyd/client"
)

// rfc3339Example is what every time flag's error shows.
const rfc3339Example = "2030-01-01T00:00:00Z"

// parseTime reads a time flag, RFC 3339.
func parseTime(flag, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, usageError{fmt.Errorf("--%s %q: want an RFC 3339 time such as %s (UTC) or 2030-01-01T09:00:00+02:00", flag, v, rfc3339Example)}
	}
	return t, nil
}

// positive refuses a day count flag the user set to zero or less, which the
// server would otherwise never hear of (0 means "not given").
func positive(cmd *cobra.Command, flag string, v int) error {
	if cmd.Flags().Changed(flag) && v < 1 {
		return usageError{fmt.Errorf("--%s must be at least 1, got %d", flag, v)}
	}
	return nil
}

func (k *keysCmd) update() *cobra.Command {
	var (
		name, expiresAt, webhook, nextRotation string
		scopes                                 []string
		interval                               int
		noExpiry, noRotation, noWebhook        bool
		noScopes                               bool
		owner, meta                            string
		allowIPs                               []string
		noOwner, noMeta, noAllowlist           bool
	)
	cmd := &cobra.Command{
		Use:   "update KEY_ID [flags]",
		Short: "Change a key's name, scopes, expiry or rotation settings",
		Long: `Change a key (PATCH /v1/api-keys/{id}): only the fields whose flags are
given change. Changing scopes needs every scope the key will hold (no
escalation); a revoked or replaced key cannot be changed.`,
		Example: `  apikeyd keys update key_01j… --name "checkout (prod)"
  apikeyd keys update key_01j… --scope orders:read --scope orders:write
  apikeyd keys update key_01j… --expires-at 2030-01-01T00:00:00Z
  apikeyd keys update key_01j… --no-expiry
  apikeyd keys update key_01j… --rotation-interval-days 90 --rotation-webhook-url https://hooks.example.com/apikeyd
  apikeyd keys update key_01j… --next-rotation-at 2030-01-01T00:00:00Z
  apikeyd keys update key_01j… --no-rotation`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new name")
	f.StringSliceVar(&scopes, "scope", nil, "the key's scopes, replacing the old ones (repeat, or comma-separate)")
	f.BoolVar(&noScopes, "no-scopes", false, "remove every scope")
	f.StringVar(&expiresAt, "expires-at", "", "new expiry instant, RFC 3339 (e.g. "+rfc3339Example+")")
	f.BoolVar(&noExpiry, "no-expiry", false, "remove the expiry: the key never expires")
	f.IntVar(&interval, "rotation-interval-days", 0, "rotate automatically every this many days (needs a webhook URL)")
	f.BoolVar(&noRotation, "no-rotation", false, "stop scheduled rotation")
	f.StringVar(&webhook, "rotation-webhook-url", "", "https URL that receives rotated keys")
	f.BoolVar(&noWebhook, "no-rotation-webhook-url", false, "remove the webhook URL (only without scheduled rotation)")
	f.StringVar(&nextRotation, "next-rotation-at", "", "move the next scheduled rotation to this RFC 3339 instant (e.g. now: "+rfc3339Example+")")
	f.StringVar(&owner, "owner", "", "the user, team or service account the key belongs to")
	f.BoolVar(&noOwner, "no-owner", false, "remove the owner")
	f.StringVar(&meta, "meta", "", "JSON object replacing the meta whole, or @file.json")
	f.BoolVar(&noMeta, "no-meta", false, "remove the meta")
	f.StringArrayVar(&allowIPs, "allow-ip", nil, "address or CIDR the key may be used from, replacing the list (repeat)")
	f.BoolVar(&noAllowlist, "no-allowlist", false, "allow the key from any address")
	cmd.MarkFlagsMutuallyExclusive("owner", "no-owner")
	cmd.MarkFlagsMutuallyExclusive("meta", "no-meta")
	cmd.MarkFlagsMutuallyExclusive("allow-ip", "no-allowlist")
	cmd.MarkFlagsMutuallyExclusive("scope", "no-scopes")
	cmd.MarkFlagsMutuallyExclusive("expires-at", "no-expiry")
	cmd.MarkFlagsMutuallyExclusive("rotation-interval-days", "no-rotation")
	cmd.MarkFlagsMutuallyExclusive("rotation-webhook-url", "no-rotation-webhook-url")
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error { return positive(cmd, "rotation-interval-days", interval) }
	cmd.RunE = k.run(func(ctx context.Context, c *client.Client, args []string) error {
		var p client.UpdateParams
		changed := cmd.Flags().Changed
		if changed("name") {
			p.Name = client.Value(name)
		}
		switch {
		case changed("scope"):
			p.Scopes = client.Value(scopes)
		case noScopes:
			p.Scopes = client.Value([]string{})
		}
		switch {
		case changed("expires-at"):
			t, err := parseTime("expires-at", expiresAt)
			if err != nil {
				return err
			}
			p.ExpiresAt = client.Value(t)
		case noExpiry:
			p.ExpiresAt = client.Null[time.Time]()
		}
		switch {
		case changed("rotation-interval-days"):
			p.RotationIntervalDays = client.Value(interval)
		case noRotation:
			p.RotationIntervalDays = client.Null[int]()
		}
		switch {
		case changed("rotation-webhook-url"):
			p.RotationWebhookURL = client.Value(webhook)
		case noWebhook:
			p.RotationWebhookURL = client.Null[string]()
		}
		if changed("next-rotation-at") {
			t, err := parseTime("next-rotation-at", nextRotation)
			if err != nil {
				return err
			}
			p.NextRotationAt = client.Value(t)
		}
		switch {
		case changed("owner"):
			p.OwnerID = client.Value(owner)
		case noOwner:
			p.OwnerID = client.Null[string]()
		}
		switch {
		case changed("meta"):
			m, err := readMeta(meta)
			if err != nil {
				return err
			}
			p.Meta = client.Value(m)
		case noMeta:
			p.Meta = client.Null[json.RawMessage]()
		}
		switch {
		case changed("allow-ip"):
			p.IPAllowlist = client.Value(allowIPs)
		case noAllowlist:
			p.IPAllowlist = client.Null[[]string]()
		}
		if p.Name.IsZero() && p.Scopes.IsZero() && p.ExpiresAt.IsZero() && p.RotationIntervalDays.IsZero() &&
			p.RotationWebhookURL.IsZero() && p.NextRotationAt.IsZero() && p.OwnerID.IsZero() && p.Meta.IsZero() && p.IPAllowlist.IsZero() {
			return usageError{errors.New("nothing to change: give at least one of the flags (see --help)")}
		}
		updated, err := c.UpdateKey(ctx, args[0], p)
		if err != nil {
			return err
		}
		return k.print(updated, func(t *table) {
			if updated.WebhookSecret != "" {
				t.row("rotation_webhook_secret", updated.WebhookSecret)
			}
			keyFields(t, &updated.Key)
		})
	})
	return cmd
}

// auditActions are the values of --action: apikey.AuditActions, which the
// CLI does not import (TestAuditActions keeps the two equal).
var auditActions = []string{"api_key.created", "api_key.updated", "api_key.revoked", "api_key.rotated", "api_key.rotation_failed",
	"api_key.disabled", "api_key.enabled", "api_key.imported", "api_key.credits_adjusted",
	"root_key.created", "root_key.updated", "root_key.revoked", "root_key.rotated",
	"owner.updated", "owner.deleted"}

func (k *keysCmd) audit() *cobra.Command {
	var p client.AuditParams
	var max int
	cmd := &cobra.Command{
		Use:   "audit [--project ID]",
		Short: "Show who did what to a project's keys (or to root keys), newest first",
		Long: `Show who did what to a project's keys, newest first.

Without --project, an API key shows its own project's events, and the admin
token and root keys holding root-keys:read show the changes to root keys,
which belong to no project.`,
		Example: `  apikeyd keys audit --project acme
  apikeyd keys audit --project acme --key key_01j… --action api_key.rotated
  apikeyd keys audit --project acme -o json | jq '.[] | {action, actor, created_at}'
  apikeyd keys audit --action root_key.revoked   # who revoked which root key`,
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	f.StringVar(&p.ProjectID, "project", "", "project whose events to show (omitted: see above)")
	f.StringVar(&p.EnvironmentID, "environment", "", "only events of this environment")
	f.StringVar(&p.KeyID, "key", "", "only events about this key")
	f.StringVar(&p.Action, "action", "", "only events of this kind: "+strings.Join(auditActions, ", "))
	f.IntVar(&max, "limit", 0, "show at most this many events (0: all)")
	_ = cmd.RegisterFlagCompletionFunc("action", cobra.FixedCompletions(auditActions, cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = k.run(func(ctx context.Context, c *client.Client, _ []string) error {
		events := []client.AuditEvent{}
		for e, err := range c.AuditEvents(ctx, p) {
			if err != nil {
				return err
			}
			events = append(events, e)
			if max > 0 && len(events) == max {
				break
			}
		}
		return k.print(events, func(t *table) {
			t.row("CREATED_AT", "ACTION", "KEY_ID", "ACTOR")
			for _, e := range events {
				t.row(e.CreatedAt.UTC().Format(time.RFC3339), e.Action, e.KeyID, actorText(e.Actor))
			}
		})
	})
	return cmd
}

// reachError restates a failure to connect to the server so that it says
// which URL was tried and how to point the CLI at the right one.
func reachError(base string, err error) error {
	var ue *url.Error
	if errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &ue) && strings.Contains(err.Error(), "no such host")) {
		return fmt.Errorf("cannot reach apikeyd at %s: %w\nIs the server running there? Point the CLI at it with APIKEYD_URL (or --url)", base, err)
	}
	return err
}
