package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/apikey"
)

// TestOwnerAudit checks the events of owner changes on the wire: listed
// with the project's, picked by action, key_id null and the owner_id in
// the details; a rejected PUT writes none.
func TestOwnerAudit(t *testing.T) {
	f := newFixture(t, 1000)
	path := "/v1/projects/p1/owners/acme"
	if status, b := f.do(t, http.MethodPut, path, f.admin, []byte(`{"ratelimits":[{"name":"m","limit":0,"duration_ms":1000}]}`)); status != http.StatusBadRequest {
		t.Fatalf("bad PUT: %d %s", status, b)
	}
	if status, b := f.do(t, http.MethodPut, path, f.admin, []byte(`{"credits":{"remaining":5},"meta":{"plan":"pro"}}`)); status != http.StatusOK {
		t.Fatalf("PUT: %d %s", status, b)
	}
	if status, b := f.do(t, http.MethodDelete, path, f.admin, nil); status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", status, b)
	}
	status, b := f.do(t, http.MethodGet, "/v1/audit-events?project_id=p1", f.admin, nil)
	var evs []AuditEventObject
	if err := json.Unmarshal(b, &evs); err != nil || status != http.StatusOK || len(evs) != 2 {
		t.Fatalf("%d %s", status, b)
	}
	if evs[0].Action != apikey.ActionOwnerDeleted || evs[1].Action != apikey.ActionOwnerUpdated {
		t.Fatalf("actions %s, %s", evs[0].Action, evs[1].Action)
	}
	for _, e := range evs {
		if e.KeyID != nil || e.EnvironmentID != nil || e.ProjectID == nil || *e.ProjectID != "p1" ||
			e.Details["owner_id"] != "acme" || e.Actor.Type != apikey.ActorAdmin {
			t.Fatalf("event %s", b)
		}
	}
	if !strings.Contains(string(b), `"key_id":null`) {
		t.Fatalf("key_id not null: %s", b)
	}
	after, _ := json.Marshal(evs[1].Details["after"])
	if string(after) != `{"credits":{"refill":null,"remaining":5},"meta":{"plan":"pro"}}` {
		t.Fatalf("owner.updated after %s", after)
	}
	for _, action := range []string{apikey.ActionOwnerUpdated, apikey.ActionOwnerDeleted} {
		status, b := f.do(t, http.MethodGet, "/v1/audit-events?project_id=p1&action="+action, f.admin, nil)
		if err := json.Unmarshal(b, &evs); err != nil || status != http.StatusOK || len(evs) != 1 || evs[0].Action != action {
			t.Fatalf("action=%s: %d %s", action, status, b)
		}
	}
}
