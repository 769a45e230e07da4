package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/apikeyd/apikeyd/client"
)

// table is tab-aligned text output.
type table struct{ w *tabwriter.Writer }

func (t *table) row(cells ...string) {
	for i, c := range cells {
		// A tab or newline inside a value (a key's name may hold one)
		// would break the columns.
		cells[i] = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, c)
	}
	t.w.Write([]byte(strings.Join(cells, "\t") + "\n"))
}

// print writes v as indented JSON with --json, and otherwise the table
// that fill draws.
func (k *keysCmd) print(v any, fill func(*table)) error {
	if k.json {
		enc := json.NewEncoder(k.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	t := &table{w: tabwriter.NewWriter(k.stdout, 0, 0, 2, ' ', 0)}
	fill(t)
	return t.w.Flush()
}

// keyRows draws one line per key.
func keyRows(t *table, keys []client.Key) {
	t.row("ID", "NAME", "PREFIX", "STATUS", "ENVIRONMENT", "SCOPES", "EXPIRES", "LAST USED", "CREATED")
	for _, k := range keys {
		t.row(k.ID, k.Name, k.KeyPrefix, string(k.Status), stringOrDash(k.EnvironmentID), scopeList(k.Scopes),
			timeOrDash(k.ExpiresAt), timeOrDash(k.LastUsedAt), k.CreatedAt.UTC().Format(time.RFC3339))
	}
}

// keyFields draws one line per field of a key.
func keyFields(t *table, k *client.Key) {
	t.row("id", k.ID)
	t.row("project_id", k.ProjectID)
	t.row("name", k.Name)
	t.row("key_prefix", k.KeyPrefix)
	t.row("status", string(k.Status))
	t.row("scopes", scopeList(k.Scopes))
	t.row("environment_id", stringOrDash(k.EnvironmentID))
	t.row("expires_at", timeOrDash(k.ExpiresAt))
	t.row("last_used_at", timeOrDash(k.LastUsedAt))
	t.row("created_at", k.CreatedAt.UTC().Format(time.RFC3339))
	t.row("revoked_at", timeOrDash(k.RevokedAt))
	t.row("replaced_by_key_id", stringOrDash(k.ReplacedByKeyID))
	t.row("grace_expires_at", timeOrDash(k.GraceExpiresAt))
	interval := "-"
	if k.RotationIntervalDays != nil {
		interval = strconv.Itoa(*k.RotationIntervalDays)
	}
	t.row("rotation_interval_days", interval)
	t.row("next_rotation_at", timeOrDash(k.NextRotationAt))
	t.row("rotation_webhook_url", stringOrDash(k.RotationWebhookURL))
	t.row("owner_id", stringOrDash(k.OwnerID))
	meta := "-"
	if k.Meta != nil {
		meta = string(k.Meta)
	}
	t.row("meta", meta)
	t.row("ip_allowlist", scopeList(k.IPAllowlist))
	t.row("disabled_at", timeOrDash(k.DisabledAt))
	t.row("disabled_reason", stringOrDash(k.DisabledReason))
	t.row("revocation_reason", stringOrDash(k.RevocationReason))
	t.row("source", k.Source)
	limits := "-"
	if len(k.RateLimits) > 0 {
		var ls []string
		for _, l := range k.RateLimits {
			ls = append(ls, fmt.Sprintf("%s:%d:%d", l.Name, l.Limit, l.DurationMS))
		}
		limits = strings.Join(ls, ",")
	}
	t.row("ratelimits", limits)
	credits := "-"
	if k.Credits != nil {
		credits = strconv.FormatInt(k.Credits.Remaining, 10)
	}
	t.row("credits", credits)
}

func scopeList(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

func stringOrDash(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return *s
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
