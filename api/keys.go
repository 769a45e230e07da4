package api

import (
	"context"
	"strconv"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/service"
)

type keyIDPath struct {
	KeyID string `path:"keyID" doc:"Key ID. Any other string, whatever its length, is 404."`
}

type listKeysInput struct {
	ProjectID     string `query:"project_id" maxLength:"128" pattern:"^[A-Za-z0-9_.:-]+$" doc:"Project whose keys to list. Required with the admin token; an API key lists its own project when it is omitted."`
	EnvironmentID string `query:"environment_id" maxLength:"128" pattern:"^[A-Za-z0-9_.:-]+$" doc:"Only keys of this environment."`
	OwnerID       string `query:"owner_id" maxLength:"255" pattern:"^[A-Za-z0-9_.:@-]+$" doc:"Only keys of this owner."`
	Status        string `query:"status" enum:"active,rotating,rotated,expired,revoked,disabled" doc:"Only keys in this state."`
	Limit         int    `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"Page size."`
	Cursor        string `query:"cursor" maxLength:"256" doc:"Where to continue; taken from the Link header of the previous page."`
}

type listKeysOutput struct {
	Link string `header:"Link" doc:"<…>; rel=\"next\" when there are more keys."`
	Body []KeyObject
}

func (a *API) listKeys(ctx context.Context, in *listKeysInput) (*listKeysOutput, error) {
	p := principal(ctx)
	project, err := listProject(p, in.ProjectID)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	noteProject(ctx, project)
	l := listing{route: "keys", path: "/v1/api-keys",
		filters: query("project_id", project, "environment_id", in.EnvironmentID, "owner_id", in.OwnerID, "status", in.Status)}
	after, err := a.cursors.decode(l, in.Cursor)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	keys, next, err := a.svc.List(ctx, p, service.ListInput{
		ProjectID: project, EnvironmentID: in.EnvironmentID, OwnerID: in.OwnerID, Status: apikey.Status(in.Status),
		Limit: in.Limit, After: after,
	})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	now := a.now()
	out := &listKeysOutput{Body: make([]KeyObject, len(keys))}
	for i, k := range keys {
		if out.Body[i], err = a.keyObject(ctx, k, now); err != nil {
			return nil, a.fail(ctx, err)
		}
	}
	out.Link = a.cursors.nextLink(l, in.Limit, next)
	return out, nil
}

type createKeyInput struct {
	Body createKeyInputBody
}

type createKeyOutput struct {
	Location string `header:"Location"`
	Body     CreatedKeyObject
}

func (a *API) createKey(ctx context.Context, in *createKeyInput) (*createKeyOutput, error) {
	b := in.Body
	noteProject(ctx, b.ProjectID)
	created, err := a.svc.Create(ctx, principal(ctx), b.input())
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	o, err := a.keyObject(ctx, created.Key, a.now())
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &createKeyOutput{
		Location: "/v1/api-keys/" + created.Key.ID,
		Body: CreatedKeyObject{
			KeyObject:             o,
			Key:                   created.Plaintext,
			RotationWebhookSecret: created.WebhookSecret,
		},
	}, nil
}

type keyOutput struct {
	Body KeyObject
}

func (a *API) getKey(ctx context.Context, in *keyIDPath) (*keyOutput, error) {
	k, err := a.svc.Get(ctx, principal(ctx), in.KeyID)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	noteProject(ctx, k.ProjectID)
	o, err := a.keyObject(ctx, k, a.now())
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &keyOutput{Body: o}, nil
}

type patchKeyInput struct {
	KeyID string `path:"keyID" doc:"Key ID. Any other string, whatever its length, is 404."`
	Body  patchKeyInputBody
}

type patchKeyOutput struct {
	Body PatchedKeyObject
}

func (a *API) patchKey(ctx context.Context, in *patchKeyInput) (*patchKeyOutput, error) {
	patched, err := a.svc.Patch(ctx, principal(ctx), in.KeyID, in.Body.patch())
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	noteProject(ctx, patched.Key.ProjectID)
	o, err := a.keyObject(ctx, patched.Key, a.now())
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &patchKeyOutput{Body: PatchedKeyObject{
		KeyObject:             o,
		RotationWebhookSecret: patched.WebhookSecret,
	}}, nil
}

type revokeKeyInput struct {
	KeyID  string `path:"keyID" doc:"Key ID. Any other string, whatever its length, is 404."`
	Reason string `query:"reason" enum:"unspecified,key_compromise,superseded,privilege_withdrawn,cessation_of_operation" doc:"Why the key is revoked; default unspecified."`
}

func (a *API) revokeKey(ctx context.Context, in *revokeKeyInput) (*struct{}, error) {
	if err := a.svc.Revoke(ctx, principal(ctx), in.KeyID, in.Reason); err != nil {
		return nil, a.fail(ctx, err)
	}
	return nil, nil
}

type disableKeyInput struct {
	KeyID string `path:"keyID" doc:"Key ID. Any other string, whatever its length, is 404."`
	Body  *struct {
		Reason string `json:"reason,omitempty" maxLength:"255" doc:"Why the key is disabled; shown as disabled_reason."`
	} `required:"false"`
}

func (a *API) disableKey(ctx context.Context, in *disableKeyInput) (*keyOutput, error) {
	reason := ""
	if in.Body != nil {
		reason = in.Body.Reason
	}
	k, err := a.svc.Disable(ctx, principal(ctx), in.KeyID, reason)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	noteProject(ctx, k.ProjectID)
	return &keyOutput{Body: keyObject(k, a.now())}, nil
}

func (a *API) enableKey(ctx context.Context, in *keyIDPath) (*keyOutput, error) {
	k, err := a.svc.Enable(ctx, principal(ctx), in.KeyID)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	noteProject(ctx, k.ProjectID)
	return &keyOutput{Body: keyObject(k, a.now())}, nil
}

type rotateKeyInput struct {
	KeyID string `path:"keyID" doc:"Key ID. Any other string, whatever its length, is 404."`
	Body  *struct {
		GracePeriodMinutes *wholeNumber `json:"grace_period_minutes,omitempty" minimum:"0" maximum:"10080" doc:"How long the old key keeps working; default 60, 0 = stop now."`
	} `required:"false"`
}

type rotateKeyOutput struct {
	Body RotateObject
}

func (a *API) rotateKey(ctx context.Context, in *rotateKeyInput) (*rotateKeyOutput, error) {
	grace := apikey.DefaultGraceMinutes
	if in.Body != nil && in.Body.GracePeriodMinutes != nil {
		grace = int(*in.Body.GracePeriodMinutes)
	}
	r, err := a.svc.Rotate(ctx, principal(ctx), in.KeyID, grace)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	a.metrics.Rotation("manual", "rotated")
	noteProject(ctx, r.New.ProjectID)
	return &rotateKeyOutput{Body: rotateObject(r)}, nil
}

type expiringInput struct {
	ProjectID     string `query:"project_id" maxLength:"128" pattern:"^[A-Za-z0-9_.:-]+$" doc:"Required with the admin token; an API key lists its own project when it is omitted."`
	EnvironmentID string `query:"environment_id" maxLength:"128" pattern:"^[A-Za-z0-9_.:-]+$"`
	WithinDays    int    `query:"within_days" minimum:"1" maximum:"36500" default:"30" doc:"Window in days from now."`
	Limit         int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
	Cursor        string `query:"cursor" maxLength:"256"`
}

func (a *API) listExpiring(ctx context.Context, in *expiringInput) (*listKeysOutput, error) {
	return a.expiring(ctx, in, "/v1/api-keys/expiring")
}

// listExpiringSoon is /v1/api-keys/expiring-soon, the path Strait's CLI
// asks for: the same listing, its Link pointing back at this path.
func (a *API) listExpiringSoon(ctx context.Context, in *expiringInput) (*listKeysOutput, error) {
	return a.expiring(ctx, in, "/v1/api-keys/expiring-soon")
}

func (a *API) expiring(ctx context.Context, in *expiringInput, path string) (*listKeysOutput, error) {
	p := principal(ctx)
	project, err := listProject(p, in.ProjectID)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	noteProject(ctx, project)
	l := listing{route: "expiring", path: path,
		filters: query("project_id", project, "environment_id", in.EnvironmentID, "within_days", strconv.Itoa(in.WithinDays))}
	after, err := a.cursors.decode(l, in.Cursor)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	keys, next, err := a.svc.Expiring(ctx, p, service.ExpiringInput{
		ProjectID: project, EnvironmentID: in.EnvironmentID, WithinDays: in.WithinDays,
		Limit: in.Limit, After: after,
	})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	now := a.now()
	out := &listKeysOutput{Body: make([]KeyObject, len(keys))}
	for i, k := range keys {
		if out.Body[i], err = a.keyObject(ctx, k, now); err != nil {
			return nil, a.fail(ctx, err)
		}
	}
	out.Link = a.cursors.nextLink(l, in.Limit, next)
	return out, nil
}

// keyObject is the KeyObject of k with its balance, which the usage store
// keeps beside the key.
func (a *API) keyObject(ctx context.Context, k *apikey.Key, now time.Time) (KeyObject, error) {
	o := keyObject(k, now)
	c, err := a.svc.Credits(ctx, k)
	o.Credits = creditsObject(c)
	return o, err
}

type creditsInput struct {
	KeyID string `path:"keyID" doc:"Key ID. Any other string, whatever its length, is 404."`
	Body  struct {
		Op     string `json:"op" doc:"set, increment or decrement."`
		Amount int64  `json:"amount" doc:"0–10^12. A decrement stops at 0."`
	}
}

type creditsOutput struct {
	Body struct {
		Remaining int64 `json:"remaining" doc:"The balance after the change."`
	}
}

// adjustCredits is POST /v1/api-keys/{keyID}/credits.
func (a *API) adjustCredits(ctx context.Context, in *creditsInput) (*creditsOutput, error) {
	n, err := a.svc.AdjustCredits(ctx, principal(ctx), in.KeyID, apikey.CreditOp(in.Body.Op), in.Body.Amount)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &creditsOutput{}
	out.Body.Remaining = n
	return out, nil
}
