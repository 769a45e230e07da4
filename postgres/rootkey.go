package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/apikeyd/apikeyd/apikey"
)

// rootKeyColumns are the columns scanRootKey reads, in its order: the one
// place a root-key field is mapped to its column.
const rootKeyColumns = `id, name, key_prefix, key_hash, permissions, project_ids,
	expires_at, last_used_at, created_at, updated_at, revoked_at,
	COALESCE(replaced_by_key_id, ''), grace_expires_at, COALESCE(replaces_key_id, ''),
	created_by_type, COALESCE(created_by_key_id, ''), COALESCE(created_by_name, ''), version`

// selectRootKey starts a query for root keys.
const selectRootKey = "SELECT " + rootKeyColumns + " FROM root_keys "

func scanRootKey(row pgx.Row) (*apikey.RootKey, error) {
	var rk apikey.RootKey
	var hash []byte
	var projects *[]string
	err := row.Scan(&rk.ID, &rk.Name, &rk.KeyPrefix, &hash, &rk.Permissions, &projects,
		(*tstz)(&rk.ExpiresAt), (*tstz)(&rk.LastUsedAt), (*tstz)(&rk.CreatedAt), (*tstz)(&rk.UpdatedAt), (*tstz)(&rk.RevokedAt),
		&rk.ReplacedByKeyID, (*tstz)(&rk.GraceExpiresAt), &rk.ReplacesKeyID,
		&rk.CreatedBy.Type, &rk.CreatedBy.KeyID, &rk.CreatedBy.Name, &rk.Version)
	if err != nil {
		return nil, err
	}
	if len(hash) != len(rk.Hash) {
		return nil, fmt.Errorf("root key %s: hash of %d bytes", rk.ID, len(hash))
	}
	copy(rk.Hash[:], hash)
	if rk.Permissions == nil {
		rk.Permissions = []string{}
	}
	if projects != nil { // NULL: every project
		rk.ProjectIDs = append([]string{}, *projects...)
	}
	return &rk, nil
}

// projectIDs returns the stored form of a root key's projects: NULL for
// every project, else an array (empty stays empty).
func projectIDs(ids []string) any {
	if ids == nil {
		return nil
	}
	return append([]string{}, ids...)
}

// oneRootKey reads the root key of a single-row query.
func oneRootKey(ctx context.Context, q querier, op, query string, args ...any) (*apikey.RootKey, error) {
	rk, err := scanRootKey(q.QueryRow(ctx, query, args...))
	if err != nil {
		return nil, dbError(op, err)
	}
	return rk, nil
}

// RootKey returns the root key with the given ID, or ENOTFOUND.
func (s *Store) RootKey(ctx context.Context, id string) (*apikey.RootKey, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	return oneRootKey(ctx, s.pool, "get root key", selectRootKey+"WHERE id = $1", id)
}

// RootKeyByHash returns the root key stored under h, or ENOTFOUND.
func (s *Store) RootKeyByHash(ctx context.Context, h apikey.Hash) (*apikey.RootKey, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	return oneRootKey(ctx, s.pool, "get root key by hash", selectRootKey+"WHERE key_hash = $1", h[:])
}

// RootKeys lists root keys newest first.
func (s *Store) RootKeys(ctx context.Context, f apikey.RootKeyFilter) ([]*apikey.RootKey, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	c := conds{where: []string{"TRUE"}}
	if f.Status != "" {
		c.and(statusSQL(c.arg(tstz(f.Now))) + " = " + c.arg(string(f.Status)))
	}
	if f.After != nil {
		c.and(fmt.Sprintf("(created_at, id) < (%s, %s)", c.arg(tstz(f.After.Time)), c.arg(f.After.ID)))
	}
	keys, err := queryAll(ctx, s.pool, scanRootKey, selectRootKey+"WHERE "+c.String()+
		" ORDER BY created_at DESC, id DESC LIMIT "+c.arg(limit(f.Limit)), c.args...)
	if err != nil {
		return nil, dbError("list root keys", err)
	}
	return keys, nil
}

// ScanRootKeys calls fn for every root key in ID order, scanPage at a
// time, each page bounded on its own and read before fn sees it.
func (s *Store) ScanRootKeys(ctx context.Context, fn func(rk *apikey.RootKey) error) error {
	after := ""
	for {
		keys, err := func() ([]*apikey.RootKey, error) {
			ctx, cancel := bound(ctx)
			defer cancel()
			return queryAll(ctx, s.pool, scanRootKey, selectRootKey+"WHERE id > $1 ORDER BY id LIMIT $2", after, scanPage)
		}()
		if err != nil {
			return dbError("scan root keys", err)
		}
		for _, rk := range keys {
			if err := fn(rk); err != nil {
				return err
			}
		}
		if len(keys) < scanPage {
			return nil
		}
		after = keys[len(keys)-1].ID
	}
}

// RootKeyChanges is KeyChanges for root keys: the root keys whose change
// committed after the snapshot since, and the current snapshot. Snapshots
// cover every table, so positions are shared with KeyChanges.
func (s *Store) RootKeyChanges(ctx context.Context, since string, fn func(rk *apikey.RootKey) error) (string, error) {
	if since != "" && !snapshotPattern.MatchString(since) {
		return "", apikey.Errorf(apikey.EINVALID, "not a position of this store: %q", since)
	}
	ctx, cancel := bound(ctx)
	defer cancel()
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return "", dbError("root key changes", err)
	}
	defer tx.Rollback(ctx)
	var next string
	if err := tx.QueryRow(ctx, "SELECT pg_current_snapshot()::text").Scan(&next); err != nil {
		return "", dbError("root key changes", err)
	}
	if since != "" {
		keys, err := queryAll(ctx, tx, scanRootKey, selectRootKey+`WHERE change_xid >= pg_snapshot_xmin($1::text::pg_snapshot)
			AND NOT pg_visible_in_snapshot(change_xid, $1::text::pg_snapshot)`, since)
		if err != nil {
			return "", changesError(err)
		}
		for _, rk := range keys {
			if err := fn(rk); err != nil {
				return "", err
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return "", dbError("root key changes", err)
	}
	return next, nil
}

// TouchRootKeys moves last_used_at forward in one statement, locking rows
// in ID order as TouchKeys does.
func (s *Store) TouchRootKeys(ctx context.Context, uses []apikey.KeyUse) error {
	return s.touch(ctx, "root_keys", uses)
}

// RootKeyForUpdate returns the root key with the given ID and locks its row
// until the transaction ends.
func (t *tx) RootKeyForUpdate(ctx context.Context, id string) (*apikey.RootKey, error) {
	rk, err := scanRootKey(t.tx.QueryRow(ctx, selectRootKey+"WHERE id = $1 FOR UPDATE", id))
	if err != nil {
		return nil, t.fail("get root key for update", err)
	}
	return rk, nil
}

// InsertRootKey stores rk with Version 1 and sets rk.Version to match.
func (t *tx) InsertRootKey(ctx context.Context, rk *apikey.RootKey) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO root_keys (
		id, name, key_prefix, key_hash, permissions, project_ids,
		expires_at, last_used_at, created_at, updated_at, revoked_at,
		replaced_by_key_id, grace_expires_at, replaces_key_id,
		created_by_type, created_by_key_id, created_by_name, version
	) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, 1)`,
		rk.ID, rk.Name, rk.KeyPrefix, rk.Hash[:], scopes(rk.Permissions), projectIDs(rk.ProjectIDs),
		tstz(rk.ExpiresAt), tstz(rk.LastUsedAt), tstz(rk.CreatedAt), tstz(rk.UpdatedAt), tstz(rk.RevokedAt),
		orNull(rk.ReplacedByKeyID), tstz(rk.GraceExpiresAt), orNull(rk.ReplacesKeyID),
		rk.CreatedBy.Type, orNull(rk.CreatedBy.KeyID), orNull(rk.CreatedBy.Name))
	if err != nil {
		return t.fail("insert root key", err)
	}
	rk.Version = 1
	return nil
}

// UpdateRootKey writes the mutable fields of rk if its stored version is
// still rk.Version, and sets rk.Version to the new one.
func (t *tx) UpdateRootKey(ctx context.Context, rk *apikey.RootKey) error {
	err := t.tx.QueryRow(ctx, `UPDATE root_keys SET
		name = $1, permissions = $2, project_ids = $3, expires_at = $4, revoked_at = $5,
		replaced_by_key_id = $6, grace_expires_at = $7, replaces_key_id = $8,
		updated_at = $9, version = version + 1
		WHERE id = $10 AND version = $11 RETURNING version`,
		rk.Name, scopes(rk.Permissions), projectIDs(rk.ProjectIDs), tstz(rk.ExpiresAt), tstz(rk.RevokedAt),
		orNull(rk.ReplacedByKeyID), tstz(rk.GraceExpiresAt), orNull(rk.ReplacesKeyID),
		tstz(rk.UpdatedAt), rk.ID, rk.Version).Scan(&rk.Version)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, pgx.ErrNoRows):
		return t.fail("update root key", err)
	}
	var exists bool
	if err := t.tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM root_keys WHERE id = $1)", rk.ID).Scan(&exists); err != nil {
		return t.fail("update root key", err)
	}
	if !exists {
		return fmt.Errorf("update root key: %w", apikey.ErrNotFound)
	}
	return &apikey.Error{Code: apikey.ECONFLICT, Message: "the root key has changed since it was read"}
}
