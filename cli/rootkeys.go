package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/apikeyd/apikeyd/client"
)

// permissions are the root-key permissions, for help and completion.
var permissions = []string{
	client.PermissionRead, client.PermissionWrite, client.PermissionVerify, client.PermissionAPIKeys,
	client.PermissionRootKeysRead, client.PermissionRootKeysWrite, client.PermissionRootKeys, client.PermissionAll,
}

func newRootKeys(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	k := &keysCmd{stdout: stdout, stderr: stderr, getenv: getenv}
	cmd := &cobra.Command{
		Use:   "root-keys",
		Short: "Manage root keys: the credentials of your platform's services and operators",
		Long: `Manage root keys on a running apikeyd, through its HTTP API.

A root key (apikeyd_…) is a named, scoped stand-in for the admin token: it
holds some of apikeyd's own permissions (` + strings.Join(permissions, ", ") + `)
in some projects, or in every one, and is the actor of what it does in the
audit log. A service that verifies every customer's keys holds a
verify-only root key of every project; the admin token stays for
break-glass.

The server and token are found as for "apikeyd keys": APIKEYD_URL,
APIKEYD_TOKEN or APIKEYD_TOKEN_FILE (the admin token, or a root key with
root-keys:read or root-keys:write).`,
		Example: `  export APIKEYD_URL=http://127.0.0.1:8080 APIKEYD_TOKEN_FILE=./data/admin.token
  apikeyd root-keys create --name api-gateway --permission api-keys:verify --all-projects
  apikeyd root-keys create --name acme-ops --permission api-keys:write --project acme
  apikeyd root-keys ls`,
		Args:                       cobra.ArbitraryArgs,
		FParseErrWhitelist:         cobra.FParseErrWhitelist{UnknownFlags: true},
		SuggestionsMinimumDistance: 2,
		RunE:                       unknownSubcommand,
	}
	k.connectionFlags(cmd)
	cmd.AddCommand(k.rootList(), k.rootGet(), k.rootCreate(), k.rootUpdate(), k.rootRotate(), k.rootRevoke())
	return cmd
}

func completePermissions(cmd *cobra.Command, flag string) {
	_ = cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(permissions, cobra.ShellCompDirectiveNoFileComp))
}

func (k *keysCmd) rootList() *cobra.Command {
	var p client.RootKeyListParams
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the root keys you may see, newest first",
		Example: `  apikeyd root-keys list
  apikeyd root-keys ls --status active -o json | jq -r '.[] | "\(.id) \(.name)"'`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringVar((*string)(&p.Status), "status", "", "only root keys in this state: "+strings.Join(statuses, ", "))
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(statuses, cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = k.run(func(ctx context.Context, c *client.Client, _ []string) error {
		keys := []client.RootKey{}
		for rk, err := range c.ListRootKeys(ctx, p) {
			if err != nil {
				return err
			}
			keys = append(keys, rk)
		}
		return k.print(keys, func(t *table) {
			t.row("ID", "NAME", "PREFIX", "STATUS", "PERMISSIONS", "PROJECTS", "EXPIRES", "LAST USED", "CREATED")
			for _, rk := range keys {
				t.row(rk.ID, rk.Name, rk.KeyPrefix, string(rk.Status), scopeList(rk.Permissions), projectList(rk.ProjectIDs),
					timeOrDash(rk.ExpiresAt), timeOrDash(rk.LastUsedAt), rk.CreatedAt.UTC().Format(time.RFC3339))
			}
		})
	})
	return cmd
}

// projectList shows a root key's projects; nil is every project.
func projectList(ids []string) string {
	if ids == nil {
		return "(all)"
	}
	return strings.Join(ids, ",")
}

func actorText(a client.Actor) string {
	s := a.Type
	if a.KeyID != nil {
		s += " " + *a.KeyID
	}
	if a.Name != nil {
		s += " (" + *a.Name + ")"
	}
	return s
}

func rootKeyFields(t *table, rk *client.RootKey) {
	t.row("id", rk.ID)
	t.row("name", rk.Name)
	t.row("key_prefix", rk.KeyPrefix)
	t.row("status", string(rk.Status))
	t.row("permissions", scopeList(rk.Permissions))
	t.row("project_ids", projectList(rk.ProjectIDs))
	t.row("expires_at", timeOrDash(rk.ExpiresAt))
	t.row("last_used_at", timeOrDash(rk.LastUsedAt))
	t.row("created_at", rk.CreatedAt.UTC().Format(time.RFC3339))
	t.row("created_by", actorText(rk.CreatedBy))
	t.row("revoked_at", timeOrDash(rk.RevokedAt))
	t.row("replaced_by_key_id", stringOrDash(rk.ReplacedByKeyID))
	t.row("grace_expires_at", timeOrDash(rk.GraceExpiresAt))
}

func (k *keysCmd) rootGet() *cobra.Command {
	cmd := &cobra.Command{
		Use:               "get ROOT_KEY_ID",
		Short:             "Show a root key",
		Example:           "  apikeyd root-keys get root_01j…\n  apikeyd root-keys get root_01j… -o json",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	cmd.RunE = k.run(func(ctx context.Context, c *client.Client, args []string) error {
		rk, err := c.GetRootKey(ctx, args[0])
		if err != nil {
			return err
		}
		return k.print(rk, func(t *table) { rootKeyFields(t, rk) })
	})
	return cmd
}

func (k *keysCmd) rootCreate() *cobra.Command {
	var p client.CreateRootKeyParams
	var expiresAt string
	var all bool
	cmd := &cobra.Command{
		Use:   "create --name NAME --permission P (--project ID... | --all-projects)",
		Short: "Issue a root key; the key itself is printed this once",
		Long: `Issue a root key. Give its permissions (--permission, repeatable: ` + strings.Join(permissions, ", ") + `)
and where it acts: --project (repeatable) for some projects, or --all-projects
for every project, present and future. A root key can only give the
permissions and projects it holds itself.`,
		Example: `  # What an API serving every customer holds: verify only, every project.
  apikeyd root-keys create --name api-gateway --permission api-keys:verify --all-projects
  apikeyd root-keys create --name acme-ops --permission api-keys:write --project acme --expires-in-days 90
  apikeyd root-keys create --name ci --permission api-keys:read --project acme --project globex -o json | jq -r .key`,
		Args: cobra.NoArgs,
	}
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		if !all && len(p.ProjectIDs) == 0 {
			return usageError{errors.New("say where the root key acts: --project ID (repeatable) or --all-projects")}
		}
		return positive(cmd, "expires-in-days", p.ExpiresInDays)
	}
	f := cmd.Flags()
	f.StringVar(&p.Name, "name", "", "who or what uses the key (the actor's name in the audit log)")
	f.StringSliceVar(&p.Permissions, "permission", nil, "permission the key holds (repeat, or comma-separate)")
	f.StringSliceVar(&p.ProjectIDs, "project", nil, "project the key acts in (repeat, or comma-separate)")
	f.BoolVar(&all, "all-projects", false, "the key acts in every project, present and future")
	f.IntVar(&p.ExpiresInDays, "expires-in-days", 0, "lifetime in days")
	f.StringVar(&expiresAt, "expires-at", "", "expiry instant, RFC 3339 (e.g. "+rfc3339Example+")")
	requireFlags(cmd, "name", "permission")
	cmd.MarkFlagsMutuallyExclusive("project", "all-projects")
	cmd.MarkFlagsMutuallyExclusive("expires-in-days", "expires-at")
	completePermissions(cmd, "permission")
	cmd.RunE = k.run(func(ctx context.Context, c *client.Client, _ []string) error {
		if expiresAt != "" {
			t, err := parseTime("expires-at", expiresAt)
			if err != nil {
				return err
			}
			p.ExpiresAt = t
		}
		if all {
			p.ProjectIDs = nil
		}
		created, err := c.CreateRootKey(ctx, p)
		if err != nil {
			return err
		}
		if !k.json {
			fmt.Fprintln(k.stderr, "The root key is shown this once: store it now. apikeyd keeps only its hash.")
		}
		return k.print(created, func(t *table) {
			t.row("key", created.Secret)
			rootKeyFields(t, &created.RootKey)
		})
	})
	return cmd
}

func (k *keysCmd) rootUpdate() *cobra.Command {
	var (
		name, expiresAt string
		perms, projects []string
		all, noExpiry   bool
	)
	cmd := &cobra.Command{
		Use:   "update ROOT_KEY_ID [flags]",
		Short: "Change a root key's name, permissions, projects or expiry",
		Long: `Change a root key (PATCH /v1/root-keys/{id}): only the fields whose flags
are given change. You need every permission and project the key holds, and
will hold; a revoked or replaced root key cannot be changed.`,
		Example: `  apikeyd root-keys update root_01j… --name "api-gateway (eu)"
  apikeyd root-keys update root_01j… --permission api-keys:verify --permission api-keys:read
  apikeyd root-keys update root_01j… --project acme --project globex
  apikeyd root-keys update root_01j… --all-projects
  apikeyd root-keys update root_01j… --no-expiry`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new name")
	f.StringSliceVar(&perms, "permission", nil, "the key's permissions, replacing the old ones (repeat, or comma-separate)")
	f.StringSliceVar(&projects, "project", nil, "the key's projects, replacing the old ones (repeat, or comma-separate)")
	f.BoolVar(&all, "all-projects", false, "the key acts in every project, present and future")
	f.StringVar(&expiresAt, "expires-at", "", "new expiry instant, RFC 3339 (e.g. "+rfc3339Example+")")
	f.BoolVar(&noExpiry, "no-expiry", false, "remove the expiry")
	cmd.MarkFlagsMutuallyExclusive("project", "all-projects")
	cmd.MarkFlagsMutuallyExclusive("expires-at", "no-expiry")
	completePermissions(cmd, "permission")
	cmd.RunE = k.run(func(ctx context.Context, c *client.Client, args []string) error {
		var p client.UpdateRootKeyParams
		changed := cmd.Flags().Changed
		if changed("name") {
			p.Name = client.Value(name)
		}
		if changed("permission") {
			p.Permissions = client.Value(perms)
		}
		switch {
		case changed("project"):
			p.ProjectIDs = client.Value(projects)
		case all:
			p.ProjectIDs = client.Null[[]string]()
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
		if p.Name.IsZero() && p.Permissions.IsZero() && p.ProjectIDs.IsZero() && p.ExpiresAt.IsZero() {
			return usageError{errors.New("nothing to change: give at least one of the flags (see --help)")}
		}
		rk, err := c.UpdateRootKey(ctx, args[0], p)
		if err != nil {
			return err
		}
		return k.print(rk, func(t *table) { rootKeyFields(t, rk) })
	})
	return cmd
}

func (k *keysCmd) rootRotate() *cobra.Command {
	var grace int
	cmd := &cobra.Command{
		Use:               "rotate ROOT_KEY_ID",
		Short:             "Replace a root key; the old one keeps working for a grace period",
		Example:           "  apikeyd root-keys rotate root_01j…\n  apikeyd root-keys rotate root_01j… --grace-minutes 0   # the old root key stops now",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	cmd.Flags().IntVar(&grace, "grace-minutes", 60, "how long the old root key keeps working (0: stops now; at most 10080)")
	cmd.RunE = k.run(func(ctx context.Context, c *client.Client, args []string) error {
		var p client.RotateParams
		if cmd.Flags().Changed("grace-minutes") {
			p.GracePeriodMinutes = &grace
		}
		r, err := c.RotateRootKey(ctx, args[0], p)
		if err != nil {
			return err
		}
		if !k.json {
			fmt.Fprintln(k.stderr, "The new root key is shown this once: store it now.")
		}
		return k.print(r, func(t *table) {
			t.row("key", r.Secret)
			t.row("new_key_id", r.NewKeyID)
			t.row("old_key_id", r.OldKeyID)
			t.row("old_key_works_until", timeOrDash(r.GraceExpiresAt))
			t.row("name", r.Name)
			t.row("key_prefix", r.KeyPrefix)
			t.row("permissions", scopeList(r.Permissions))
			t.row("project_ids", projectList(r.ProjectIDs))
			t.row("expires_at", timeOrDash(r.ExpiresAt))
			t.row("created_at", r.CreatedAt.UTC().Format(time.RFC3339))
		})
	})
	return cmd
}

func (k *keysCmd) rootRevoke() *cobra.Command {
	cmd := &cobra.Command{
		Use:               "revoke ROOT_KEY_ID",
		Aliases:           []string{"rm"},
		Short:             "Revoke a root key at once, on every replica",
		Example:           "  apikeyd root-keys revoke root_01j…",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	cmd.RunE = k.run(func(ctx context.Context, c *client.Client, args []string) error {
		if err := c.RevokeRootKey(ctx, args[0]); err != nil {
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
