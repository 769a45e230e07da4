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
	Status        string `query:"status" enum:"active,rotating,rotated,expired,revoked" doc:"Only keys in this state."`
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
		filters: query("project_id", project, "environment_id", in.EnvironmentID, "status", in.Status)}
	after, err := a.cursors.decode(l, in.Cursor)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	keys, next, err := a.svc.List(ctx, p, service.ListInput{
		ProjectID: project, EnvironmentID: in.EnvironmentID, Status: apikey.Status(in.Status),
		Limit: in.Limit, After: after,
	})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	now := a.now()
	out := &listKeysOutput{Body: make([]KeyObject, len(keys))}
	for i, k := range keys {
		out.Body[i] = keyObject(k, now)
	}
	out.Link = a.cursors.nextLink(l, in.Limit, next)
	return out, nil
}

type createKeyInput struct {
	Body struct {
		ProjectID            string       `json:"project_id" minLength:"1" maxLength:"128" pattern:"^[A-Za-z0-9_.:-]+$" doc:"Project the key belongs to."`
		Name                 string       `json:"name" minLength:"1" maxLength:"255" doc:"Human-readable name."`
		Scopes               []string     `json:"scopes,omitempty" nullable:"true" maxItems:"64" doc:"What the key may do, in your own vocabulary; a trailing :* or a lone * is a wildcard. Default: none."`
		ExpiresInDays        *wholeNumber `json:"expires_in_days,omitempty" nullable:"true" minimum:"1" maximum:"36500" doc:"Lifetime in days. Not with expires_at."`
		ExpiresAt            *time.Time   `json:"expires_at,omitempty" nullable:"true" doc:"Expiry instant, in the future. Not with expires_in_days."`
		EnvironmentID        *string      `json:"environment_id,omitempty" nullable:"true" minLength:"1" maxLength:"128" pattern:"^[A-Za-z0-9_.:-]+$" doc:"Bind the key to one environment."`
		RotationIntervalDays *wholeNumber `json:"rotation_interval_days,omitempty" nullable:"true" minimum:"1" maximum:"36500" doc:"Rotate automatically every this many days; needs rotation_webhook_url."`
		RotationWebhookURL   *string      `json:"rotation_webhook_url,omitempty" nullable:"true" maxLength:"2048" doc:"https URL on a public host that receives rotated keys, signed."`
	}
}

type createKeyOutput struct {
	Location string `header:"Location"`
	Body     CreatedKeyObject
}

func (a *API) createKey(ctx context.Context, in *createKeyInput) (*createKeyOutput, error) {
	b := in.Body
	noteProject(ctx, b.ProjectID)
	created, err := a.svc.Create(ctx, principal(ctx), service.CreateInput{
		ProjectID: b.ProjectID, Name: b.Name, Scopes: b.Scopes, ExpiresInDays: intPtr(b.ExpiresInDays),
		ExpiresAt: b.ExpiresAt, EnvironmentID: b.EnvironmentID,
		RotationIntervalDays: intPtr(b.RotationIntervalDays), RotationWebhookURL: b.RotationWebhookURL,
	})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &createKeyOutput{
		Location: "/v1/api-keys/" + created.Key.ID,
		Body: CreatedKeyObject{
			KeyObject:             keyObject(created.Key, a.now()),
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
	return &keyOutput{Body: keyObject(k, a.now())}, nil
}

type patchKeyInput struct {
	KeyID string `path:"keyID" doc:"Key ID. Any other string, whatever its length, is 404."`
	Body  struct {
		Name                 Optional[string]      `json:"name,omitempty" minLength:"1" maxLength:"255"`
		Scopes               Optional[[]string]    `json:"scopes,omitempty" maxItems:"64"`
		ExpiresAt            Optional[time.Time]   `json:"expires_at,omitempty" doc:"New expiry; null removes it."`
		RotationIntervalDays Optional[wholeNumber] `json:"rotation_interval_days,omitempty" minimum:"1" maximum:"36500" doc:"null disables scheduled rotation."`
		RotationWebhookURL   Optional[string]      `json:"rotation_webhook_url,omitempty" maxLength:"2048" doc:"null removes it (only without rotation_interval_days)."`
		NextRotationAt       *time.Time            `json:"next_rotation_at,omitempty" doc:"Move the next scheduled rotation, e.g. to now."`
	}
}

type patchKeyOutput struct {
	Body PatchedKeyObject
}

func (a *API) patchKey(ctx context.Context, in *patchKeyInput) (*patchKeyOutput, error) {
	b := in.Body
	var nulls []apikey.FieldError
	if b.Name.Null {
		nulls = append(nulls, apikey.FieldError{Field: "name", Message: "must not be null"})
	}
	if b.Scopes.Null {
		nulls = append(nulls, apikey.FieldError{Field: "scopes", Message: "must not be null"})
	}
	if nulls != nil {
		return nil, a.fail(ctx, apikey.Invalid("the request is invalid", nulls...))
	}
	patched, err := a.svc.Patch(ctx, principal(ctx), in.KeyID, service.PatchInput{
		Name: b.Name.ptr(), Scopes: b.Scopes.ptr(), ExpiresAt: b.ExpiresAt.nullable(),
		RotationIntervalDays: nullableInt(b.RotationIntervalDays), RotationWebhookURL: b.RotationWebhookURL.nullable(),
		NextRotationAt: b.NextRotationAt,
	})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	noteProject(ctx, patched.Key.ProjectID)
	return &patchKeyOutput{Body: PatchedKeyObject{
		KeyObject:             keyObject(patched.Key, a.now()),
		RotationWebhookSecret: patched.WebhookSecret,
	}}, nil
}

func (a *API) revokeKey(ctx context.Context, in *keyIDPath) (*struct{}, error) {
	if err := a.svc.Revoke(ctx, principal(ctx), in.KeyID); err != nil {
		return nil, a.fail(ctx, err)
	}
	return nil, nil
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
		out.Body[i] = keyObject(k, now)
	}
	out.Link = a.cursors.nextLink(l, in.Limit, next)
	return out, nil
}
