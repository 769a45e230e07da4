package cli

import (
	"slices"
	"testing"

	"github.com/apikeyd/apikeyd/apikey"
)

// TestAuditActions checks --action's values against the domain's list,
// apikey.AuditActions, which the CLI does not import.
func TestAuditActions(t *testing.T) {
	if !slices.Equal(auditActions, apikey.AuditActions) {
		t.Fatalf("auditActions %v\nwant apikey.AuditActions %v", auditActions, apikey.AuditActions)
	}
}
