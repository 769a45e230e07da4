package sqlite

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/apikeyd/apikeyd/apikey"
)

func scanEvent(row scanner) (*apikey.AuditEvent, error) {
	var e apikey.AuditEvent
	var details string
	err := row.Scan(&e.ID, &e.ProjectID, &e.EnvironmentID, &e.KeyID, &e.Action,
		&e.Actor.Type, &e.Actor.KeyID, &e.Actor.Name, &details, (*micros)(&e.CreatedAt))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
		return nil, fmt.Errorf("event %s: decode details: %w", e.ID, err)
	}
	return &e, nil
}

// AuditEvents lists a project's audit events, or with f.NoProject those
// of no project, newest first. Details are
// decoded from JSON: numbers come back as float64.
func (s *Store) AuditEvents(ctx context.Context, f apikey.AuditFilter) ([]*apikey.AuditEvent, error) {
	var c conds
	if f.NoProject {
		c.and("project_id IS NULL")
	} else {
		c.and("project_id = ?", f.ProjectID)
	}
	if f.EnvironmentID != "" {
		c.and("environment_id = ?", f.EnvironmentID)
	}
	if f.KeyID != "" {
		c.and("key_id = ?", f.KeyID)
	}
	if f.Action != "" {
		c.and("action = ?", f.Action)
	}
	if f.After != nil {
		c.and("(created_at, id) < (?, ?)", f.After.Time.UnixMicro(), f.After.ID)
	}
	events, err := queryAll(ctx, s.read, scanEvent, `SELECT id, COALESCE(project_id, ''), COALESCE(environment_id, ''), key_id, action,
		actor_type, COALESCE(actor_key_id, ''), COALESCE(actor_name, ''), details, created_at
		FROM audit_events WHERE `+c.String()+" ORDER BY created_at DESC, id DESC LIMIT ?", append(c.args, limit(f.Limit))...)
	if err != nil {
		return nil, dbError("list audit events", err)
	}
	return events, nil
}

// InsertAuditEvent appends e to the audit log, its details as a JSON object.
func (t *tx) InsertAuditEvent(ctx context.Context, e *apikey.AuditEvent) error {
	details := []byte("{}")
	if len(e.Details) > 0 {
		var err error
		if details, err = json.Marshal(e.Details); err != nil {
			return fmt.Errorf("insert audit event: encode details: %w", err)
		}
	}
	_, err := t.tx.ExecContext(ctx, `INSERT INTO audit_events (
		id, project_id, environment_id, key_id, action, actor_type, actor_key_id, actor_name, details, created_at
	) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, orNull(e.ProjectID), orNull(e.EnvironmentID), e.KeyID, e.Action,
		e.Actor.Type, orNull(e.Actor.KeyID), orNull(e.Actor.Name), string(details), micros(e.CreatedAt))
	if err != nil {
		return dbError("insert audit event", err)
	}
	return nil
}
