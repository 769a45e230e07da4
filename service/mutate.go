package service

import (
	"context"
	"slices"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// Patched is a changed key, with its new webhook secret when the change gave
// a key its first webhook URL.
type Patched struct {
	Key           *apikey.Key
	WebhookSecret string
}

// Patch changes a key. The caller must hold every scope of the key, and of
// its new scopes. A revoked or replaced key cannot change (409).
func (s *Service) Patch(ctx context.Context, p apikey.Principal, id string, in PatchInput) (*Patched, error) {
	if !p.Allows(apikey.ScopeWrite) {
		return nil, errNoWrite
	}
	now := s.now()
	bad := in.Check(now)
	if in.RotationWebhookURL.Valid() {
		bad = s.checkWebhookURL(ctx, bad, in.RotationWebhookURL.Value)
	}
	if err := apikey.InvalidFields(bad); err != nil {
		return nil, err
	}

	var out *Patched
	err := s.update(ctx, func(tx *writeTx) error {
		k, err := s.visibleKey(ctx, p, id, tx.KeyForUpdate)
		if err != nil {
			return err
		}
		if !p.Covers(k.Scopes) || (in.Scopes.Valid() && !p.Covers(in.Scopes.Value)) {
			return errEscalate
		}
		if err := mutable(k, now); err != nil {
			return err
		}
		out = &Patched{Key: k}
		before := k.Clone()
		if err := apikey.InvalidFields(in.Apply(k, now)); err != nil {
			return err
		}
		if k.RotationWebhookURL != "" && k.WebhookSecretSealed == nil {
			if out.WebhookSecret, k.WebhookSecretSealed, err = s.newWebhookSecret(); err != nil {
				return err
			}
		}
		if in.Credits.Set {
			if err := s.putCredits(ctx, tx, k, before, in.Credits, now); err != nil {
				return err
			}
		}
		if was, _ := apikey.Diff(before, k); len(was) == 0 && !in.Credits.Set {
			return nil // a patch that changes nothing writes nothing
		}
		k.UpdatedAt = now
		if err := tx.UpdateKey(ctx, k); err != nil {
			return err
		}
		return tx.audit(ctx, p.Actor(), apikey.ActionUpdated, k, now, patchDetails(in, k))
	})
	if err != nil {
		return nil, err
	}
	s.usage.Overlay(out.Key)
	return out, nil
}

// mutable answers 409 for a key whose life is over or handed on.
func mutable(k *apikey.Key, now time.Time) error {
	switch {
	case !k.RevokedAt.IsZero():
		return apikey.Errorf(apikey.ECONFLICT, "the key is revoked")
	case k.ReplacedByKeyID != "":
		return apikey.Errorf(apikey.ECONFLICT, "the key has been replaced by %s", k.ReplacedByKeyID)
	}
	return nil
}

// patchDetails are the details an update event has always carried: the
// fields the patch gave, with their new values (null when cleared), and the
// next scheduled rotation of a key that rotates on a schedule. The values
// before and after come on top (writeTx.audit).
func patchDetails(in PatchInput, k *apikey.Key) map[string]any {
	details := map[string]any{}
	if in.Name.Set {
		details["name"] = k.Name
	}
	if in.Scopes.Set {
		details["scopes"] = k.Scopes
	}
	if in.ExpiresAt.Set {
		details["expires_at"] = orNil(k.ExpiresAt)
	}
	if in.RotationWebhookURL.Set {
		details["rotation_webhook_url"] = orNil(k.RotationWebhookURL)
	}
	if in.RotationIntervalDays.Set {
		details["rotation_interval_days"] = orNil(k.RotationIntervalDays)
	}
	if k.RotationIntervalDays > 0 {
		details["next_rotation_at"] = k.NextRotationAt
	}
	if in.RateLimits.Set {
		details["ratelimits"] = orNilSlice(k.RateLimits)
	}
	return details
}

func orNilSlice[T any](v []T) any {
	if v == nil {
		return nil
	}
	return v
}

// putCredits redefines k's balance as a PATCH asks (null: unlimited),
// noting the totals before and after for the audit event.
func (s *Service) putCredits(ctx context.Context, tx *writeTx, k, before *apikey.Key, c apikey.Optional[apikey.Credits], now time.Time) error {
	var was any
	if before.HasCredits {
		b, err := s.store.Balance(ctx, k.Subject(), now)
		if err != nil && apikey.ErrorCode(err) != apikey.ENOTFOUND {
			return err
		}
		if b != nil {
			was = b.Remaining
		}
	}
	var put *apikey.Credits
	var is any
	if c.Valid() {
		put, is = &c.Value, c.Value.Remaining
	}
	if err := tx.PutBalance(ctx, k.Subject(), put, now); err != nil {
		return err
	}
	tx.changed(k, "credits", was, is)
	tx.refresh = append(tx.refresh, k.Subject())
	return nil
}

func orNil[T comparable](v T) any {
	var zero T
	if v == zero {
		return nil
	}
	return v
}

// Revoke ends a key at once, including a grace period in progress, for the
// reason given (ParseRevocationReason: "" is unspecified; anything unknown
// is 400 and changes nothing). Revoking a revoked key changes nothing, its
// first reason included, and is no error.
func (s *Service) Revoke(ctx context.Context, p apikey.Principal, id, reason string) error {
	if !p.Allows(apikey.ScopeWrite) {
		return errNoWrite
	}
	why, rerr := apikey.ParseRevocationReason(reason)
	if rerr != nil {
		var bad problems
		bad.add("reason", rerr.Error())
		return bad.err()
	}
	now := s.now()
	return s.update(ctx, func(tx *writeTx) error {
		k, err := s.visibleKey(ctx, p, id, tx.KeyForUpdate)
		if err != nil || !k.RevokedAt.IsZero() {
			return err
		}
		k.RevokedAt = now
		k.RevocationReason = why
		k.UpdatedAt = now
		k.NextRotationAt = time.Time{}
		details := map[string]any{"reason": string(why)}
		if k.ReplacedByKeyID != "" && k.GraceExpiresAt.After(now) {
			k.GraceExpiresAt = now
			details["grace_ended"] = true
		}
		if err := tx.UpdateKey(ctx, k); err != nil {
			return err
		}
		return tx.audit(ctx, p.Actor(), apikey.ActionRevoked, k, now, details)
	})
}

// Rotated is the outcome of a rotation: the old key (now replaced), its
// replacement and the replacement's plaintext.
type Rotated struct {
	Old, New  *apikey.Key
	Plaintext string
}

// Rotate replaces a key. The old key keeps working for graceMinutes (0: it
// stops at once). Of several rotations of one key racing, exactly one wins;
// the others find the key replaced and get 409.
func (s *Service) Rotate(ctx context.Context, p apikey.Principal, id string, graceMinutes int) (*Rotated, error) {
	if !p.Allows(apikey.ScopeWrite) {
		return nil, errNoWrite
	}
	if graceMinutes < 0 || graceMinutes > apikey.MaxGraceMinutes {
		return nil, apikey.Invalid("the request is invalid", apikey.FieldError{Field: "grace_period_minutes", Message: "must be between 0 and 10080"})
	}
	now := s.now()
	var out *Rotated
	err := s.update(ctx, func(tx *writeTx) error {
		old, err := s.visibleKey(ctx, p, id, tx.KeyForUpdate)
		if err != nil {
			return err
		}
		if !p.Covers(old.Scopes) {
			return errEscalate
		}
		if err := mutable(old, now); err != nil {
			return err
		}
		if !old.DisabledAt.IsZero() {
			return apikey.Errorf(apikey.ECONFLICT, "the key is disabled; enable it first")
		}
		if old.Status(now) == apikey.StatusExpired {
			return apikey.Errorf(apikey.ECONFLICT, "the key has expired")
		}
		out, err = s.replace(ctx, tx, p.Actor(), old, now, now.Add(time.Duration(graceMinutes)*time.Minute),
			map[string]any{"grace_period_minutes": graceMinutes})
		if err != nil {
			return err
		}
		return nil
	})
	return out, err
}

// replace issues old's replacement inside tx and marks old replaced with the
// given end of grace. The replacement keeps name, scopes, environment and
// rotation settings; an expiring key's replacement gets the same lifetime,
// counted from now.
func (s *Service) replace(ctx context.Context, tx *writeTx, actor apikey.Actor, old *apikey.Key, now, graceEnd time.Time, details map[string]any) (*Rotated, error) {
	nk, secret, err := s.replacement(old, now)
	if err != nil {
		return nil, err
	}
	if err := tx.InsertKey(ctx, nk); err != nil {
		return nil, err
	}
	old.ReplacedByKeyID = nk.ID
	old.GraceExpiresAt = graceEnd
	old.NextRotationAt = time.Time{}
	old.UpdatedAt = now
	if err := tx.UpdateKey(ctx, old); err != nil {
		return nil, err
	}
	details["new_key_id"] = nk.ID
	details["grace_expires_at"] = graceEnd
	if err := tx.audit(ctx, actor, apikey.ActionRotated, old, now, details); err != nil {
		return nil, err
	}
	return &Rotated{Old: old, New: nk, Plaintext: secret.Plaintext}, nil
}

// replacement builds the key that replaces old, with a fresh secret.
func (s *Service) replacement(old *apikey.Key, now time.Time) (*apikey.Key, apikey.Secret, error) {
	secret, err := apikey.GenerateKey(s.prefix)
	if err != nil {
		return nil, apikey.Secret{}, apikey.Internal(err)
	}
	id, err := apikey.NewID(apikey.IDKindKey)
	if err != nil {
		return nil, apikey.Secret{}, apikey.Internal(err)
	}
	nk := &apikey.Key{
		ID:                   id,
		ProjectID:            old.ProjectID,
		EnvironmentID:        old.EnvironmentID,
		Name:                 old.Name,
		KeyPrefix:            secret.Prefix,
		Hash:                 secret.Hash,
		Scopes:               append([]string{}, old.Scopes...),
		CreatedAt:            now,
		UpdatedAt:            now,
		ReplacesKeyID:        old.ID,
		LineageID:            old.LineageID,
		RateLimits:           slices.Clone(old.RateLimits),
		HasCredits:           old.HasCredits,
		RotationIntervalDays: old.RotationIntervalDays,
		RotationWebhookURL:   old.RotationWebhookURL,
		WebhookSecretSealed:  old.WebhookSecretSealed,
		OwnerID:              old.OwnerID,
		Meta:                 old.Meta,
		IPAllowlist:          old.IPAllowlist,
		// An imported key's replacement is apikeyd's own (SPEC §9).
		Source: apikey.SourceIssued,
	}
	if !old.ExpiresAt.IsZero() {
		nk.ExpiresAt = now.Add(old.ExpiresAt.Sub(old.CreatedAt))
	}
	if nk.RotationIntervalDays > 0 {
		nk.NextRotationAt = now.Add(time.Duration(nk.RotationIntervalDays) * day)
	}
	return nk, secret, nil
}

// Disable pauses a key: it verifies as DISABLED, is refused as a bearer and
// is not rotated, until Enable. reason (at most 255 characters, may be
// empty) is kept with it. Disabling a disabled key changes nothing, its
// reason included; a revoked key cannot be disabled (409).
func (s *Service) Disable(ctx context.Context, p apikey.Principal, id, reason string) (*apikey.Key, error) {
	var bad problems
	if len(reason) > apikey.MaxDisabledReasonLen {
		bad.add("reason", "must be at most 255 characters")
	}
	if err := bad.err(); err != nil {
		return nil, err
	}
	return s.setDisabled(ctx, p, id, func(k *apikey.Key, now time.Time) (string, bool) {
		if !k.DisabledAt.IsZero() {
			return "", false
		}
		k.DisabledAt, k.DisabledReason = now, reason
		return apikey.ActionDisabled, true
	})
}

// Enable undoes Disable. Enabling a key that is not disabled changes
// nothing; a revoked key cannot be enabled (409).
func (s *Service) Enable(ctx context.Context, p apikey.Principal, id string) (*apikey.Key, error) {
	return s.setDisabled(ctx, p, id, func(k *apikey.Key, now time.Time) (string, bool) {
		if k.DisabledAt.IsZero() {
			return "", false
		}
		k.DisabledAt, k.DisabledReason = time.Time{}, ""
		return apikey.ActionEnabled, true
	})
}

// setDisabled is Disable and Enable: change reports the audit action of
// what it did to the key, or false for nothing to do.
func (s *Service) setDisabled(ctx context.Context, p apikey.Principal, id string, change func(k *apikey.Key, now time.Time) (string, bool)) (*apikey.Key, error) {
	if !p.Allows(apikey.ScopeWrite) {
		return nil, errNoWrite
	}
	now := s.now()
	var out *apikey.Key
	err := s.update(ctx, func(tx *writeTx) error {
		k, err := s.visibleKey(ctx, p, id, tx.KeyForUpdate)
		if err != nil {
			return err
		}
		if !p.Covers(k.Scopes) {
			return errEscalate
		}
		if !k.RevokedAt.IsZero() {
			return apikey.Errorf(apikey.ECONFLICT, "the key is revoked")
		}
		out = k
		action, changed := change(k, now)
		if !changed {
			return nil
		}
		k.UpdatedAt = now
		if err := tx.UpdateKey(ctx, k); err != nil {
			return err
		}
		details := map[string]any{}
		if k.DisabledReason != "" {
			details["reason"] = k.DisabledReason
		}
		return tx.audit(ctx, p.Actor(), action, k, now, details)
	})
	if err != nil {
		return nil, err
	}
	s.usage.Overlay(out)
	return out, nil
}
