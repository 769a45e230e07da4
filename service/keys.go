package service

import (
	"context"
	"fmt"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/webhook"
)

// webhookSecretContext binds sealed webhook secrets to their purpose.
const webhookSecretContext = "apikeyd/webhook-secret/v1"

const day = apikey.Day

// Created is a new key and the secrets shown to its creator this once.
type Created struct {
	Key           *apikey.Key
	Plaintext     string
	WebhookSecret string // empty unless the key has a webhook URL
}

// Create issues a key. The caller must hold api-keys:write in the key's
// project (and environment), and every scope it grants.
func (s *Service) Create(ctx context.Context, p apikey.Principal, in CreateInput) (*Created, error) {
	if !p.Allows(apikey.ScopeWrite) {
		return nil, errNoWrite
	}
	now := s.now()
	k, bad := in.NewKey(now, p.EnvironmentID)
	if in.RotationWebhookURL != nil {
		bad = s.checkWebhookURL(ctx, bad, *in.RotationWebhookURL)
	}
	if err := apikey.InvalidFields(bad); err != nil {
		return nil, err
	}
	if !p.InProject(k.ProjectID, k.EnvironmentID) {
		return nil, errProject
	}
	if !p.Covers(k.Scopes) {
		return nil, errEscalate
	}

	secret, err := apikey.GenerateKey(s.prefix)
	if err != nil {
		return nil, apikey.Internal(err)
	}
	if k.ID, err = apikey.NewID(apikey.IDKindKey); err != nil {
		return nil, apikey.Internal(err)
	}
	k.LineageID = k.ID
	k.KeyPrefix, k.Hash = secret.Prefix, secret.Hash
	out := &Created{Key: k, Plaintext: secret.Plaintext}
	if k.RotationWebhookURL != "" {
		if out.WebhookSecret, k.WebhookSecretSealed, err = s.newWebhookSecret(); err != nil {
			return nil, err
		}
	}
	err = s.update(ctx, func(tx *writeTx) error {
		if err := tx.InsertKey(ctx, k); err != nil {
			return err
		}
		if in.Credits != nil {
			if err := tx.PutBalance(ctx, k.Subject(), in.Credits, now); err != nil {
				return err
			}
			tx.changed(k, "credits", nil, in.Credits.Remaining)
		}
		return tx.audit(ctx, p.Actor(), apikey.ActionCreated, k, now, createdDetails(k))
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkWebhookURL adds to bad why the policy refuses raw as a webhook URL.
func (s *Service) checkWebhookURL(ctx context.Context, bad []apikey.FieldError, raw string) []apikey.FieldError {
	if err := s.webhooks.CheckURL(ctx, raw); err != nil {
		bad = append(bad, apikey.FieldError{Field: "rotation_webhook_url", Message: err.Error()})
	}
	return bad
}

func (s *Service) newWebhookSecret() (plain string, sealed []byte, err error) {
	plain, err = webhook.NewSecret()
	if err != nil {
		return "", nil, apikey.Internal(err)
	}
	sealed, err = s.box.Seal([]byte(plain), webhookSecretContext)
	if err != nil {
		return "", nil, apikey.Internal(err)
	}
	return plain, sealed, nil
}

// WebhookSecret opens a key's sealed webhook secret, for signing deliveries.
func (s *Service) WebhookSecret(k *apikey.Key) (string, error) {
	plain, err := s.box.Open(k.WebhookSecretSealed, webhookSecretContext)
	if err != nil {
		return "", fmt.Errorf("open webhook secret of %s: %w", k.ID, err)
	}
	return string(plain), nil
}

func createdDetails(k *apikey.Key) map[string]any {
	d := map[string]any{"name": k.Name, "scopes": k.Scopes, "key_prefix": k.KeyPrefix}
	if k.EnvironmentID != "" {
		d["environment_id"] = k.EnvironmentID
	}
	if !k.ExpiresAt.IsZero() {
		d["expires_at"] = k.ExpiresAt
	}
	if k.RotationIntervalDays > 0 {
		d["rotation_interval_days"] = k.RotationIntervalDays
	}
	if k.RotationWebhookURL != "" {
		d["rotation_webhook_url"] = k.RotationWebhookURL
	}
	if k.RateLimits != nil {
		d["ratelimits"] = k.RateLimits
	}
	return d
}

// Get returns one key the caller may see.
func (s *Service) Get(ctx context.Context, p apikey.Principal, id string) (*apikey.Key, error) {
	if !p.Allows(apikey.ScopeRead) {
		return nil, errNoRead
	}
	k, err := s.visibleKey(ctx, p, id, s.store.Key)
	if err != nil {
		return nil, err
	}
	s.usage.Overlay(k)
	return k, nil
}

// ListInput selects keys to list.
type ListInput struct {
	ProjectID     string
	EnvironmentID string
	OwnerID       string
	Status        apikey.Status
	Limit         int
	After         *apikey.Cursor
}

// List returns one page of a project's keys, newest first, and the cursor of
// the next page (nil on the last).
func (s *Service) List(ctx context.Context, p apikey.Principal, in ListInput) ([]*apikey.Key, *apikey.Cursor, error) {
	env, err := readIn(p, in.ProjectID, in.EnvironmentID)
	if err != nil {
		return nil, nil, err
	}
	limit := pageLimit(in.Limit)
	keys, err := s.store.Keys(ctx, apikey.KeyFilter{
		ProjectID: in.ProjectID, EnvironmentID: env, OwnerID: in.OwnerID, Status: in.Status,
		Now: s.now(), After: in.After, Limit: limit + 1,
	})
	if err != nil {
		return nil, nil, err
	}
	keys, next := page(keys, limit, func(k *apikey.Key) apikey.Cursor { return apikey.Cursor{Time: k.CreatedAt, ID: k.ID} })
	s.overlay(keys)
	return keys, next, nil
}

// readIn checks that p may read in the project (and environment) and
// returns the environment to filter by: the one asked for or, for a key
// bound to one, its own.
func readIn(p apikey.Principal, project, env string) (string, error) {
	if !p.Allows(apikey.ScopeRead) {
		return "", errNoRead
	}
	if !p.InProject(project, env) {
		return "", errProject
	}
	if env == "" {
		env = p.EnvironmentID
	}
	return env, nil
}

// overlay shows the newest buffered use of each key.
func (s *Service) overlay(keys []*apikey.Key) {
	for _, k := range keys {
		s.usage.Overlay(k)
	}
}

func pageLimit(n int) int {
	if n <= 0 {
		return apikey.DefaultListLimit
	}
	return min(n, apikey.MaxListLimit)
}

// page trims a result fetched with limit+1 rows and returns the cursor of the
// next page when there is one.
func page[T any](items []T, limit int, cursor func(T) apikey.Cursor) ([]T, *apikey.Cursor) {
	if len(items) <= limit {
		return items, nil
	}
	items = items[:limit]
	c := cursor(items[limit-1])
	return items, &c
}

// ExpiringInput selects keys that expire soon.
type ExpiringInput struct {
	ProjectID     string
	EnvironmentID string
	WithinDays    int
	Limit         int
	After         *apikey.Cursor
}

// Expiring lists usable keys that expire within the window, soonest first.
func (s *Service) Expiring(ctx context.Context, p apikey.Principal, in ExpiringInput) ([]*apikey.Key, *apikey.Cursor, error) {
	env, err := readIn(p, in.ProjectID, in.EnvironmentID)
	if err != nil {
		return nil, nil, err
	}
	if in.WithinDays < 1 || in.WithinDays > apikey.MaxExpiringDays {
		var bad problems
		bad.add("within_days", "must be between 1 and 36500")
		return nil, nil, bad.err()
	}
	now := s.now()
	limit := pageLimit(in.Limit)
	keys, err := s.store.ExpiringKeys(ctx, apikey.ExpiringFilter{
		ProjectID: in.ProjectID, EnvironmentID: env, Now: now,
		Before: now.Add(time.Duration(in.WithinDays) * day), After: in.After, Limit: limit + 1,
	})
	if err != nil {
		return nil, nil, err
	}
	keys, next := page(keys, limit, func(k *apikey.Key) apikey.Cursor { return apikey.Cursor{Time: k.ExpiresAt, ID: k.ID} })
	s.overlay(keys)
	return keys, next, nil
}

// AuditInput selects audit events.
type AuditInput struct {
	// NoProject selects the events of no project — the changes to root
	// keys — instead of ProjectID's; it needs root-keys:read.
	NoProject     bool
	ProjectID     string
	EnvironmentID string
	KeyID         string
	Action        string
	Limit         int
	After         *apikey.Cursor
}

// AuditEvents lists a project's audit events, or those of no project,
// newest first.
func (s *Service) AuditEvents(ctx context.Context, p apikey.Principal, in AuditInput) ([]*apikey.AuditEvent, *apikey.Cursor, error) {
	var env string
	var err error
	switch {
	case !in.NoProject:
		env, err = readIn(p, in.ProjectID, in.EnvironmentID)
	case !p.Allows(apikey.ScopeRootRead):
		err = errNoRootRead
	}
	if err != nil {
		return nil, nil, err
	}
	limit := pageLimit(in.Limit)
	evs, err := s.store.AuditEvents(ctx, apikey.AuditFilter{
		NoProject: in.NoProject, ProjectID: in.ProjectID, EnvironmentID: env, KeyID: in.KeyID, Action: in.Action,
		After: in.After, Limit: limit + 1,
	})
	if err != nil {
		return nil, nil, err
	}
	evs, next := page(evs, limit, func(e *apikey.AuditEvent) apikey.Cursor { return apikey.Cursor{Time: e.CreatedAt, ID: e.ID} })
	return evs, next, nil
}
