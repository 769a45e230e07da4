package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/webhook"
)

// Scheduled rotation, SPEC §6. The work is split in three transactions so
// that no network call ever happens inside one:
//
//  1. ClaimDueRotations takes due keys, issues each one's replacement and
//     queues exactly one delivery for it, all in one transaction: the key
//     is no longer due, so no other worker or replica takes it again.
//  2. LeaseDeliveries takes deliveries whose attempt is due, leases them to
//     this worker and prepares the signed requests.
//  3. FinishAttempt records what the receiver answered: on a 2xx the old
//     key is replaced; on a failure the delivery is retried later with the
//     same webhook-id, or abandoned after the last attempt.
//
// A worker that dies between 2 and 3 leaves its lease to run out; the next
// worker (here or on another replica) resumes the delivery with the same
// webhook-id and the same replacement key.

// deliveryKeyContext binds a sealed replacement key to its delivery, so a
// payload copied onto another row cannot be opened.
func deliveryKeyContext(deliveryID string) string { return "apikeyd/delivery-key/v1/" + deliveryID }

// Rotation timing that the configuration does not change.
const (
	// MaxBackoff caps the delay between two attempts of one delivery.
	MaxBackoff = time.Hour
	// RetryAbandoned is how long after an abandoned rotation the key comes
	// due again.
	RetryAbandoned = time.Hour
)

// RotationPolicy says how scheduled rotations are delivered.
type RotationPolicy struct {
	// Grace is how long an automatically rotated key keeps working
	// (APIKEYD_AUTO_ROTATION_GRACE).
	Grace time.Duration
	// Backoff is the delay after the first failed attempt; it doubles with
	// every further failure, up to MaxBackoff (APIKEYD_WEBHOOK_BACKOFF).
	Backoff time.Duration
	// MaxAttempts is how many attempts are made before the rotation is
	// abandoned (APIKEYD_WEBHOOK_MAX_ATTEMPTS).
	MaxAttempts int
	// Lease is how long a worker holds a delivery for one attempt. It must
	// outlast an attempt (webhook.Timeout) and the writing of its outcome;
	// a worker that dies holds the delivery this long.
	Lease time.Duration
}

// delay returns how long to wait after the given number of failed
// attempts: Backoff, 2×Backoff, 4×Backoff, … capped at MaxBackoff.
func (p RotationPolicy) delay(failures int) time.Duration {
	d := max(p.Backoff, time.Millisecond)
	for i := 1; i < failures && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// ClaimDueRotations takes up to limit keys whose rotation has come, oldest
// due first, and for each in one transaction issues the replacement (same
// name, scopes, environment and rotation settings, unscheduled until it is
// delivered), seals its plaintext into a new pending delivery, and clears
// the key's next_rotation_at so that it is claimed only once. It returns
// how many keys it claimed; fewer than limit means none are left.
func (s *Service) ClaimDueRotations(ctx context.Context, limit int) (int, error) {
	now := s.now()
	claimed := 0
	err := s.update(ctx, func(tx *writeTx) error {
		claimed = 0
		keys, err := tx.DueKeysForUpdate(ctx, now, limit)
		if err != nil {
			return err
		}
		for _, old := range keys {
			if err := s.claim(ctx, tx, old, now); err != nil {
				return fmt.Errorf("claim rotation of %s: %w", old.ID, err)
			}
			claimed++
		}
		return nil
	})
	return claimed, err
}

func (s *Service) claim(ctx context.Context, tx *writeTx, old *apikey.Key, now time.Time) error {
	nk, secret, err := s.replacement(old, now)
	if err != nil {
		return err
	}
	nk.NextRotationAt = time.Time{} // scheduled once delivered
	id, err := apikey.NewID(apikey.IDKindDelivery)
	if err != nil {
		return apikey.Internal(err)
	}
	sealed, err := s.box.Seal([]byte(secret.Plaintext), deliveryKeyContext(id))
	if err != nil {
		return apikey.Internal(err)
	}
	if err := tx.InsertKey(ctx, nk); err != nil {
		return err
	}
	old.NextRotationAt = time.Time{}
	old.UpdatedAt = now
	if err := tx.UpdateKey(ctx, old); err != nil {
		return err
	}
	err = tx.InsertDelivery(ctx, &apikey.Delivery{
		ID:               id,
		KeyID:            old.ID,
		ReplacementKeyID: nk.ID,
		State:            apikey.DeliveryPending,
		PayloadSealed:    sealed,
		NextAttemptAt:    now,
		CreatedAt:        now,
		UpdatedAt:        now,
	})
	if err != nil {
		return err
	}
	details := createdDetails(nk)
	details["replaces_key_id"] = old.ID
	details["webhook_id"] = id
	return tx.audit(ctx, apikey.SystemActor, apikey.ActionCreated, nk, now, details)
}

// Sender delivers a signed message to a webhook target; webhook.Client is
// the real one.
type Sender interface {
	Send(ctx context.Context, target, secret string, m webhook.Message) error
}

// Attempt is one leased attempt of a delivery, ready to send. It holds the
// replacement's plaintext and the signing secret; neither is exported, and
// it logs as its IDs only.
type Attempt struct {
	DeliveryID       string
	KeyID            string
	ReplacementKeyID string
	// Number is the attempt's number, from 1.
	Number int
	// URL is the target: the key's rotation_webhook_url as it is now.
	URL string
	// GraceExpiresAt is when the old key stops working if this attempt
	// succeeds, as the payload announces it.
	GraceExpiresAt time.Time

	secret string
	msg    webhook.Message
	// err is set when no request can be made (a sealed value does not
	// open); sending then fails at once with it.
	err error
}

// Send makes the attempt through sender.
func (a *Attempt) Send(ctx context.Context, sender Sender) error {
	if a.err != nil {
		return a.err
	}
	return sender.Send(ctx, a.URL, a.secret, a.msg)
}

// LogValue keeps the secrets of an attempt out of logs.
func (a *Attempt) LogValue() slog.Value {
	return slog.GroupValue(slog.String("webhook_id", a.DeliveryID), slog.String("key_id", a.KeyID),
		slog.String("new_key_id", a.ReplacementKeyID), slog.Int("attempt", a.Number))
}

// String keeps the secrets of an attempt out of formatted output.
func (a *Attempt) String() string {
	return fmt.Sprintf("attempt %d of delivery %s (key %s)", a.Number, a.DeliveryID, a.KeyID)
}

// GoString keeps the secrets of an attempt out of %#v.
func (a *Attempt) GoString() string { return a.String() }

// Outcome is what became of a delivery after a step.
type Outcome string

// Delivery outcomes.
const (
	// OutcomeDelivered: the receiver answered 2xx; the key is rotated.
	OutcomeDelivered Outcome = "delivered"
	// OutcomeFailed: the attempt failed; another follows at NextAttemptAt.
	OutcomeFailed Outcome = "failed"
	// OutcomeAbandoned: no attempt is left, or the rotation no longer
	// applies; the replacement is revoked.
	OutcomeAbandoned Outcome = "abandoned"
	// OutcomeStale: the outcome came after the delivery had moved on (it
	// finished, or another worker took it over once the lease ran out),
	// and changed nothing.
	OutcomeStale Outcome = "stale"
)

// Finished reports one step of a delivery, for logs and metrics. Reason
// says why an attempt failed or a delivery was abandoned.
type Finished struct {
	DeliveryID    string
	KeyID         string
	Outcome       Outcome
	Attempts      int
	Reason        string
	NextAttemptAt time.Time
}

// LeaseDeliveries takes up to limit deliveries whose next attempt is due,
// leases each to the caller for policy.Lease and returns the attempts to
// make. In the same transaction it abandons deliveries that no longer
// apply — the key was revoked, expired, rotated by hand or had scheduled
// rotation turned off, or the replacement is no longer active — and ones
// whose attempts are used up (a worker died during the last); those come
// back as Finished.
//
// Before each attempt the replacement is brought in step with the key it
// replaces (name, scopes, rotation settings, lifetime), so that changes
// made while a delivery is pending are not lost, and the target is the
// key's current webhook URL.
func (s *Service) LeaseDeliveries(ctx context.Context, policy RotationPolicy, limit int) ([]*Attempt, []Finished, error) {
	now := s.now()
	var attempts []*Attempt
	var finished []Finished
	err := s.update(ctx, func(tx *writeTx) error {
		attempts, finished = attempts[:0], finished[:0]
		due, err := tx.DueDeliveriesForUpdate(ctx, now, limit)
		if err != nil {
			return err
		}
		for _, d := range due {
			old, nk, err := deliveryKeys(ctx, tx, d)
			if err != nil {
				return err
			}
			reason := stale(old, nk, now)
			if reason == "" && d.Attempts >= policy.MaxAttempts {
				reason = "no attempts left"
			}
			if reason != "" {
				f, err := s.abandon(ctx, tx, d, old, nk, reason, now)
				if err != nil {
					return err
				}
				finished = append(finished, f)
				continue
			}
			if err := s.inherit(ctx, tx, nk, old, now); err != nil {
				return err
			}
			d.Attempts++
			d.LeasedUntil = now.Add(policy.Lease)
			d.UpdatedAt = now
			if err := tx.UpdateDelivery(ctx, d); err != nil {
				return err
			}
			attempts = append(attempts, s.attempt(d, old, nk, now, policy.Grace))
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return attempts, finished, nil
}

func deliveryKeys(ctx context.Context, tx apikey.Tx, d *apikey.Delivery) (old, nk *apikey.Key, err error) {
	if old, err = tx.KeyForUpdate(ctx, d.KeyID); err != nil {
		return nil, nil, fmt.Errorf("key of delivery %s: %w", d.ID, err)
	}
	if nk, err = tx.KeyForUpdate(ctx, d.ReplacementKeyID); err != nil {
		return nil, nil, fmt.Errorf("replacement of delivery %s: %w", d.ID, err)
	}
	return old, nk, nil
}

// stale says why a pending rotation of old to nk no longer applies, or "".
func stale(old, nk *apikey.Key, now time.Time) string {
	switch {
	case !old.RevokedAt.IsZero():
		return "the key was revoked"
	case old.ReplacedByKeyID != "":
		return "the key was rotated by hand"
	case old.Status(now) == apikey.StatusExpired:
		return "the key expired"
	case old.RotationIntervalDays == 0 || old.RotationWebhookURL == "":
		return "scheduled rotation was turned off"
	case nk.Status(now) != apikey.StatusActive:
		return "the replacement key was " + string(nk.Status(now))
	}
	return ""
}

// inherit brings the undelivered replacement nk in step with old: name,
// scopes, rotation settings, and the same lifetime counted from nk's
// creation, as replacement sets them at the claim.
func (s *Service) inherit(ctx context.Context, tx *writeTx, nk, old *apikey.Key, now time.Time) error {
	expires := time.Time{}
	if !old.ExpiresAt.IsZero() {
		expires = nk.CreatedAt.Add(old.ExpiresAt.Sub(old.CreatedAt))
	}
	if nk.Name == old.Name && slices.Equal(nk.Scopes, old.Scopes) && nk.ExpiresAt.Equal(expires) &&
		nk.RotationIntervalDays == old.RotationIntervalDays && nk.RotationWebhookURL == old.RotationWebhookURL &&
		bytes.Equal(nk.WebhookSecretSealed, old.WebhookSecretSealed) &&
		slices.Equal(nk.RateLimits, old.RateLimits) && nk.HasCredits == old.HasCredits {
		return nil
	}
	nk.RateLimits = slices.Clone(old.RateLimits)
	nk.HasCredits = old.HasCredits
	nk.Name = old.Name
	nk.Scopes = slices.Clone(old.Scopes)
	nk.ExpiresAt = expires
	nk.RotationIntervalDays = old.RotationIntervalDays
	nk.RotationWebhookURL = old.RotationWebhookURL
	nk.WebhookSecretSealed = old.WebhookSecretSealed
	nk.UpdatedAt = now
	if err := tx.UpdateKey(ctx, nk); err != nil {
		return err
	}
	details := createdDetails(nk)
	delete(details, "key_prefix")
	details["inherited_from_key_id"] = old.ID
	return tx.audit(ctx, apikey.SystemActor, apikey.ActionUpdated, nk, now, details)
}

// rotatedPayload is the body of a rotation webhook, SPEC §6.
type rotatedPayload struct {
	Type      string      `json:"type"`
	Timestamp time.Time   `json:"timestamp"`
	Data      rotatedData `json:"data"`
}

type rotatedData struct {
	OldKeyID       string     `json:"old_key_id"`
	NewKeyID       string     `json:"new_key_id"`
	ProjectID      string     `json:"project_id"`
	EnvironmentID  *string    `json:"environment_id"`
	Name           string     `json:"name"`
	Key            string     `json:"key"`
	KeyPrefix      string     `json:"key_prefix"`
	Scopes         []string   `json:"scopes"`
	ExpiresAt      *time.Time `json:"expires_at"`
	GraceExpiresAt time.Time  `json:"grace_expires_at"`
}

// attempt prepares the signed request of a leased delivery. The payload's
// timestamp is when the rotation was claimed, the same on every attempt;
// the webhook-timestamp header is this attempt's.
func (s *Service) attempt(d *apikey.Delivery, old, nk *apikey.Key, now time.Time, grace time.Duration) *Attempt {
	a := &Attempt{
		DeliveryID:       d.ID,
		KeyID:            old.ID,
		ReplacementKeyID: nk.ID,
		Number:           d.Attempts,
		URL:              old.RotationWebhookURL,
		GraceExpiresAt:   now.Add(grace),
	}
	plain, err := s.box.Open(d.PayloadSealed, deliveryKeyContext(d.ID))
	if err != nil {
		a.err = fmt.Errorf("open the sealed replacement key: %w", err)
		return a
	}
	if apikey.HashKey(string(plain)) != nk.Hash {
		a.err = errors.New("the sealed key is not the replacement's")
		return a
	}
	if a.secret, err = s.WebhookSecret(old); err != nil {
		a.err = errors.New("cannot open the webhook secret")
		return a
	}
	p := rotatedPayload{Type: apikey.ActionRotated, Timestamp: d.CreatedAt, Data: rotatedData{
		OldKeyID:       old.ID,
		NewKeyID:       nk.ID,
		ProjectID:      nk.ProjectID,
		Name:           nk.Name,
		Key:            string(plain),
		KeyPrefix:      nk.KeyPrefix,
		Scopes:         nk.Scopes,
		GraceExpiresAt: a.GraceExpiresAt,
	}}
	if p.Data.Scopes == nil {
		p.Data.Scopes = []string{}
	}
	if nk.EnvironmentID != "" {
		p.Data.EnvironmentID = &nk.EnvironmentID
	}
	if !nk.ExpiresAt.IsZero() {
		p.Data.ExpiresAt = &nk.ExpiresAt
	}
	body, err := json.Marshal(p)
	if err != nil {
		a.err = errors.New("cannot encode the payload")
		return a
	}
	a.msg = webhook.Message{ID: d.ID, Timestamp: now, Body: body}
	return a
}

// FinishAttempt records the outcome of an attempt: sendErr nil for a 2xx.
//
// A 2xx finishes the delivery whoever holds the lease now, since the
// receiver has the key: the old key is marked replaced with policy.Grace
// from the attempt (the grace_expires_at the payload announced), the
// replacement gets its own next_rotation_at, the sealed key is erased and
// api_key.rotated is written. If meanwhile the old key was revoked or
// rotated by hand, it is left as it is; if the replacement itself was
// revoked, the rotation is abandoned instead.
//
// A failure is recorded only by the worker that still holds the attempt:
// the next attempt follows after the backoff, or after the last one the
// rotation is abandoned (see abandon).
func (s *Service) FinishAttempt(ctx context.Context, policy RotationPolicy, a *Attempt, sendErr error) (Finished, error) {
	now := s.now()
	var out Finished
	err := s.update(ctx, func(tx *writeTx) error {
		d, err := tx.DeliveryForUpdate(ctx, a.DeliveryID)
		if err != nil {
			return err
		}
		out = Finished{DeliveryID: d.ID, KeyID: d.KeyID, Outcome: OutcomeStale, Attempts: d.Attempts}
		if d.State != apikey.DeliveryPending || (sendErr != nil && d.Attempts != a.Number) {
			return nil
		}
		old, nk, err := deliveryKeys(ctx, tx, d)
		if err != nil {
			return err
		}
		switch {
		case sendErr == nil && nk.Status(now) != apikey.StatusActive:
			out, err = s.abandon(ctx, tx, d, old, nk, "the replacement key was "+string(nk.Status(now))+" during delivery", now)
		case sendErr == nil:
			out, err = s.delivered(ctx, tx, d, old, nk, a, now)
		case d.Attempts >= policy.MaxAttempts:
			out, err = s.abandon(ctx, tx, d, old, nk, reason(sendErr), now)
		default:
			d.LeasedUntil = time.Time{}
			d.NextAttemptAt = now.Add(policy.delay(d.Attempts))
			d.LastError = reason(sendErr)
			d.UpdatedAt = now
			err = tx.UpdateDelivery(ctx, d)
			out = Finished{DeliveryID: d.ID, KeyID: d.KeyID, Outcome: OutcomeFailed, Attempts: d.Attempts,
				Reason: d.LastError, NextAttemptAt: d.NextAttemptAt}
		}
		return err
	})
	if err != nil {
		return Finished{}, err
	}
	return out, nil
}

// reason turns an attempt's error into a line for the operator. Errors of
// webhook.Client carry no secret and no query string; the length is capped
// all the same.
func reason(err error) string {
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300]
	}
	return msg
}

func (s *Service) delivered(ctx context.Context, tx *writeTx, d *apikey.Delivery, old, nk *apikey.Key, a *Attempt, now time.Time) (Finished, error) {
	d.State = apikey.DeliveryDelivered
	d.PayloadSealed = nil
	d.LeasedUntil = time.Time{}
	d.LastError = ""
	d.UpdatedAt = now
	if err := tx.UpdateDelivery(ctx, d); err != nil {
		return Finished{}, err
	}
	if nk.RotationIntervalDays > 0 && nk.RotationWebhookURL != "" {
		nk.NextRotationAt = now.Add(time.Duration(nk.RotationIntervalDays) * day)
		nk.UpdatedAt = now
		if err := tx.UpdateKey(ctx, nk); err != nil {
			return Finished{}, err
		}
	}
	details := map[string]any{
		"new_key_id": nk.ID, "webhook_id": d.ID, "attempts": d.Attempts, "scheduled": true,
	}
	if old.Status(now) == apikey.StatusActive {
		old.ReplacedByKeyID = nk.ID
		old.GraceExpiresAt = a.GraceExpiresAt
		old.NextRotationAt = time.Time{}
		old.UpdatedAt = now
		if err := tx.UpdateKey(ctx, old); err != nil {
			return Finished{}, err
		}
		details["grace_expires_at"] = a.GraceExpiresAt
	} else {
		details["old_key_unchanged"] = "the key was " + string(old.Status(now)) + " during delivery"
	}
	if err := tx.audit(ctx, apikey.SystemActor, apikey.ActionRotated, old, now, details); err != nil {
		return Finished{}, err
	}
	return Finished{DeliveryID: d.ID, KeyID: old.ID, Outcome: OutcomeDelivered, Attempts: d.Attempts}, nil
}

// abandon ends a delivery that will not succeed: the sealed key is erased,
// the undelivered replacement is revoked (nobody else has ever seen it),
// the old key is left as it is except that, while it still rotates on a
// schedule, it comes due again RetryAbandoned later, and
// api_key.rotation_failed records why.
func (s *Service) abandon(ctx context.Context, tx *writeTx, d *apikey.Delivery, old, nk *apikey.Key, why string, now time.Time) (Finished, error) {
	d.State = apikey.DeliveryAbandoned
	d.PayloadSealed = nil
	d.LeasedUntil = time.Time{}
	d.LastError = why
	d.UpdatedAt = now
	if err := tx.UpdateDelivery(ctx, d); err != nil {
		return Finished{}, err
	}
	if nk.RevokedAt.IsZero() {
		nk.RevokedAt = now
		nk.NextRotationAt = time.Time{}
		nk.UpdatedAt = now
		if nk.ReplacedByKeyID != "" && nk.GraceExpiresAt.After(now) {
			nk.GraceExpiresAt = now
		}
		if err := tx.UpdateKey(ctx, nk); err != nil {
			return Finished{}, err
		}
		err := tx.audit(ctx, apikey.SystemActor, apikey.ActionRevoked, nk, now, map[string]any{
			"reason": "scheduled rotation abandoned", "webhook_id": d.ID,
		})
		if err != nil {
			return Finished{}, err
		}
	}
	details := map[string]any{"new_key_id": nk.ID, "webhook_id": d.ID, "attempts": d.Attempts, "reason": why}
	if old.Status(now) == apikey.StatusActive && old.RotationIntervalDays > 0 && old.RotationWebhookURL != "" {
		old.NextRotationAt = now.Add(RetryAbandoned)
		old.UpdatedAt = now
		if err := tx.UpdateKey(ctx, old); err != nil {
			return Finished{}, err
		}
		details["next_rotation_at"] = old.NextRotationAt
	}
	if err := tx.audit(ctx, apikey.SystemActor, apikey.ActionRotationFailed, old, now, details); err != nil {
		return Finished{}, err
	}
	return Finished{DeliveryID: d.ID, KeyID: old.ID, Outcome: OutcomeAbandoned, Attempts: d.Attempts, Reason: why}, nil
}

// NextDeliveryAt returns when the next pending delivery may be attempted,
// or the zero time when none is pending.
func (s *Service) NextDeliveryAt(ctx context.Context) (time.Time, error) {
	return s.store.NextDeliveryAt(ctx)
}
