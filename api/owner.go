package api

import (
	"context"
	"encoding/json"
	"time"

	"github.com/apikeyd/apikeyd/service"
)

// OwnerObject is an owner's shared allowance (SPEC §10): every key of the
// project with that owner_id also draws on its limits and credits.
type OwnerObject struct {
	ProjectID  string            `json:"project_id"`
	OwnerID    string            `json:"owner_id"`
	RateLimits []RateLimitObject `json:"ratelimits"`
	Credits    *CreditsObject    `json:"credits"`
	Meta       json.RawMessage   `json:"meta" doc:"A JSON object, or null."`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
}

func ownerObject(v *service.OwnerView) OwnerObject {
	o := v.Owner
	out := OwnerObject{ProjectID: o.ProjectID, OwnerID: o.OwnerID, RateLimits: rateLimitObjects(o.RateLimits),
		Credits: creditsObject(v.Credits), CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
	if o.Meta != nil {
		out.Meta = o.Meta
	} else {
		out.Meta = json.RawMessage("null")
	}
	return out
}

type ownerPath struct {
	ProjectID string `path:"project_id" maxLength:"128"`
	OwnerID   string `path:"owner_id" maxLength:"255"`
}

type putOwnerInput struct {
	ProjectID string `path:"project_id" maxLength:"128"`
	OwnerID   string `path:"owner_id" maxLength:"255"`
	Body      struct {
		RateLimits []RateLimitObject            `json:"ratelimits,omitempty" nullable:"true" doc:"1–10 limits; null or absent for none."`
		Credits    Optional[CreditsInputObject] `json:"credits,omitempty" doc:"The shared balance; null or absent for unlimited."`
		Meta       Optional[map[string]any]     `json:"meta,omitempty" doc:"A JSON object of at most 4096 bytes; null or absent for none."`
	}
}

type ownerOutput struct {
	Body OwnerObject
}

// putOwner is PUT /v1/projects/{project_id}/owners/{owner_id}.
func (a *API) putOwner(ctx context.Context, in *putOwnerInput) (*ownerOutput, error) {
	noteProject(ctx, in.ProjectID)
	var meta []byte
	if in.Body.Meta.Valid() {
		var err error
		if meta, err = json.Marshal(in.Body.Meta.Value); err != nil {
			return nil, a.fail(ctx, err)
		}
	}
	v, err := a.svc.PutOwner(ctx, principal(ctx), in.ProjectID, in.OwnerID, service.OwnerInput{
		RateLimits: rateLimits(in.Body.RateLimits), Credits: createCredits(in.Body.Credits), Meta: meta,
	})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &ownerOutput{Body: ownerObject(v)}, nil
}

// getOwner is GET /v1/projects/{project_id}/owners/{owner_id}.
func (a *API) getOwner(ctx context.Context, in *ownerPath) (*ownerOutput, error) {
	noteProject(ctx, in.ProjectID)
	v, err := a.svc.GetOwner(ctx, principal(ctx), in.ProjectID, in.OwnerID)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &ownerOutput{Body: ownerObject(v)}, nil
}

// deleteOwner is DELETE /v1/projects/{project_id}/owners/{owner_id}.
func (a *API) deleteOwner(ctx context.Context, in *ownerPath) (*struct{}, error) {
	noteProject(ctx, in.ProjectID)
	if err := a.svc.DeleteOwner(ctx, principal(ctx), in.ProjectID, in.OwnerID); err != nil {
		return nil, a.fail(ctx, err)
	}
	return nil, nil
}
