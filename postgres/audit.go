package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/apikeyd/apikeyd/apikey"
)

func scanEvent(row pgx.Row) (*apikey.AuditEvent, error) {
	var e apikey.AuditEvent
	var details []byte
	err := row.Scan(&e.ID, &e.ProjectID, &e.EnvironmentID, &e.KeyID, &e.Action,
		&e.Actor.Type, &e.Actor.KeyID, &e.Actor.Name, &details, (*tstz)(&e.CreatedAt))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(details, &e.Details); err != nil {
		return nil, fmt.Errorf("event %s: decode details: %w", e.ID, err)
	}
	return &e, nil
}

// AuditEvents lists a project's audit events, or with f.NoProject those
// of no project, newest first. Details are
// decoded from JSON: numbers come back as float64.
func (s *Store) AuditEvents(ctx context.Context, f apikey.AuditFilter) ([]*apikey.AuditEvent, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var c conds
	if f.NoProject {
		c.and("project_id IS NULL")
	} else {
		c.and("project_id = " + c.arg(f.ProjectID))
	}
	if f.EnvironmentID != "" {
		c.and("environment_id = " + c.arg(f.EnvironmentID))
	}
	if f.KeyID != "" {
		c.and("key_id = " + c.arg(f.KeyID))
	}
	if f.Action != "" {
		c.and("action = " + c.arg(f.Action))
	}
	if f.After != nil {
		c.and(fmt.Sprintf("(created_at, id) < (%s, %s)", c.arg(tstz(f.After.Time)), c.arg(f.After.ID)))
	}
	events, err := queryAll(ctx, s.pool, scanEvent, `SELECT id, COALESCE(project_id, ''), COALESCE(environment_id, ''), key_id, action,
		actor_type, COALESCE(actor_key_id, ''), COALESCE(actor_name, ''), details, created_at
		FROM audit_events WHERE `+c.String()+" ORDER BY created_at DESC, id DESC LIMIT "+c.arg(limit(f.Limit)), c.args...)
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
	_, err := t.tx.Exec(ctx, `INSERT INTO audit_events (
		id, project_id, environment_id, key_id, action, actor_type, actor_key_id, actor_name, details, created_at
	) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		e.ID, orNull(e.ProjectID), orNull(e.EnvironmentID), e.KeyID, e.Action,
		e.Actor.Type, orNull(e.Actor.KeyID), orNull(e.Actor.Name), details, tstz(e.CreatedAt))
	if err != nil {
		return t.fail("insert audit event", err)
	}
	return nil
}
