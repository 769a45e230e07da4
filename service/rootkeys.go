package service

import (
	"context"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// The root keys of SPEC §8: credentials of the platform itself. Who may
// manage them is decided here, in three checks:
//
//   - the permission: root-keys:read to see, root-keys:write to change
//     (Principal.Allows; an API key holds neither, whatever its scopes);
//   - visibility: a root key sees the root keys whose projects it holds
//     (Principal.HoldsProjects), and any other is not found;
//   - no escalation: a root key gives, keeps or hands on only permissions
//     and projects it holds itself (HoldsPermissions, HoldsProjects).

var (
	errNoRootRead     = forbidden("the root-keys:read permission is required")
	errNoRootWrite    = forbidden("the root-keys:write permission is required")
	errRootEscalation = forbidden("a root key can only manage root keys whose permissions and projects it holds itself")
)

// rootKeyNotFound is the answer for a root key that does not exist or that
// the caller may not see.
var rootKeyNotFound = &apikey.Error{Code: apikey.ENOTFOUND, Message: "root key not found"}

// RootKeyInput is what a caller gives to create a root key; the domain
// declares it, with its checks.
type RootKeyInput = apikey.RootKeyInput

// RootKeyPatch is a partial update of a root key.
type RootKeyPatch = apikey.RootKeyPatch

// CreatedRootKey is a new root key and its plaintext, shown this once.
type CreatedRootKey struct {
	RootKey   *apikey.RootKey
	Plaintext string
}

// seesRoot reports whether p may see rk at all.
func seesRoot(p apikey.Principal, rk *apikey.RootKey) bool { return p.HoldsProjects(rk.ProjectIDs) }

// visibleRootKey loads a root key for a caller, hiding those outside its
// projects.
func (s *Service) visibleRootKey(ctx context.Context, p apikey.Principal, id string, load func(context.Context, string) (*apikey.RootKey, error)) (*apikey.RootKey, error) {
	if !apikey.ValidID(apikey.IDKindRootKey, id) {
		return nil, rootKeyNotFound
	}
	rk, err := load(ctx, id)
	if apikey.ErrorCode(err) == apikey.ENOTFOUND {
		return nil, rootKeyNotFound
	}
	if err != nil {
		return nil, err
	}
	if !seesRoot(p, rk) {
		return nil, rootKeyNotFound
	}
	return rk, nil
}

// CreateRootKey issues a root key. The caller needs root-keys:write and
// must hold every permission and project it gives.
func (s *Service) CreateRootKey(ctx context.Context, p apikey.Principal, in RootKeyInput) (*CreatedRootKey, error) {
	if !p.Allows(apikey.ScopeRootWrite) {
		return nil, errNoRootWrite
	}
	now := s.now()
	rk, bad := in.NewRootKey(now)
	if err := apikey.InvalidFields(bad); err != nil {
		return nil, err
	}
	if !p.HoldsPermissions(rk.Permissions) || !p.HoldsProjects(rk.ProjectIDs) {
		return nil, errRootEscalation
	}
	secret, err := apikey.GenerateRootKey()
	if err != nil {
		return nil, apikey.Internal(err)
	}
	if rk.ID, err = apikey.NewID(apikey.IDKindRootKey); err != nil {
		return nil, apikey.Internal(err)
	}
	rk.KeyPrefix, rk.Hash = secret.Prefix, secret.Hash
	rk.CreatedBy = p.Actor()
	err = s.update(ctx, func(tx *writeTx) error {
		if err := tx.InsertRootKey(ctx, rk); err != nil {
			return err
		}
		return tx.auditRoot(ctx, p.Actor(), apikey.ActionRootKeyCreated, rk, now, map[string]any{
			"key_prefix": rk.KeyPrefix, "project_ids": projectIDsValue(rk.ProjectIDs),
		})
	})
	if err != nil {
		return nil, err
	}
	return &CreatedRootKey{RootKey: rk, Plaintext: secret.Plaintext}, nil
}

// projectIDsValue is how a root key's projects are recorded: null for
// every project.
func projectIDsValue(ids []string) any {
	if ids == nil {
		return nil
	}
	return ids
}

// RootKey returns one root key the caller may see.
func (s *Service) RootKey(ctx context.Context, p apikey.Principal, id string) (*apikey.RootKey, error) {
	if !p.Allows(apikey.ScopeRootRead) {
		return nil, errNoRootRead
	}
	rk, err := s.visibleRootKey(ctx, p, id, s.store.RootKey)
	if err != nil {
		return nil, err
	}
	s.usage.OverlayRoot(rk)
	return rk, nil
}

// RootKeyListInput selects root keys to list.
type RootKeyListInput struct {
	Status apikey.Status
	Limit  int
	After  *apikey.Cursor
}

// RootKeys returns one page of the root keys the caller may see, newest
// first, and the cursor of the next page (nil on the last). Root keys
// outside the caller's projects are skipped, not counted: a page is full
// unless it is the last.
func (s *Service) RootKeys(ctx context.Context, p apikey.Principal, in RootKeyListInput) ([]*apikey.RootKey, *apikey.Cursor, error) {
	if !p.Allows(apikey.ScopeRootRead) {
		return nil, nil, errNoRootRead
	}
	limit := pageLimit(in.Limit)
	now := s.now()
	var out []*apikey.RootKey
	after := in.After
	for len(out) <= limit {
		batch, err := s.store.RootKeys(ctx, apikey.RootKeyFilter{Status: in.Status, Now: now, After: after, Limit: limit + 1})
		if err != nil {
			return nil, nil, err
		}
		for _, rk := range batch {
			if seesRoot(p, rk) {
				out = append(out, rk)
			}
		}
		if len(batch) <= limit {
			break // the store has no more
		}
		last := batch[len(batch)-1]
		after = &apikey.Cursor{Time: last.CreatedAt, ID: last.ID}
	}
	if len(out) > limit+1 {
		out = out[:limit+1]
	}
	out, next := page(out, limit, func(rk *apikey.RootKey) apikey.Cursor { return apikey.Cursor{Time: rk.CreatedAt, ID: rk.ID} })
	for _, rk := range out {
		s.usage.OverlayRoot(rk)
	}
	return out, next, nil
}

// UpdateRootKey changes a root key's name, permissions, projects or
// expiry. The caller must hold the key's permissions and projects, before
// and after; a revoked or replaced root key cannot change (409).
func (s *Service) UpdateRootKey(ctx context.Context, p apikey.Principal, id string, in RootKeyPatch) (*apikey.RootKey, error) {
	if !p.Allows(apikey.ScopeRootWrite) {
		return nil, errNoRootWrite
	}
	now := s.now()
	if err := apikey.InvalidFields(in.Check(now)); err != nil {
		return nil, err
	}
	var out *apikey.RootKey
	err := s.update(ctx, func(tx *writeTx) error {
		rk, err := s.visibleRootKey(ctx, p, id, tx.RootKeyForUpdate)
		if err != nil {
			return err
		}
		before := rk.Clone()
		in.Apply(rk)
		if !p.HoldsPermissions(before.Permissions) || !p.HoldsPermissions(rk.Permissions) || !p.HoldsProjects(rk.ProjectIDs) {
			return errRootEscalation
		}
		if err := mutableRoot(before); err != nil {
			return err
		}
		out = rk
		if was, _ := apikey.DiffRoot(before, rk); len(was) == 0 {
			return nil // a change that changes nothing writes nothing
		}
		rk.UpdatedAt = now
		if err := tx.UpdateRootKey(ctx, rk); err != nil {
			return err
		}
		return tx.auditRoot(ctx, p.Actor(), apikey.ActionRootKeyUpdated, rk, now, nil)
	})
	if err != nil {
		return nil, err
	}
	s.usage.OverlayRoot(out)
	return out, nil
}

// mutableRoot answers 409 for a root key whose life is over or handed on.
func mutableRoot(rk *apikey.RootKey) error {
	switch {
	case !rk.RevokedAt.IsZero():
		return apikey.Errorf(apikey.ECONFLICT, "the root key is revoked")
	case rk.ReplacedByKeyID != "":
		return apikey.Errorf(apikey.ECONFLICT, "the root key has been replaced by %s", rk.ReplacedByKeyID)
	}
	return nil
}

// RevokeRootKey ends a root key at once, including a grace period in
// progress, on every replica (the index learns of it after commit, the
// others through the store's change feed). Revoking a revoked root key
// changes nothing and is no error.
func (s *Service) RevokeRootKey(ctx context.Context, p apikey.Principal, id string) error {
	if !p.Allows(apikey.ScopeRootWrite) {
		return errNoRootWrite
	}
	now := s.now()
	return s.update(ctx, func(tx *writeTx) error {
		rk, err := s.visibleRootKey(ctx, p, id, tx.RootKeyForUpdate)
		if err != nil || !rk.RevokedAt.IsZero() {
			return err
		}
		rk.RevokedAt = now
		rk.UpdatedAt = now
		details := map[string]any{}
		if rk.ReplacedByKeyID != "" && rk.GraceExpiresAt.After(now) {
			rk.GraceExpiresAt = now
			details["grace_ended"] = true
		}
		if err := tx.UpdateRootKey(ctx, rk); err != nil {
			return err
		}
		return tx.auditRoot(ctx, p.Actor(), apikey.ActionRootKeyRevoked, rk, now, details)
	})
}

// RotatedRootKey is the outcome of rotating a root key.
type RotatedRootKey struct {
	Old, New  *apikey.RootKey
	Plaintext string
}

// RotateRootKey replaces a root key. The old one keeps working for
// graceMinutes (0: it stops at once). The replacement keeps name,
// permissions and projects; an expiring key's replacement gets the same
// lifetime, counted from now. The caller must hold the key's permissions.
func (s *Service) RotateRootKey(ctx context.Context, p apikey.Principal, id string, graceMinutes int) (*RotatedRootKey, error) {
	if !p.Allows(apikey.ScopeRootWrite) {
		return nil, errNoRootWrite
	}
	if graceMinutes < 0 || graceMinutes > apikey.MaxGraceMinutes {
		return nil, apikey.Invalid("the request is invalid", apikey.FieldError{Field: "grace_period_minutes", Message: "must be between 0 and 10080"})
	}
	now := s.now()
	var out *RotatedRootKey
	err := s.update(ctx, func(tx *writeTx) error {
		old, err := s.visibleRootKey(ctx, p, id, tx.RootKeyForUpdate)
		if err != nil {
			return err
		}
		if !p.HoldsPermissions(old.Permissions) {
			return errRootEscalation
		}
		if err := mutableRoot(old); err != nil {
			return err
		}
		if old.Status(now) == apikey.StatusExpired {
			return apikey.Errorf(apikey.ECONFLICT, "the root key has expired")
		}
		secret, err := apikey.GenerateRootKey()
		if err != nil {
			return apikey.Internal(err)
		}
		nk := &apikey.RootKey{
			Name: old.Name, KeyPrefix: secret.Prefix, Hash: secret.Hash,
			Permissions: append([]string{}, old.Permissions...), ProjectIDs: old.Clone().ProjectIDs,
			CreatedAt: now, UpdatedAt: now, ReplacesKeyID: old.ID, CreatedBy: p.Actor(),
		}
		if nk.ID, err = apikey.NewID(apikey.IDKindRootKey); err != nil {
			return apikey.Internal(err)
		}
		if !old.ExpiresAt.IsZero() {
			nk.ExpiresAt = now.Add(old.ExpiresAt.Sub(old.CreatedAt))
		}
		if err := tx.InsertRootKey(ctx, nk); err != nil {
			return err
		}
		graceEnd := now.Add(time.Duration(graceMinutes) * time.Minute)
		old.ReplacedByKeyID = nk.ID
		old.GraceExpiresAt = graceEnd
		old.UpdatedAt = now
		if err := tx.UpdateRootKey(ctx, old); err != nil {
			return err
		}
		out = &RotatedRootKey{Old: old, New: nk, Plaintext: secret.Plaintext}
		return tx.auditRoot(ctx, p.Actor(), apikey.ActionRootKeyRotated, old, now, map[string]any{
			"grace_period_minutes": graceMinutes, "new_key_id": nk.ID, "grace_expires_at": graceEnd,
		})
	})
	return out, err
}
