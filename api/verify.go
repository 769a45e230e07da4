package api

import (
	"context"
	"encoding/json"
	"time"

	"github.com/apikeyd/apikeyd/service"
)

type verifyInput struct {
	Body struct {
		Key           string   `json:"key" doc:"The presented API key."`
		Scopes        []string `json:"scopes,omitempty" nullable:"true" maxItems:"64" doc:"Scopes the key must all hold."`
		EnvironmentID string   `json:"environment_id,omitempty" maxLength:"128" doc:"Environment the key must be bound to."`
	}
}

// VerifyObject is the verdict on a presented key. The key's details are
// present for a known key (every code but MALFORMED and NOT_FOUND).
type VerifyObject struct {
	Valid          bool       `json:"valid"`
	Code           string     `json:"code" enum:"VALID,MALFORMED,NOT_FOUND,EXPIRED,REVOKED,ROTATED,INSUFFICIENT_SCOPE,ENVIRONMENT_MISMATCH"`
	KeyID          string     `json:"key_id,omitempty"`
	ProjectID      string     `json:"project_id,omitempty"`
	EnvironmentID  *string    `json:"environment_id,omitempty" nullable:"true"`
	Name           string     `json:"name,omitempty"`
	Scopes         []string   `json:"scopes,omitempty"`
	ExpiresAt      *time.Time `json:"expires_at,omitempty" nullable:"true"`
	GraceExpiresAt *time.Time `json:"grace_expires_at,omitempty" nullable:"true"`

	known bool
}

// MarshalJSON writes null, rather than nothing, for the unset fields of a
// known key.
func (v VerifyObject) MarshalJSON() ([]byte, error) {
	if !v.known {
		return json.Marshal(struct {
			Valid bool   `json:"valid"`
			Code  string `json:"code"`
		}{v.Valid, v.Code})
	}
	type known struct {
		Valid          bool       `json:"valid"`
		Code           string     `json:"code"`
		KeyID          string     `json:"key_id"`
		ProjectID      string     `json:"project_id"`
		EnvironmentID  *string    `json:"environment_id"`
		Name           string     `json:"name"`
		Scopes         []string   `json:"scopes"`
		ExpiresAt      *time.Time `json:"expires_at"`
		GraceExpiresAt *time.Time `json:"grace_expires_at"`
	}
	return json.Marshal(known{v.Valid, v.Code, v.KeyID, v.ProjectID, v.EnvironmentID, v.Name, v.Scopes, v.ExpiresAt, v.GraceExpiresAt})
}

type verifyOutput struct {
	Body VerifyObject
}

func (a *API) verify(ctx context.Context, in *verifyInput) (*verifyOutput, error) {
	start := time.Now()
	v, err := a.svc.Verify(ctx, principal(ctx), service.VerifyInput{
		Key: in.Body.Key, Scopes: in.Body.Scopes, EnvironmentID: in.Body.EnvironmentID,
	})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	a.metrics.VerifyResult(v.Code, time.Since(start))
	out := &verifyOutput{Body: VerifyObject{Valid: v.Valid(), Code: string(v.Code)}}
	if r := v.Record; r != nil {
		noteProject(ctx, r.ProjectID)
		scopes := r.Scopes
		if scopes == nil {
			scopes = []string{}
		}
		out.Body.known = true
		out.Body.KeyID = r.ID
		out.Body.ProjectID = r.ProjectID
		out.Body.EnvironmentID = optString(r.EnvironmentID)
		out.Body.Name = r.Name
		out.Body.Scopes = scopes
		out.Body.ExpiresAt = optTime(r.ExpiresAt)
		if r.Replaced {
			out.Body.GraceExpiresAt = optTime(r.GraceExpiresAt)
		}
	}
	return out, nil
}
