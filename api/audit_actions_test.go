package api

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/apikey"
)

// TestAuditActionFilter checks that the audit listing's action filter
// takes every action an event may have (apikey.AuditActions), and no other.
func TestAuditActionFilter(t *testing.T) {
	field, _ := reflect.TypeOf(auditInput{}).FieldByName("Action")
	if got := strings.Split(field.Tag.Get("enum"), ","); !slices.Equal(got, apikey.AuditActions) {
		t.Fatalf("action enum %v\nwant apikey.AuditActions %v", got, apikey.AuditActions)
	}
}
