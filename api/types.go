package api

import (
	"encoding/json"
	"reflect"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/service"
	"github.com/apikeyd/apikeyd/usage"
)

// KeyCommon are the fields every object describing a key shows alike: the
// key object, the rotate object (of the new key) and the verify answer (of
// a known key). A field of the key that all three show is declared here and
// filled in keyCommon, from the key's verification record (which is all a
// verification has, and which every key gives: apikey.Key.Record), once.
type KeyCommon struct {
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// keyCommon is the KeyCommon of a key: scopes as an array, never null; an
// expiry, or null for none.
func keyCommon(r apikey.Record) KeyCommon {
	scopes := r.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return KeyCommon{Name: r.Name, Scopes: scopes, ExpiresAt: optTime(r.ExpiresAt)}
}

// KeyOwnership are the fields of SPEC §9 that the key object and the verify
// answer show alike (the rotate object does not: SPEC §9 marks where they
// appear), filled in keyOwnership from the key's record, once.
type KeyOwnership struct {
	OwnerID *string    `json:"owner_id" doc:"The user, team or service account the key belongs to."`
	Meta    metaObject `json:"meta" doc:"Your data about the key, handed to every verifier: never secrets."`
}

func keyOwnership(r *apikey.Record) KeyOwnership {
	o := KeyOwnership{OwnerID: optString(r.OwnerID)}
	if r.Meta != "" {
		o.Meta = metaObject(r.Meta)
	}
	return o
}

// metaObject is a key's meta on the wire: a JSON object of at most 64
// members (and 4096 bytes compact, which the domain checks), or null. It
// is written as stored, compact.
type metaObject json.RawMessage

// MarshalJSON writes the object, or null.
func (m metaObject) MarshalJSON() ([]byte, error) {
	if m == nil {
		return []byte("null"), nil
	}
	return m, nil
}

// UnmarshalJSON keeps the raw JSON for the domain to check (apikey.CompactMeta).
func (m *metaObject) UnmarshalJSON(b []byte) error {
	*m = append((*m)[:0], b...)
	return nil
}

// Schema implements huma.SchemaProvider.
func (metaObject) Schema(huma.Registry) *huma.Schema {
	members := apikey.MaxMetaMembers
	return &huma.Schema{Type: huma.TypeObject, Nullable: true, MaxProperties: &members, AdditionalProperties: true}
}

// KeyObject is a key as the API shows it: the 15 fields of the seed
// reference, null when unset, plus its status.
type KeyObject struct {
	ID        string `json:"id" doc:"Opaque, sortable key ID." example:"key_01jd3m5x8q7w9e2r4t6y8u0i1o"`
	ProjectID string `json:"project_id"`
	KeyCommon
	KeyPrefix            string     `json:"key_prefix" doc:"The first 12 characters of the key: enough to recognise it, never enough to use it."`
	LastUsedAt           *time.Time `json:"last_used_at"`
	CreatedAt            time.Time  `json:"created_at"`
	RevokedAt            *time.Time `json:"revoked_at"`
	ReplacedByKeyID      *string    `json:"replaced_by_key_id"`
	GraceExpiresAt       *time.Time `json:"grace_expires_at"`
	EnvironmentID        *string    `json:"environment_id"`
	RotationIntervalDays *int       `json:"rotation_interval_days"`
	NextRotationAt       *time.Time `json:"next_rotation_at"`
	RotationWebhookURL   *string    `json:"rotation_webhook_url"`
	KeyOwnership
	IPAllowlist      []string          `json:"ip_allowlist" doc:"Addresses and CIDRs the key may be used from; null: any."`
	DisabledAt       *time.Time        `json:"disabled_at" doc:"Set while the key is disabled."`
	DisabledReason   *string           `json:"disabled_reason"`
	RevocationReason *string           `json:"revocation_reason" enum:"unspecified,key_compromise,superseded,privilege_withdrawn,cessation_of_operation"`
	Source           string            `json:"source" enum:"issued,imported" doc:"issued by apikeyd, or imported."`
	Status           string            `json:"status" enum:"active,rotating,rotated,expired,revoked,disabled" doc:"active; rotating (replaced, in grace); rotated (grace over); expired; revoked; disabled (unless revoked, expired or rotated)."`
	RateLimits       []RateLimitObject `json:"ratelimits" doc:"At most limit VALID verifies in any interval of duration_ms; null for none."`
	Credits          *CreditsObject    `json:"credits" doc:"The balance verifies spend; null for unlimited."`
}

// CreatedKeyObject is the answer to a create: the key object, the plaintext
// key and, for a key with a webhook URL, the webhook signing secret. Both
// secrets are shown this once.
type CreatedKeyObject struct {
	KeyObject
	Key                   string `json:"key" doc:"The API key. Shown once; store it now."`
	RotationWebhookSecret string `json:"rotation_webhook_secret,omitempty" doc:"Secret (whsec_…) that signs rotation webhooks. Shown once."`
}

// PatchedKeyObject is the answer to a patch; it carries the webhook secret
// when the patch gave the key its first webhook URL.
type PatchedKeyObject struct {
	KeyObject
	RotationWebhookSecret string `json:"rotation_webhook_secret,omitempty" doc:"Set when this change created the key's webhook secret. Shown once."`
}

// RotateObject is the answer to a rotation: the new key's common fields,
// its plaintext, and when the old key stops working.
type RotateObject struct {
	OldKeyID  string `json:"old_key_id"`
	NewKeyID  string `json:"new_key_id"`
	ProjectID string `json:"project_id"`
	KeyCommon
	Key            string     `json:"key" doc:"The new API key. Shown once."`
	KeyPrefix      string     `json:"key_prefix"`
	CreatedAt      time.Time  `json:"created_at"`
	GraceExpiresAt *time.Time `json:"grace_expires_at" doc:"When the old key stops working."`
}

// rotateObject is the RotateObject of a rotation.
func rotateObject(r *service.Rotated) RotateObject {
	return RotateObject{
		OldKeyID:       r.Old.ID,
		NewKeyID:       r.New.ID,
		ProjectID:      r.New.ProjectID,
		KeyCommon:      keyCommon(r.New.Record()),
		Key:            r.Plaintext,
		KeyPrefix:      r.New.KeyPrefix,
		CreatedAt:      r.New.CreatedAt,
		GraceExpiresAt: optTime(r.Old.GraceExpiresAt),
	}
}

// VerifyObject is the verdict on a presented key. The key's details are
// present for a known key (every code but MALFORMED and NOT_FOUND), null
// when unset; for an unknown key the answer is valid and code alone.
type VerifyObject struct {
	Valid         bool       `json:"valid"`
	Code          verifyCode `json:"code"`
	KeyID         string     `json:"key_id"`
	ProjectID     string     `json:"project_id"`
	EnvironmentID *string    `json:"environment_id"`
	KeyCommon
	GraceExpiresAt *time.Time `json:"grace_expires_at"`
	KeyOwnership
	// VerifyUsage is set for a key with rate limits or credits that
	// passed every other check; its fields are absent otherwise.
	*VerifyUsage

	known bool
}

// TransformSchema documents the key's fields as optional: an unknown key's
// answer has valid and code alone.
func (VerifyObject) TransformSchema(r huma.Registry, s *huma.Schema) *huma.Schema {
	s.Required = []string{"valid", "code"}
	return s
}

// MarshalJSON writes valid and code alone for an unknown key. verifyFast
// writes the same bytes by hand (appendVerdict); this is the reference it
// is tested against.
func (v VerifyObject) MarshalJSON() ([]byte, error) {
	if !v.known {
		return json.Marshal(struct {
			Valid bool       `json:"valid"`
			Code  verifyCode `json:"code"`
		}{v.Valid, v.Code})
	}
	type known VerifyObject // without this method
	return json.Marshal(known(v))
}

// verifyObject is the VerifyObject of a verdict.
func verifyObject(v service.Verdict) VerifyObject {
	out := VerifyObject{Valid: v.Valid(), Code: verifyCode(v.Code)}
	if r := &v.Record; v.Known {
		out.known = true
		out.KeyID = r.ID
		out.ProjectID = r.ProjectID
		out.EnvironmentID = optString(r.EnvironmentID)
		out.KeyCommon = keyCommon(*r)
		if r.Replaced {
			out.GraceExpiresAt = optTime(r.GraceExpiresAt)
		}
		out.KeyOwnership = keyOwnership(r)
		if v.Metered {
			out.VerifyUsage = verifyUsage(&v)
		}
	}
	return out
}

// verifyUsage is the VerifyUsage of a metered verdict: the key's subject
// is the first of the decision's.
func verifyUsage(v *service.Verdict) *VerifyUsage {
	u := &VerifyUsage{}
	u.RateLimits, u.Credits = subjectUsage(v.Record.RateLimits, &v.Usage.Subjects[0])
	if o := v.Owner; o != nil {
		u.Owner = &VerifyOwnerObject{ID: o.OwnerID, Meta: json.RawMessage("null")}
		if o.Meta != nil {
			u.Owner.Meta = o.Meta
		}
		u.Owner.RateLimits, u.Owner.Credits = subjectUsage(o.RateLimits, &v.Usage.Subjects[1])
	}
	return u
}

// subjectUsage is what a verify answer says of one subject: its limits
// (an array, never null) and its balance (nil: unlimited).
func subjectUsage(limits []apikey.RateLimit, st *usage.SubjectState) ([]VerifyLimitObject, *VerifyCreditsObject) {
	out := make([]VerifyLimitObject, len(limits))
	for i, l := range limits {
		out[i] = VerifyLimitObject{Name: l.Name, Limit: l.Limit, DurationMS: l.DurationMS}
		if i < st.NLimits {
			out[i].Remaining = st.Limits[i].Remaining
			out[i].ResetAt = optMillis(st.Limits[i].ResetAt)
		}
	}
	if !st.Credits {
		return out, nil
	}
	return out, &VerifyCreditsObject{Remaining: st.Remaining, NextRefillAt: optMillis(st.NextRefillAt)}
}

// verifyCode is a verdict on the wire. Its schema enumerates
// apikey.VerifyCodes, so that the OpenAPI document lists every code the
// domain has.
type verifyCode apikey.VerifyCode

// Schema implements huma.SchemaProvider.
func (verifyCode) Schema(huma.Registry) *huma.Schema {
	enum := make([]any, len(apikey.VerifyCodes))
	for i, c := range apikey.VerifyCodes {
		enum[i] = string(c)
	}
	return &huma.Schema{Type: huma.TypeString, Enum: enum}
}

// AuditEventObject is one entry of the audit log. project_id is null for
// the changes to root keys, which belong to no project; key_id is null for
// the changes to owners, which concern no one key.
type AuditEventObject struct {
	ID            string         `json:"id"`
	ProjectID     *string        `json:"project_id"`
	EnvironmentID *string        `json:"environment_id"`
	KeyID         *string        `json:"key_id" doc:"The key (or root key) the event is about; null for an owner's (owner.updated, owner.deleted), whose details name the owner_id."`
	Action        string         `json:"action" example:"api_key.rotated"`
	Actor         ActorObject    `json:"actor"`
	Details       map[string]any `json:"details"`
	CreatedAt     time.Time      `json:"created_at"`
}

// ActorObject says who caused an audit event (or created a root key):
// the acting key's ID and its name when it acted; both null for the admin
// token and the system.
type ActorObject struct {
	Type  string  `json:"type" enum:"admin,root_key,api_key,system"`
	KeyID *string `json:"key_id"`
	Name  *string `json:"name"`
}

func actorObject(a apikey.Actor) ActorObject {
	return ActorObject{Type: a.Type, KeyID: optString(a.KeyID), Name: optString(a.Name)}
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func keyObject(k *apikey.Key, now time.Time) KeyObject {
	rec := k.Record()
	o := KeyObject{
		ID:                 k.ID,
		ProjectID:          k.ProjectID,
		KeyCommon:          keyCommon(rec),
		KeyPrefix:          k.KeyPrefix,
		LastUsedAt:         optTime(k.LastUsedAt),
		CreatedAt:          k.CreatedAt,
		RevokedAt:          optTime(k.RevokedAt),
		ReplacedByKeyID:    optString(k.ReplacedByKeyID),
		GraceExpiresAt:     optTime(k.GraceExpiresAt),
		EnvironmentID:      optString(k.EnvironmentID),
		NextRotationAt:     optTime(k.NextRotationAt),
		RotationWebhookURL: optString(k.RotationWebhookURL),
		IPAllowlist:        k.IPAllowlist.Strings(),
		KeyOwnership:       keyOwnership(&rec),
		DisabledAt:         optTime(k.DisabledAt),
		DisabledReason:     optString(k.DisabledReason),
		RevocationReason:   optString(string(k.RevocationReason)),
		Source:             string(k.SourceOrIssued()),
		Status:             string(k.Status(now)),
		RateLimits:         rateLimitObjects(k.RateLimits),
	}
	if k.RotationIntervalDays > 0 {
		d := k.RotationIntervalDays
		o.RotationIntervalDays = &d
	}
	return o
}

func auditEventObject(e *apikey.AuditEvent) AuditEventObject {
	d := e.Details
	if d == nil {
		d = map[string]any{}
	}
	return AuditEventObject{
		ID:            e.ID,
		ProjectID:     optString(e.ProjectID),
		EnvironmentID: optString(e.EnvironmentID),
		KeyID:         optString(e.KeyID),
		Action:        e.Action,
		Actor:         actorObject(e.Actor),
		Details:       d,
		CreatedAt:     e.CreatedAt,
	}
}

// createKeyInputBody is the body of POST /v1/api-keys: apikey.KeyInput on
// the wire. Its name gives the schema name /openapi.json has always had.
type createKeyInputBody struct {
	ProjectID            string                       `json:"project_id" minLength:"1" maxLength:"128" pattern:"^[A-Za-z0-9_.:-]+$" doc:"Project the key belongs to."`
	Name                 string                       `json:"name" minLength:"1" maxLength:"255" doc:"Human-readable name."`
	Scopes               []string                     `json:"scopes,omitempty" nullable:"true" maxItems:"64" doc:"What the key may do, in your own vocabulary; a trailing :* or a lone * is a wildcard. Default: none."`
	ExpiresInDays        *wholeNumber                 `json:"expires_in_days,omitempty" nullable:"true" minimum:"1" maximum:"36500" doc:"Lifetime in days. Not with expires_at."`
	ExpiresAt            *time.Time                   `json:"expires_at,omitempty" nullable:"true" doc:"Expiry instant, in the future. Not with expires_in_days."`
	EnvironmentID        *string                      `json:"environment_id,omitempty" nullable:"true" minLength:"1" maxLength:"128" pattern:"^[A-Za-z0-9_.:-]+$" doc:"Bind the key to one environment."`
	RotationIntervalDays *wholeNumber                 `json:"rotation_interval_days,omitempty" nullable:"true" minimum:"1" maximum:"36500" doc:"Rotate automatically every this many days; needs rotation_webhook_url."`
	RotationWebhookURL   *string                      `json:"rotation_webhook_url,omitempty" nullable:"true" maxLength:"2048" doc:"https URL on a public host that receives rotated keys, signed."`
	OwnerID              *string                      `json:"owner_id,omitempty" nullable:"true" minLength:"1" maxLength:"255" pattern:"^[A-Za-z0-9_.:@-]+$" doc:"The user, team or service account the key belongs to."`
	Meta                 metaObject                   `json:"meta,omitempty" doc:"Any JSON object, at most 4096 bytes compact and 64 members; every verifier sees it."`
	IPAllowlist          *[]string                    `json:"ip_allowlist,omitempty" nullable:"true" maxItems:"100" doc:"1-100 IPv4/IPv6 addresses or CIDRs (host bits zero) the key may be used from; null: any."`
	RateLimits           []RateLimitObject            `json:"ratelimits,omitempty" nullable:"true" doc:"1–10 limits; null or absent for none."`
	Credits              Optional[CreditsInputObject] `json:"credits,omitempty" doc:"The starting balance; null or absent for unlimited."`
}

func (b *createKeyInputBody) input() apikey.KeyInput {
	return apikey.KeyInput{
		ProjectID: b.ProjectID, Name: b.Name, Scopes: b.Scopes, ExpiresInDays: intPtr(b.ExpiresInDays),
		ExpiresAt: b.ExpiresAt, EnvironmentID: b.EnvironmentID,
		RotationIntervalDays: intPtr(b.RotationIntervalDays), RotationWebhookURL: b.RotationWebhookURL,
		OwnerID: b.OwnerID, Meta: json.RawMessage(b.Meta), IPAllowlist: b.IPAllowlist,
		RateLimits: rateLimits(b.RateLimits), Credits: createCredits(b.Credits),
	}
}

// patchKeyInputBody is the body of PATCH /v1/api-keys/{keyID}:
// apikey.KeyPatch on the wire. The domain answers null where null is not allowed.
type patchKeyInputBody struct {
	Name                 Optional[string]             `json:"name,omitempty" minLength:"1" maxLength:"255"`
	Scopes               Optional[[]string]           `json:"scopes,omitempty" maxItems:"64"`
	ExpiresAt            Optional[time.Time]          `json:"expires_at,omitempty" doc:"New expiry; null removes it."`
	RotationIntervalDays Optional[wholeNumber]        `json:"rotation_interval_days,omitempty" minimum:"1" maximum:"36500" doc:"null disables scheduled rotation."`
	RotationWebhookURL   Optional[string]             `json:"rotation_webhook_url,omitempty" maxLength:"2048" doc:"null removes it (only without rotation_interval_days)."`
	NextRotationAt       *time.Time                   `json:"next_rotation_at,omitempty" doc:"Move the next scheduled rotation, e.g. to now."`
	OwnerID              Optional[string]             `json:"owner_id,omitempty" minLength:"1" maxLength:"255" pattern:"^[A-Za-z0-9_.:@-]+$" doc:"null removes the owner."`
	Meta                 Optional[metaObject]         `json:"meta,omitempty" doc:"Replaces the meta whole; null clears it."`
	IPAllowlist          Optional[[]string]           `json:"ip_allowlist,omitempty" maxItems:"100" doc:"Replaces the allowlist; null allows any address."`
	RateLimits           Optional[[]RateLimitObject]  `json:"ratelimits,omitempty" doc:"Replace the limits; null removes them. Counts of a limit whose name and duration stay are kept."`
	Credits              Optional[CreditsInputObject] `json:"credits,omitempty" doc:"Redefine the balance (remaining becomes the total); null makes credits unlimited."`
}

func (b *patchKeyInputBody) patch() apikey.KeyPatch {
	p := apikey.KeyPatch{
		Name: b.Name.Optional, Scopes: b.Scopes.Optional, ExpiresAt: b.ExpiresAt.Optional,
		RotationIntervalDays: wholeOptional(b.RotationIntervalDays), RotationWebhookURL: b.RotationWebhookURL.Optional,
		OwnerID: b.OwnerID.Optional, IPAllowlist: b.IPAllowlist.Optional,
		Meta:       apikey.Optional[json.RawMessage]{Set: b.Meta.Set, Null: b.Meta.Null, Value: json.RawMessage(b.Meta.Value)},
		RateLimits: optionalLimits(b.RateLimits), Credits: optionalCredits(b.Credits),
	}
	if b.NextRotationAt != nil {
		p.NextRotationAt = apikey.Some(*b.NextRotationAt)
	}
	return p
}

// Optional is a PATCH field of a request body: the domain's three-state
// apikey.Optional, which it decodes into, plus its OpenAPI schema (the
// value's, nullable), which the domain cannot state without importing huma.
type Optional[T any] struct{ apikey.Optional[T] }

// Schema describes the field as its value type, nullable.
func (o Optional[T]) Schema(r huma.Registry) *huma.Schema {
	s := *r.Schema(reflect.TypeFor[T](), true, "")
	if s.Ref != "" {
		// huma cannot make a reference nullable: an object is described
		// in place.
		s = *r.SchemaFromRef(s.Ref)
	}
	s.Nullable = true
	return &s
}
