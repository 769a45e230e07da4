package postgres

import (
	"context"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/internal/dbvalue"
)

// Owner implements apikey.UsageStore.
func (s *Store) Owner(ctx context.Context, projectID, ownerID string) (*apikey.Owner, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	o := &apikey.Owner{ProjectID: projectID, OwnerID: ownerID}
	var meta *string
	err := s.pool.QueryRow(ctx, `SELECT ratelimits, has_credits, meta, created_at, updated_at
		FROM usage_owners WHERE project_id = $1 AND owner_id = $2`, projectID, ownerID).
		Scan((*dbvalue.RateLimits)(&o.RateLimits), &o.HasCredits, &meta, (*tstz)(&o.CreatedAt), (*tstz)(&o.UpdatedAt))
	if err != nil {
		return nil, dbError("get owner", err)
	}
	if meta != nil {
		o.Meta = []byte(*meta)
	}
	return o, nil
}

// PutOwner implements apikey.UsageTx.
func (t *tx) PutOwner(ctx context.Context, o *apikey.Owner) error {
	var meta *string
	if o.Meta != nil {
		m := string(o.Meta)
		meta = &m
	}
	err := t.tx.QueryRow(ctx, `INSERT INTO usage_owners (project_id, owner_id, ratelimits, has_credits, meta, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (project_id, owner_id) DO UPDATE SET ratelimits = EXCLUDED.ratelimits, has_credits = EXCLUDED.has_credits,
			meta = EXCLUDED.meta, updated_at = EXCLUDED.updated_at
		RETURNING created_at`,
		o.ProjectID, o.OwnerID, dbvalue.RateLimits(o.RateLimits), o.HasCredits, meta, tstz(o.CreatedAt), tstz(o.UpdatedAt)).
		Scan((*tstz)(&o.CreatedAt))
	if err != nil {
		return t.fail("put owner", err)
	}
	return nil
}

// DeleteOwner implements apikey.UsageTx.
func (t *tx) DeleteOwner(ctx context.Context, projectID, ownerID string) error {
	if _, err := t.tx.Exec(ctx, "DELETE FROM usage_owners WHERE project_id = $1 AND owner_id = $2", projectID, ownerID); err != nil {
		return t.fail("delete owner", err)
	}
	return nil
}
