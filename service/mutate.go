package service

import (
	"context"
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
	var bad problems
	var scopes []string
	if in.Name != nil {
		bad.name("name", *in.Name)
	}
	if in.Scopes != nil {
		var serr *apikey.Error
		scopes, serr = apikey.ValidateScopes("scopes", *in.Scopes)
		bad.fromError(serr)
	}
	if in.ExpiresAt.Set && in.ExpiresAt.Valid {
		in.ExpiresAt.Value = in.ExpiresAt.Value.UTC().Truncate(time.Microsecond)
		bad.future("expires_at", in.ExpiresAt.Value, now)
	}
	if in.RotationIntervalDays.Set && in.RotationIntervalDays.Valid {
		bad.days("rotation_interval_days", in.RotationIntervalDays.Value, apikey.MaxRotationDays)
	}
	if in.RotationWebhookURL.Set && in.RotationWebhookURL.Valid {
		s.checkWebhookURL(ctx, &bad, in.RotationWebhookURL.Value)
	}
	if err := bad.err(); err != nil {
		return nil, err
	}

	var out *Patched
	err := s.update(ctx, func(tx *writeTx) error {
		k, err := s.visibleKey(ctx, p, id, tx.KeyForUpdate)
		if err != nil {
			return err
		}
		if !p.Covers(k.Scopes) || (in.Scopes != nil && !p.Covers(scopes)) {
			return errEscalate
		}
		if err := mutable(k, now); err != nil {
			return err
		}
		out = &Patched{Key: k}
		if in.empty() {
			return nil
		}
		details, err := s.applyPatch(k, in, scopes, now, out)
		if err != nil {
			return err
		}
		k.UpdatedAt = now
		if err := tx.UpdateKey(ctx, k); err != nil {
			return err
		}
		ev, err := s.event(p.Actor(), k, apikey.ActionUpdated, now, details)
		if err != nil {
			return err
		}
		return tx.InsertAuditEvent(ctx, ev)
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

// applyPatch changes k as in asks, checking the rules that depend on the
// key's current state, and returns what changed for the audit log.
func (s *Service) applyPatch(k *apikey.Key, in PatchInput, scopes []string, now time.Time, out *Patched) (map[string]any, error) {
	details := map[string]any{}
	if in.Name != nil {
		k.Name = *in.Name
		details["name"] = k.Name
	}
	if in.Scopes != nil {
		k.Scopes = scopes
		details["scopes"] = scopes
	}
	if in.ExpiresAt.Set {
		k.ExpiresAt = time.Time{}
		details["expires_at"] = nil
		if in.ExpiresAt.Valid {
			k.ExpiresAt = in.ExpiresAt.Value
			details["expires_at"] = k.ExpiresAt
		}
	}
	if in.RotationWebhookURL.Set {
		k.RotationWebhookURL = ""
		details["rotation_webhook_url"] = nil
		if in.RotationWebhookURL.Valid {
			k.RotationWebhookURL = in.RotationWebhookURL.Value
			details["rotation_webhook_url"] = k.RotationWebhookURL
		}
	}
	if k.RotationWebhookURL != "" && k.WebhookSecretSealed == nil {
		var err error
		if out.WebhookSecret, k.WebhookSecretSealed, err = s.newWebhookSecret(); err != nil {
			return nil, err
		}
	}
	if in.RotationIntervalDays.Set {
		k.RotationIntervalDays = 0
		k.NextRotationAt = time.Time{}
		details["rotation_interval_days"] = nil
		if in.RotationIntervalDays.Valid {
			k.RotationIntervalDays = in.RotationIntervalDays.Value
			details["rotation_interval_days"] = k.RotationIntervalDays
			// The schedule counts from the key's creation; a key already
			// older than its new interval comes due at once.
			k.NextRotationAt = k.CreatedAt.Add(time.Duration(k.RotationIntervalDays) * day)
			if k.NextRotationAt.Before(now) {
				k.NextRotationAt = now
			}
		}
	}
	var bad problems
	if in.NextRotationAt != nil {
		if k.RotationIntervalDays == 0 {
			bad.add("next_rotation_at", "the key has no rotation_interval_days")
		}
		k.NextRotationAt = in.NextRotationAt.UTC().Truncate(time.Microsecond)
	}
	if k.RotationIntervalDays > 0 {
		details["next_rotation_at"] = k.NextRotationAt
		if k.RotationWebhookURL == "" {
			bad.add("rotation_webhook_url", "is required while rotation_interval_days is set")
		}
	}
	return details, bad.err()
}

// Revoke ends a key at once, including a grace period in progress. Revoking
// a revoked key changes nothing and is no error.
func (s *Service) Revoke(ctx context.Context, p apikey.Principal, id string) error {
	if !p.Allows(apikey.ScopeWrite) {
		return errNoWrite
	}
	now := s.now()
	return s.update(ctx, func(tx *writeTx) error {
		k, err := s.visibleKey(ctx, p, id, tx.KeyForUpdate)
		if err != nil || !k.RevokedAt.IsZero() {
			return err
		}
		k.RevokedAt = now
		k.UpdatedAt = now
		k.NextRotationAt = time.Time{}
		details := map[string]any{}
		if k.ReplacedByKeyID != "" && k.GraceExpiresAt.After(now) {
			k.GraceExpiresAt = now
			details["grace_ended"] = true
		}
		if err := tx.UpdateKey(ctx, k); err != nil {
			return err
		}
		ev, err := s.event(p.Actor(), k, apikey.ActionRevoked, now, details)
		if err != nil {
			return err
		}
		return tx.InsertAuditEvent(ctx, ev)
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
func (s *Service) replace(ctx context.Context, tx apikey.Tx, actor apikey.Actor, old *apikey.Key, now, graceEnd time.Time, details map[string]any) (*Rotated, error) {
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
	ev, err := s.event(actor, old, apikey.ActionRotated, now, details)
	if err != nil {
		return nil, err
	}
	if err := tx.InsertAuditEvent(ctx, ev); err != nil {
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
		RotationIntervalDays: old.RotationIntervalDays,
		RotationWebhookURL:   old.RotationWebhookURL,
		WebhookSecretSealed:  old.WebhookSecretSealed,
	}
	if !old.ExpiresAt.IsZero() {
		nk.ExpiresAt = now.Add(old.ExpiresAt.Sub(old.CreatedAt))
	}
	if nk.RotationIntervalDays > 0 {
		nk.NextRotationAt = now.Add(time.Duration(nk.RotationIntervalDays) * day)
	}
	return nk, secret, nil
}
