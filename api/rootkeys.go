package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/service"
)

// The /v1/root-keys routes (SPEC §8): the platform's own credentials.
// authorize lets only the admin token and root keys holding the route's
// permission through; the service decides which root keys a caller sees
// and what it may give.

// RootKeyObject is a root key as the API shows it, null when unset.
type RootKeyObject struct {
	ID              string      `json:"id" example:"root_01jd3m5x8q7w9e2r4t6y8u0i1o"`
	Name            string      `json:"name"`
	KeyPrefix       string      `json:"key_prefix" doc:"The first 12 characters of the root key."`
	Permissions     []string    `json:"permissions"`
	ProjectIDs      []string    `json:"project_ids" nullable:"true" doc:"The projects the key acts in; null for every project, present and future."`
	ExpiresAt       *time.Time  `json:"expires_at"`
	LastUsedAt      *time.Time  `json:"last_used_at"`
	CreatedAt       time.Time   `json:"created_at"`
	RevokedAt       *time.Time  `json:"revoked_at"`
	ReplacedByKeyID *string     `json:"replaced_by_key_id"`
	GraceExpiresAt  *time.Time  `json:"grace_expires_at"`
	CreatedBy       ActorObject `json:"created_by"`
	Status          string      `json:"status" enum:"active,rotating,rotated,expired,revoked"`
}

// CreatedRootKeyObject is the answer to a create: the object and the
// plaintext root key, shown this once.
type CreatedRootKeyObject struct {
	RootKeyObject
	Key string `json:"key" doc:"The root key. Shown once; store it now."`
}

// RotatedRootKeyObject is the answer to a rotation, shaped as the rotate
// object of keys (SPEC §5) with permissions and project_ids for scopes and
// project_id.
type RotatedRootKeyObject struct {
	OldKeyID       string     `json:"old_key_id"`
	NewKeyID       string     `json:"new_key_id"`
	Name           string     `json:"name"`
	Key            string     `json:"key" doc:"The new root key. Shown once."`
	KeyPrefix      string     `json:"key_prefix"`
	Permissions    []string   `json:"permissions"`
	ProjectIDs     []string   `json:"project_ids" nullable:"true"`
	ExpiresAt      *time.Time `json:"expires_at"`
	CreatedAt      time.Time  `json:"created_at"`
	GraceExpiresAt *time.Time `json:"grace_expires_at" doc:"When the old root key stops working."`
}

func rootKeyObject(rk *apikey.RootKey, now time.Time) RootKeyObject {
	return RootKeyObject{
		ID:              rk.ID,
		Name:            rk.Name,
		KeyPrefix:       rk.KeyPrefix,
		Permissions:     nonNil(rk.Permissions),
		ProjectIDs:      rk.ProjectIDs,
		ExpiresAt:       optTime(rk.ExpiresAt),
		LastUsedAt:      optTime(rk.LastUsedAt),
		CreatedAt:       rk.CreatedAt,
		RevokedAt:       optTime(rk.RevokedAt),
		ReplacedByKeyID: optString(rk.ReplacedByKeyID),
		GraceExpiresAt:  optTime(rk.GraceExpiresAt),
		CreatedBy:       actorObject(rk.CreatedBy),
		Status:          string(rk.Status(now)),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// rootKeyRoutes registers the root-key routes.
func (a *API) rootKeyRoutes() {
	huma.Register(a.huma, a.op("listRootKeys", http.MethodGet, "/v1/root-keys", apikey.ScopeRootRead,
		"List root keys", "The root keys the caller may see, newest first, one page at a time; a Link header points to the next page."), a.listRootKeys)
	huma.Register(a.huma, a.op("createRootKey", http.MethodPost, "/v1/root-keys", apikey.ScopeRootWrite,
		"Create a root key", "Issues a root key with permissions it holds itself, in projects it holds. The plaintext key is in this response only."), a.createRootKey)
	huma.Register(a.huma, a.op("getRootKey", http.MethodGet, "/v1/root-keys/{rootKeyID}", apikey.ScopeRootRead,
		"Get a root key", ""), a.getRootKey)
	huma.Register(a.huma, a.op("updateRootKey", http.MethodPatch, "/v1/root-keys/{rootKeyID}", apikey.ScopeRootWrite,
		"Update a root key", "Changes name, permissions, projects or expiry. 409 for a revoked or replaced root key."), a.updateRootKey)
	huma.Register(a.huma, a.op("revokeRootKey", http.MethodDelete, "/v1/root-keys/{rootKeyID}", apikey.ScopeRootWrite,
		"Revoke a root key", "Revokes at once on every replica, ending any grace period. Idempotent."), a.revokeRootKey)
	huma.Register(a.huma, a.op("rotateRootKey", http.MethodPost, "/v1/root-keys/{rootKeyID}/rotate", apikey.ScopeRootWrite,
		"Rotate a root key with optional grace period", "Issues a replacement; the old root key keeps working for grace_period_minutes (default 60, 0 = stop now)."), a.rotateRootKey)
}

type rootKeyIDPath struct {
	RootKeyID string `path:"rootKeyID" doc:"Root key ID. Any other string is 404."`
}

type listRootKeysInput struct {
	Status string `query:"status" enum:"active,rotating,rotated,expired,revoked" doc:"Only root keys in this state."`
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"Page size."`
	Cursor string `query:"cursor" maxLength:"256" doc:"Where to continue; taken from the Link header of the previous page."`
}

type listRootKeysOutput struct {
	Link string `header:"Link" doc:"<…>; rel=\"next\" when there are more root keys."`
	Body []RootKeyObject
}

func (a *API) listRootKeys(ctx context.Context, in *listRootKeysInput) (*listRootKeysOutput, error) {
	l := listing{route: "root-keys", path: "/v1/root-keys", filters: query("status", in.Status)}
	after, err := a.cursors.decode(l, in.Cursor)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	keys, next, err := a.svc.RootKeys(ctx, principal(ctx), service.RootKeyListInput{
		Status: apikey.Status(in.Status), Limit: in.Limit, After: after,
	})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	now := a.now()
	out := &listRootKeysOutput{Body: make([]RootKeyObject, len(keys))}
	for i, rk := range keys {
		out.Body[i] = rootKeyObject(rk, now)
	}
	out.Link = a.cursors.nextLink(l, in.Limit, next)
	return out, nil
}

// createRootKeyInputBody is the body of POST /v1/root-keys.
type createRootKeyInputBody struct {
	Name          string       `json:"name" minLength:"1" maxLength:"255" doc:"Who or what uses the key: it names the actor in the audit log."`
	Permissions   []string     `json:"permissions" maxItems:"16" enum:"api-keys:read,api-keys:write,api-keys:verify,api-keys:*,root-keys:read,root-keys:write,root-keys:*,*" doc:"1-16 permissions; write includes read."`
	ProjectIDs    []string     `json:"project_ids,omitempty" nullable:"true" maxItems:"100" doc:"Projects the key acts in; omitted or null for every project, present and future."`
	ExpiresInDays *wholeNumber `json:"expires_in_days,omitempty" nullable:"true" minimum:"1" maximum:"36500" doc:"Lifetime in days. Not with expires_at."`
	ExpiresAt     *time.Time   `json:"expires_at,omitempty" nullable:"true" doc:"Expiry instant, in the future. Not with expires_in_days."`
}

type createRootKeyInput struct {
	Body createRootKeyInputBody
}

type createRootKeyOutput struct {
	Location string `header:"Location"`
	Body     CreatedRootKeyObject
}

func (a *API) createRootKey(ctx context.Context, in *createRootKeyInput) (*createRootKeyOutput, error) {
	b := in.Body
	created, err := a.svc.CreateRootKey(ctx, principal(ctx), service.RootKeyInput{
		Name: b.Name, Permissions: b.Permissions, ProjectIDs: b.ProjectIDs,
		ExpiresInDays: intPtr(b.ExpiresInDays), ExpiresAt: b.ExpiresAt,
	})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &createRootKeyOutput{
		Location: "/v1/root-keys/" + created.RootKey.ID,
		Body:     CreatedRootKeyObject{RootKeyObject: rootKeyObject(created.RootKey, a.now()), Key: created.Plaintext},
	}, nil
}

type rootKeyOutput struct {
	Body RootKeyObject
}

func (a *API) getRootKey(ctx context.Context, in *rootKeyIDPath) (*rootKeyOutput, error) {
	rk, err := a.svc.RootKey(ctx, principal(ctx), in.RootKeyID)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &rootKeyOutput{Body: rootKeyObject(rk, a.now())}, nil
}

// updateRootKeyInputBody is the body of PATCH /v1/root-keys/{rootKeyID}.
type updateRootKeyInputBody struct {
	Name        Optional[string]    `json:"name,omitempty" minLength:"1" maxLength:"255"`
	Permissions Optional[[]string]  `json:"permissions,omitempty" maxItems:"16"`
	ProjectIDs  Optional[[]string]  `json:"project_ids,omitempty" maxItems:"100" doc:"null gives the key every project."`
	ExpiresAt   Optional[time.Time] `json:"expires_at,omitempty" doc:"New expiry; null removes it."`
}

type updateRootKeyInput struct {
	RootKeyID string `path:"rootKeyID" doc:"Root key ID. Any other string is 404."`
	Body      updateRootKeyInputBody
}

func (a *API) updateRootKey(ctx context.Context, in *updateRootKeyInput) (*rootKeyOutput, error) {
	b := in.Body
	rk, err := a.svc.UpdateRootKey(ctx, principal(ctx), in.RootKeyID, service.RootKeyPatch{
		Name: b.Name.Optional, Permissions: b.Permissions.Optional, ProjectIDs: b.ProjectIDs.Optional, ExpiresAt: b.ExpiresAt.Optional,
	})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &rootKeyOutput{Body: rootKeyObject(rk, a.now())}, nil
}

func (a *API) revokeRootKey(ctx context.Context, in *rootKeyIDPath) (*struct{}, error) {
	if err := a.svc.RevokeRootKey(ctx, principal(ctx), in.RootKeyID); err != nil {
		return nil, a.fail(ctx, err)
	}
	return nil, nil
}

type rotateRootKeyInput struct {
	RootKeyID string `path:"rootKeyID" doc:"Root key ID. Any other string is 404."`
	Body      *struct {
		GracePeriodMinutes *wholeNumber `json:"grace_period_minutes,omitempty" minimum:"0" maximum:"10080" doc:"How long the old root key keeps working; default 60, 0 = stop now."`
	} `required:"false"`
}

type rotateRootKeyOutput struct {
	Body RotatedRootKeyObject
}

func (a *API) rotateRootKey(ctx context.Context, in *rotateRootKeyInput) (*rotateRootKeyOutput, error) {
	grace := apikey.DefaultGraceMinutes
	if in.Body != nil && in.Body.GracePeriodMinutes != nil {
		grace = int(*in.Body.GracePeriodMinutes)
	}
	r, err := a.svc.RotateRootKey(ctx, principal(ctx), in.RootKeyID, grace)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &rotateRootKeyOutput{Body: RotatedRootKeyObject{
		OldKeyID:       r.Old.ID,
		NewKeyID:       r.New.ID,
		Name:           r.New.Name,
		Key:            r.Plaintext,
		KeyPrefix:      r.New.KeyPrefix,
		Permissions:    nonNil(r.New.Permissions),
		ProjectIDs:     r.New.ProjectIDs,
		ExpiresAt:      optTime(r.New.ExpiresAt),
		CreatedAt:      r.New.CreatedAt,
		GraceExpiresAt: optTime(r.Old.GraceExpiresAt),
	}}, nil
}
