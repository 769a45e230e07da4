package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/apikeyd/apikeyd/client"
)

// readMeta reads --meta: inline JSON, or @file for the contents of a file.
func readMeta(v string) (json.RawMessage, error) {
	raw := []byte(v)
	if name, ok := strings.CutPrefix(v, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, usageError{fmt.Errorf("--meta: %w", err)}
		}
		raw = b
	}
	if !json.Valid(raw) {
		return nil, usageError{errors.New("--meta must be a JSON object (or @file.json)")}
	}
	return json.RawMessage(raw), nil
}

func (k *keysCmd) disable() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:               "disable KEY_ID",
		Short:             "Pause a key until it is enabled again",
		Long:              "Pause a key: it verifies as DISABLED, cannot be used as a bearer and is not rotated, until `apikeyd keys enable`.",
		Example:           "  apikeyd keys disable key_01j… --reason \"fraud review\"",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (at most 255 characters), shown as disabled_reason")
	cmd.RunE = k.run(func(ctx context.Context, c *client.Client, args []string) error {
		key, err := c.DisableKey(ctx, args[0], reason)
		if err != nil {
			return err
		}
		return k.print(key, func(t *table) { keyFields(t, key) })
	})
	return cmd
}

func (k *keysCmd) enable() *cobra.Command {
	cmd := &cobra.Command{
		Use:               "enable KEY_ID",
		Short:             "Enable a disabled key",
		Example:           "  apikeyd keys enable key_01j…",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	cmd.RunE = k.run(func(ctx context.Context, c *client.Client, args []string) error {
		key, err := c.EnableKey(ctx, args[0])
		if err != nil {
			return err
		}
		return k.print(key, func(t *table) { keyFields(t, key) })
	})
	return cmd
}

func (k *keysCmd) importKeys() *cobra.Command {
	var project string
	cmd := &cobra.Command{
		Use:   "import --project ID FILE.jsonl",
		Short: "Import existing keys, by plaintext or hash",
		Long: `Import existing keys into a project (POST /v1/api-keys/import), so that
your customers keep the keys they have. FILE holds one JSON object a line
("-" reads standard input):

  {"name": "acme prod", "hash": "sha256:<64 hex>", "owner_id": "acme"}
  {"name": "legacy", "key": "<the key itself>", "scopes": ["read"]}

with the fields of the API: name, key or hash, key_prefix, scopes,
environment_id, expires_at, owner_id, meta, ip_allowlist. Up to 1000 lines
are one atomic batch; a longer file is sent in batches of 1000, each all or
nothing, and the import stops at the first batch refused.`,
		Example: "  apikeyd keys import --project acme keys.jsonl",
		Args:    cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&project, "project", "", "project the keys belong to")
	requireFlags(cmd, "project")
	cmd.RunE = k.run(func(ctx context.Context, c *client.Client, args []string) error {
		in := k.stdin
		if args[0] != "-" {
			f, err := os.Open(args[0])
			if err != nil {
				return usageError{err}
			}
			defer f.Close()
			in = f
		}
		var items []client.ImportKey
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for line := 1; sc.Scan(); line++ {
			text := strings.TrimSpace(sc.Text())
			if text == "" {
				continue
			}
			var it client.ImportKey
			d := json.NewDecoder(strings.NewReader(text))
			d.DisallowUnknownFields()
			if err := d.Decode(&it); err != nil {
				// The line may hold a plaintext key: say where, not what.
				return usageError{fmt.Errorf("%s line %d: not a key object", args[0], line)}
			}
			items = append(items, it)
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("read %s: %w", args[0], err)
		}
		if len(items) == 0 {
			return usageError{fmt.Errorf("%s holds no keys", args[0])}
		}
		var all []client.Key
		for start := 0; start < len(items); start += 1000 {
			keys, err := c.ImportKeys(ctx, client.ImportParams{ProjectID: project, Keys: items[start:min(start+1000, len(items))]})
			if err != nil {
				if start > 0 {
					fmt.Fprintf(k.stderr, "%d keys were imported before this batch was refused.\n", start)
				}
				return err
			}
			all = append(all, keys...)
		}
		return k.print(all, func(t *table) {
			for _, key := range all {
				t.row(key.ID, key.Name)
			}
		})
	})
	return cmd
}
