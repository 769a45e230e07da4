package sqlite

import (
	"context"
	"database/sql"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/internal/dbvalue"
)

// Owner implements apikey.UsageStore.
func (s *Store) Owner(ctx context.Context, projectID, ownerID string) (*apikey.Owner, error) {
	o := &apikey.Owner{ProjectID: projectID, OwnerID: ownerID}
	var meta sql.NullString
	err := s.read.QueryRowContext(ctx, `SELECT ratelimits, has_credits, meta, created_at, updated_at
		FROM usage_owners WHERE project_id = ? AND owner_id = ?`, projectID, ownerID).
		Scan((*dbvalue.RateLimits)(&o.RateLimits), &o.HasCredits, &meta, (*micros)(&o.CreatedAt), (*micros)(&o.UpdatedAt))
	if err != nil {
		return nil, dbError("get owner", err)
	}
	if meta.Valid {
		o.Meta = []byte(meta.String)
	}
	return o, nil
}

// PutOwner implements apikey.UsageTx.
func (t *tx) PutOwner(ctx context.Context, o *apikey.Owner) error {
	var meta any
	if o.Meta != nil {
		meta = string(o.Meta)
	}
	err := t.tx.QueryRowContext(ctx, `INSERT INTO usage_owners (project_id, owner_id, ratelimits, has_credits, meta, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (project_id, owner_id) DO UPDATE SET ratelimits = excluded.ratelimits, has_credits = excluded.has_credits,
			meta = excluded.meta, updated_at = excluded.updated_at
		RETURNING created_at`,
		o.ProjectID, o.OwnerID, dbvalue.RateLimits(o.RateLimits), o.HasCredits, meta, micros(o.CreatedAt), micros(o.UpdatedAt)).
		Scan((*micros)(&o.CreatedAt))
	if err != nil {
		return dbError("put owner", err)
	}
	return nil
}

// DeleteOwner implements apikey.UsageTx.
func (t *tx) DeleteOwner(ctx context.Context, projectID, ownerID string) error {
	_, err := t.tx.ExecContext(ctx, "DELETE FROM usage_owners WHERE project_id = ? AND owner_id = ?", projectID, ownerID)
	if err != nil {
		return dbError("delete owner", err)
	}
	return nil
}
