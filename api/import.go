package api

import (
	"context"
	"encoding/json"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/service"
)

// importKeysInputBody is the body of POST /v1/api-keys/import (SPEC §9).
type importKeysInputBody struct {
	ProjectID string           `json:"project_id" minLength:"1" maxLength:"128" pattern:"^[A-Za-z0-9_.:-]+$" doc:"Project the keys belong to."`
	Keys      []importItemBody `json:"keys" minItems:"1" maxItems:"1000" doc:"The keys; all are imported or none."`
}

// importItemBody is one key of an import: apikey.ImportItem on the wire.
type importItemBody struct {
	Name          string                       `json:"name" minLength:"1" maxLength:"255"`
	Key           string                       `json:"key,omitempty" maxLength:"512" doc:"The key as clients present it; hashed at once, never stored. Not with hash."`
	Hash          string                       `json:"hash,omitempty" doc:"sha256:<64 lowercase hex> of the key as clients present it. Not with key."`
	KeyPrefix     *string                      `json:"key_prefix,omitempty" maxLength:"12" doc:"Shown as key_prefix. Default: from key, at most a quarter of it; empty for a hash."`
	Scopes        []string                     `json:"scopes,omitempty" nullable:"true" maxItems:"64"`
	EnvironmentID *string                      `json:"environment_id,omitempty" nullable:"true" minLength:"1" maxLength:"128" pattern:"^[A-Za-z0-9_.:-]+$"`
	ExpiresAt     *time.Time                   `json:"expires_at,omitempty" nullable:"true"`
	OwnerID       *string                      `json:"owner_id,omitempty" nullable:"true" minLength:"1" maxLength:"255" pattern:"^[A-Za-z0-9_.:@-]+$"`
	Meta          metaObject                   `json:"meta,omitempty"`
	IPAllowlist   *[]string                    `json:"ip_allowlist,omitempty" nullable:"true" maxItems:"100"`
	RateLimits    []RateLimitObject            `json:"ratelimits,omitempty" nullable:"true" doc:"1–10 limits; null or absent for none."`
	Credits       Optional[CreditsInputObject] `json:"credits,omitempty" doc:"The starting balance; null or absent for unlimited."`
}

func (b *importItemBody) item() apikey.ImportItem {
	return apikey.ImportItem{
		KeyInput: apikey.KeyInput{
			Name: b.Name, Scopes: b.Scopes, EnvironmentID: b.EnvironmentID, ExpiresAt: b.ExpiresAt,
			OwnerID: b.OwnerID, Meta: json.RawMessage(b.Meta), IPAllowlist: b.IPAllowlist,
			RateLimits: rateLimits(b.RateLimits), Credits: createCredits(b.Credits),
		},
		Key: b.Key, Hash: b.Hash, KeyPrefix: b.KeyPrefix,
	}
}

type importKeysInput struct {
	Body importKeysInputBody
}

type importKeysOutput struct {
	Body struct {
		Keys []KeyObject `json:"keys"`
	}
}

func (a *API) importKeys(ctx context.Context, in *importKeysInput) (*importKeysOutput, error) {
	b := &in.Body
	noteProject(ctx, b.ProjectID)
	items := make([]apikey.ImportItem, len(b.Keys))
	for i := range b.Keys {
		items[i] = b.Keys[i].item()
	}
	keys, err := a.svc.Import(ctx, principal(ctx), service.ImportInput{ProjectID: b.ProjectID, Keys: items})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	now := a.now()
	out := &importKeysOutput{}
	out.Body.Keys = make([]KeyObject, len(keys))
	for i, k := range keys {
		out.Body.Keys[i] = keyObject(k, now)
	}
	return out, nil
}
