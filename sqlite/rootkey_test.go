package sqlite

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// TestMigrateRootKeys upgrades a database of migrations 0001–0003 that
// holds an audit event: the rebuilt audit_events keeps it, and takes
// events of no project (root-key changes) from then on.
func TestMigrateRootKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apikeyd.db")
	db, err := openDB(t.Context(), path, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(t.Context(), db, migrationsBefore(t, "0004")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), `INSERT INTO audit_events
		(id, project_id, environment_id, key_id, action, actor_type, actor_key_id, details, created_at)
		VALUES ('evt_old', 'p1', NULL, 'key_1', 'api_key.created', 'api_key', 'key_0', '{"name":"ci"}', 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open after 0003: %v", err)
	}
	defer s.Close()
	root := &apikey.AuditEvent{ID: "evt_root", KeyID: "root_1", Action: apikey.ActionRootKeyCreated,
		Actor: apikey.Actor{Type: apikey.ActorAdmin}, CreatedAt: time.UnixMicro(2).UTC()}
	if err := s.Update(t.Context(), func(tx apikey.Tx) error { return tx.InsertAuditEvent(t.Context(), root) }); err != nil {
		t.Fatalf("insert an event of no project: %v", err)
	}
	old, err := s.AuditEvents(t.Context(), apikey.AuditFilter{ProjectID: "p1", Limit: 10})
	if err != nil || len(old) != 1 || old[0].ID != "evt_old" || old[0].Actor != (apikey.Actor{Type: apikey.ActorAPIKey, KeyID: "key_0"}) || old[0].Details["name"] != "ci" {
		t.Fatalf("events of p1 after the upgrade: %+v, %v", old, err)
	}
	none, err := s.AuditEvents(t.Context(), apikey.AuditFilter{NoProject: true, Limit: 10})
	if err != nil || len(none) != 1 || none[0].ID != "evt_root" {
		t.Fatalf("events of no project: %+v, %v", none, err)
	}
	var indexes string
	if err := s.read.QueryRowContext(t.Context(), "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'audit_events' AND sql IS NOT NULL ORDER BY name)").Scan(&indexes); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(indexes, "audit_events_project_created") || !strings.Contains(indexes, "audit_events_key") {
		t.Errorf("indexes of audit_events after the rebuild: %q", indexes)
	}
}
