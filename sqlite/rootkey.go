package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

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

// lastChangeSeq is the highest change_seq of keys and root keys: both
// tables draw from one sequence, so that one position covers both.
const lastChangeSeq = `(SELECT MAX(m) FROM (SELECT COALESCE(MAX(change_seq), 0) AS m FROM keys
	UNION ALL SELECT COALESCE(MAX(change_seq), 0) FROM root_keys))`

func scanRootKey(row scanner) (*apikey.RootKey, error) {
	var rk apikey.RootKey
	var hash []byte
	var perms string
	var projects sql.NullString
	err := row.Scan(&rk.ID, &rk.Name, &rk.KeyPrefix, &hash, &perms, &projects,
		(*micros)(&rk.ExpiresAt), (*micros)(&rk.LastUsedAt), (*micros)(&rk.CreatedAt), (*micros)(&rk.UpdatedAt), (*micros)(&rk.RevokedAt),
		&rk.ReplacedByKeyID, (*micros)(&rk.GraceExpiresAt), &rk.ReplacesKeyID,
		&rk.CreatedBy.Type, &rk.CreatedBy.KeyID, &rk.CreatedBy.Name, &rk.Version)
	if err != nil {
		return nil, err
	}
	if len(hash) != len(rk.Hash) {
		return nil, fmt.Errorf("root key %s: hash of %d bytes", rk.ID, len(hash))
	}
	copy(rk.Hash[:], hash)
	if rk.Permissions, err = decodeScopes(perms); err != nil {
		return nil, fmt.Errorf("root key %s: decode permissions: %w", rk.ID, err)
	}
	if projects.Valid {
		if rk.ProjectIDs, err = decodeScopes(projects.String); err != nil {
			return nil, fmt.Errorf("root key %s: decode project IDs: %w", rk.ID, err)
		}
	}
	return &rk, nil
}

// rootKeyArgs returns the stored forms of a root key's lists: permissions
// as a JSON array, project IDs as one or NULL (every project).
func rootKeyArgs(rk *apikey.RootKey) (perms string, projects any, err error) {
	if perms, err = scopesJSON(rk.Permissions); err != nil {
		return "", nil, fmt.Errorf("encode permissions: %w", err)
	}
	if rk.ProjectIDs == nil {
		return perms, nil, nil
	}
	p, err := scopesJSON(rk.ProjectIDs)
	if err != nil {
		return "", nil, fmt.Errorf("encode project IDs: %w", err)
	}
	return perms, p, nil
}

// oneRootKey scans the root key of row.
func oneRootKey(op string, row *sql.Row) (*apikey.RootKey, error) {
	rk, err := scanRootKey(row)
	if err != nil {
		return nil, dbError(op, err)
	}
	return rk, nil
}

// RootKey returns the root key with the given ID, or ENOTFOUND.
func (s *Store) RootKey(ctx context.Context, id string) (*apikey.RootKey, error) {
	return oneRootKey("get root key", s.read.QueryRowContext(ctx, selectRootKey+"WHERE id = ?", id))
}

// RootKeyByHash returns the root key stored under h, or ENOTFOUND.
func (s *Store) RootKeyByHash(ctx context.Context, h apikey.Hash) (*apikey.RootKey, error) {
	return oneRootKey("get root key by hash", s.read.QueryRowContext(ctx, selectRootKey+"WHERE key_hash = ?", h[:]))
}

// RootKeys lists root keys newest first.
func (s *Store) RootKeys(ctx context.Context, f apikey.RootKeyFilter) ([]*apikey.RootKey, error) {
	c := conds{where: []string{"TRUE"}}
	if f.Status != "" {
		now := f.Now.UnixMicro()
		c.and(statusSQL+" = ?", now, now, string(f.Status))
	}
	if f.After != nil {
		c.and("(created_at, id) < (?, ?)", f.After.Time.UnixMicro(), f.After.ID)
	}
	keys, err := queryAll(ctx, s.read, scanRootKey, selectRootKey+"WHERE "+c.String()+
		" ORDER BY created_at DESC, id DESC LIMIT ?", append(c.args, limit(f.Limit))...)
	if err != nil {
		return nil, dbError("list root keys", err)
	}
	return keys, nil
}

// ScanRootKeys calls fn for every root key in ID order, scanPage at a
// time. Root keys are few, so one connection reads them.
func (s *Store) ScanRootKeys(ctx context.Context, fn func(rk *apikey.RootKey) error) error {
	after := ""
	for {
		keys, err := queryAll(ctx, s.read, scanRootKey, selectRootKey+"WHERE id > ? ORDER BY id LIMIT ?", after, scanPage)
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

// RootKeyChanges calls fn for every root key written since the position
// since, a change_seq of the sequence keys share, and returns the highest
// change_seq seen (since, when there is none).
func (s *Store) RootKeyChanges(ctx context.Context, since string, fn func(rk *apikey.RootKey) error) (string, error) {
	if since == "" {
		var seq int64
		if err := s.read.QueryRowContext(ctx, "SELECT "+lastChangeSeq).Scan(&seq); err != nil {
			return "", dbError("root key changes", err)
		}
		return strconv.FormatInt(seq, 10), nil
	}
	seq, err := strconv.ParseInt(since, 10, 64)
	if err != nil || seq < 0 {
		return "", apikey.Errorf(apikey.EINVALID, "not a position of this store: %q", since)
	}
	for {
		var page []*apikey.RootKey
		var seqs []int64
		rows, err := s.read.QueryContext(ctx, "SELECT "+rootKeyColumns+", change_seq FROM root_keys WHERE change_seq > ? ORDER BY change_seq LIMIT ?", seq, scanPage)
		if err != nil {
			return "", dbError("root key changes", err)
		}
		for rows.Next() {
			var n int64
			rk, err := scanRootKey(withExtra{rows, []any{&n}})
			if err != nil {
				rows.Close()
				return "", dbError("root key changes", err)
			}
			page, seqs = append(page, rk), append(seqs, n)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return "", dbError("root key changes", err)
		}
		for i, rk := range page {
			if err := fn(rk); err != nil {
				return "", err
			}
			seq = seqs[i]
		}
		if len(page) < scanPage {
			return strconv.FormatInt(seq, 10), nil
		}
	}
}

// TouchRootKeys records the uses in one transaction, moving last_used_at
// only forward.
func (s *Store) TouchRootKeys(ctx context.Context, uses []apikey.KeyUse) error {
	return s.touch(ctx, "root_keys", uses)
}

// RootKeyForUpdate returns the root key with the given ID. The transaction
// holds SQLite's write lock from its start, so the key is locked already.
func (t *tx) RootKeyForUpdate(ctx context.Context, id string) (*apikey.RootKey, error) {
	return oneRootKey("get root key for update", t.tx.QueryRowContext(ctx, selectRootKey+"WHERE id = ?", id))
}

// InsertRootKey stores rk with Version 1 and sets rk.Version to match.
func (t *tx) InsertRootKey(ctx context.Context, rk *apikey.RootKey) error {
	perms, projects, err := rootKeyArgs(rk)
	if err != nil {
		return fmt.Errorf("insert root key: %w", err)
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO root_keys (
		id, name, key_prefix, key_hash, permissions, project_ids,
		expires_at, last_used_at, created_at, updated_at, revoked_at,
		replaced_by_key_id, grace_expires_at, replaces_key_id,
		created_by_type, created_by_key_id, created_by_name, version, change_seq
	) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, `+lastChangeSeq+` + 1)`,
		rk.ID, rk.Name, rk.KeyPrefix, rk.Hash[:], perms, projects,
		micros(rk.ExpiresAt), micros(rk.LastUsedAt), micros(rk.CreatedAt), micros(rk.UpdatedAt), micros(rk.RevokedAt),
		orNull(rk.ReplacedByKeyID), micros(rk.GraceExpiresAt), orNull(rk.ReplacesKeyID),
		rk.CreatedBy.Type, orNull(rk.CreatedBy.KeyID), orNull(rk.CreatedBy.Name))
	if err != nil {
		return dbError("insert root key", err)
	}
	rk.Version = 1
	return nil
}

// UpdateRootKey writes the mutable fields of rk if its stored version is
// still rk.Version, and sets rk.Version to the new one.
func (t *tx) UpdateRootKey(ctx context.Context, rk *apikey.RootKey) error {
	perms, projects, err := rootKeyArgs(rk)
	if err != nil {
		return fmt.Errorf("update root key: %w", err)
	}
	err = t.tx.QueryRowContext(ctx, `UPDATE root_keys SET
		name = ?, permissions = ?, project_ids = ?, expires_at = ?, revoked_at = ?,
		replaced_by_key_id = ?, grace_expires_at = ?, replaces_key_id = ?,
		updated_at = ?, version = version + 1, change_seq = `+lastChangeSeq+` + 1
		WHERE id = ? AND version = ? RETURNING version`,
		rk.Name, perms, projects, micros(rk.ExpiresAt), micros(rk.RevokedAt),
		orNull(rk.ReplacedByKeyID), micros(rk.GraceExpiresAt), orNull(rk.ReplacesKeyID),
		micros(rk.UpdatedAt), rk.ID, rk.Version).Scan(&rk.Version)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, sql.ErrNoRows):
		return dbError("update root key", err)
	}
	var exists bool
	if err := t.tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM root_keys WHERE id = ?)", rk.ID).Scan(&exists); err != nil {
		return dbError("update root key", err)
	}
	if !exists {
		return fmt.Errorf("update root key: %w", apikey.ErrNotFound)
	}
	return &apikey.Error{Code: apikey.ECONFLICT, Message: "the root key has changed since it was read"}
}
