package client

import (
	"encoding/json"
	"reflect"
	"time"
)

// Status is the lifecycle state of a key.
type Status string

// Key statuses.
const (
	StatusActive   Status = "active"
	StatusRotating Status = "rotating" // replaced, still within its grace period
	StatusRotated  Status = "rotated"  // replaced, grace period over
	StatusExpired  Status = "expired"
	StatusRevoked  Status = "revoked"
	StatusDisabled Status = "disabled" // disabled, and neither revoked, expired nor rotated
)

// KeyCommon are the fields that a Key, a Rotated (of the new key) and a
// Verdict (of a known key) all have, as the server shows them in each.
type KeyCommon struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	// ExpiresAt is nil for a key that does not expire.
	ExpiresAt *time.Time `json:"expires_at"`
}

// Ownership are the fields that a Key and a Verdict (of a known key) both
// have: whose the key is, and your data about it.
type Ownership struct {
	// OwnerID is the user, team or service account the key belongs to.
	OwnerID *string `json:"owner_id"`
	// Meta is your data about the key (a JSON object), nil for none.
	Meta json.RawMessage `json:"meta"`
}

// Key is an API key as the server shows it. Pointer fields are nil when the
// server says null: the key has no such property.
type Key struct {
	ID        string `json:"id"`
	ProjectID string `json:"project_id"`
	KeyCommon
	KeyPrefix            string     `json:"key_prefix"`
	LastUsedAt           *time.Time `json:"last_used_at"`
	CreatedAt            time.Time  `json:"created_at"`
	RevokedAt            *time.Time `json:"revoked_at"`
	ReplacedByKeyID      *string    `json:"replaced_by_key_id"`
	GraceExpiresAt       *time.Time `json:"grace_expires_at"`
	EnvironmentID        *string    `json:"environment_id"`
	RotationIntervalDays *int       `json:"rotation_interval_days"`
	NextRotationAt       *time.Time `json:"next_rotation_at"`
	RotationWebhookURL   *string    `json:"rotation_webhook_url"`
	Ownership
	// IPAllowlist lists where the key may be used from; nil for anywhere.
	IPAllowlist []string `json:"ip_allowlist"`
	// DisabledAt is set while the key is disabled (DisableKey).
	DisabledAt     *time.Time `json:"disabled_at"`
	DisabledReason *string    `json:"disabled_reason"`
	// RevocationReason says why a revoked key was revoked.
	RevocationReason *string `json:"revocation_reason"`
	// Source is "issued" or "imported".
	Source string `json:"source"`
	Status Status `json:"status"`
	// RateLimits is nil for a key without rate limits.
	RateLimits []RateLimit `json:"ratelimits"`
	// Credits is nil for a key with unlimited credits.
	Credits *Credits `json:"credits"`
}

// RateLimit allows at most Limit VALID verifies in any interval of
// DurationMS milliseconds.
type RateLimit struct {
	Name       string `json:"name"`
	Limit      int64  `json:"limit"`
	DurationMS int64  `json:"duration_ms"`
}

// Credits is a key's balance. In CreateParams and UpdateParams only
// Remaining and Refill are sent.
type Credits struct {
	Remaining    int64      `json:"remaining"`
	Refill       *Refill    `json:"refill,omitempty"`
	RefilledAt   *time.Time `json:"refilled_at,omitempty"`
	NextRefillAt *time.Time `json:"next_refill_at,omitempty"`
}

// Refill is a balance's schedule: Interval "daily" or "monthly", Mode
// "replace" or "add", DayOfMonth (monthly only) 1–31, 0 for the 1st.
type Refill struct {
	Interval   string `json:"interval"`
	Amount     int64  `json:"amount"`
	Mode       string `json:"mode"`
	DayOfMonth int    `json:"day_of_month,omitempty"`
}

// VerifyLimit is one rate limit in a verdict: what it still allows and
// when that next grows (nil when nothing is counted).
type VerifyLimit struct {
	Name       string     `json:"name"`
	Limit      int64      `json:"limit"`
	DurationMS int64      `json:"duration_ms"`
	Remaining  int64      `json:"remaining"`
	ResetAt    *time.Time `json:"reset_at"`
}

// VerifyCredits is a key's balance in a verdict.
type VerifyCredits struct {
	Remaining    int64      `json:"remaining"`
	NextRefillAt *time.Time `json:"next_refill_at"`
}

// CreatedKey is the answer to CreateKey: the key, its plaintext and, for a
// key with a rotation webhook, the webhook's signing secret. Both secrets
// are shown this once.
type CreatedKey struct {
	Key
	// Secret is the API key itself. apikeyd keeps only its hash.
	Secret string `json:"key"`
	// WebhookSecret (whsec_…) signs the rotation webhooks of the key.
	WebhookSecret string `json:"rotation_webhook_secret,omitempty"`
}

// UpdatedKey is the answer to UpdateKey. WebhookSecret is set when the
// change gave the key its first webhook URL.
type UpdatedKey struct {
	Key
	WebhookSecret string `json:"rotation_webhook_secret,omitempty"`
}

// Rotated is the answer to RotateKey: the new key's ID, common fields and
// plaintext.
type Rotated struct {
	OldKeyID  string `json:"old_key_id"`
	NewKeyID  string `json:"new_key_id"`
	ProjectID string `json:"project_id"`
	KeyCommon
	Secret    string    `json:"key"` // the new key; shown this once
	KeyPrefix string    `json:"key_prefix"`
	CreatedAt time.Time `json:"created_at"`
	// GraceExpiresAt is when the old key stops working.
	GraceExpiresAt *time.Time `json:"grace_expires_at"`
}

// VerifyCode is the verdict on a presented key.
type VerifyCode string

// Verdicts: those of apikeyd's domain (TestVerifyCodes keeps them equal).
const (
	CodeValid               VerifyCode = "VALID"
	CodeMalformed           VerifyCode = "MALFORMED"
	CodeNotFound            VerifyCode = "NOT_FOUND"
	CodeExpired             VerifyCode = "EXPIRED"
	CodeRevoked             VerifyCode = "REVOKED"
	CodeRotated             VerifyCode = "ROTATED"
	CodeInsufficientScope   VerifyCode = "INSUFFICIENT_SCOPE"
	CodeEnvironmentMismatch VerifyCode = "ENVIRONMENT_MISMATCH"
	CodeRateLimited         VerifyCode = "RATE_LIMITED"
	CodeUsageExceeded       VerifyCode = "USAGE_EXCEEDED"
	CodeDisabled            VerifyCode = "DISABLED"
	CodeIPNotAllowed        VerifyCode = "IP_NOT_ALLOWED"
)

// Verdict is the answer to Verify. The key's details are set for a key the
// server knows (every code but MALFORMED and NOT_FOUND); KeyID is empty
// otherwise.
type Verdict struct {
	Valid         bool       `json:"valid"`
	Code          VerifyCode `json:"code"`
	KeyID         string     `json:"key_id"`
	ProjectID     string     `json:"project_id"`
	EnvironmentID *string    `json:"environment_id"`
	KeyCommon
	GraceExpiresAt *time.Time `json:"grace_expires_at"`
	Ownership
	// RateLimits and Credits are set for a key with rate limits or
	// credits that passed every other check (VALID, RATE_LIMITED,
	// USAGE_EXCEEDED); Credits is nil when unlimited.
	RateLimits []VerifyLimit  `json:"ratelimits,omitempty"`
	Credits    *VerifyCredits `json:"credits,omitempty"`
	// Owner is the allowance of the key's owner the verify drew on too.
	Owner *VerifyOwner `json:"owner,omitempty"`
}

// VerifyOwner is an owner's shared allowance in a verdict.
type VerifyOwner struct {
	ID         string          `json:"id"`
	Meta       json.RawMessage `json:"meta"`
	RateLimits []VerifyLimit   `json:"ratelimits"`
	Credits    *VerifyCredits  `json:"credits"`
}

// MarshalJSON writes the verdict as the server does: only valid and code
// for an unknown key.
func (v Verdict) MarshalJSON() ([]byte, error) {
	type verdict Verdict
	if v.KeyID == "" {
		return json.Marshal(struct {
			Valid bool       `json:"valid"`
			Code  VerifyCode `json:"code"`
		}{v.Valid, v.Code})
	}
	return json.Marshal(verdict(v))
}

// AuditEvent is one entry of the audit log: who did what to which key.
// ProjectID is empty for the changes to root keys, which belong to no
// project, and KeyID for the changes to owners (owner.updated,
// owner.deleted), whose Details name the owner_id (the server says null).
type AuditEvent struct {
	ID            string         `json:"id"`
	ProjectID     string         `json:"project_id"`
	EnvironmentID *string        `json:"environment_id"`
	KeyID         string         `json:"key_id"`
	Action        string         `json:"action"`
	Actor         Actor          `json:"actor"`
	Details       map[string]any `json:"details"`
	CreatedAt     time.Time      `json:"created_at"`
}

// Actor is who caused an audit event, or created a root key: "admin",
// "root_key" or "api_key" (KeyID and Name say which) or "system"
// (scheduled rotation). Name is the acting key's name when it acted.
type Actor struct {
	Type  string  `json:"type"`
	KeyID *string `json:"key_id"`
	Name  *string `json:"name"`
}

// CreateParams describe a key to create. Zero fields are left out.
type CreateParams struct {
	ProjectID string   `json:"project_id"`
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes,omitempty"`
	// ExpiresInDays or ExpiresAt (not both) give the key an expiry.
	ExpiresInDays int       `json:"expires_in_days,omitempty"`
	ExpiresAt     time.Time `json:"expires_at,omitzero"`
	EnvironmentID string    `json:"environment_id,omitempty"`
	// RotationIntervalDays schedules automatic rotation; it needs
	// RotationWebhookURL, which receives the new keys.
	RotationIntervalDays int    `json:"rotation_interval_days,omitempty"`
	RotationWebhookURL   string `json:"rotation_webhook_url,omitempty"`
	// OwnerID is the user, team or service account the key belongs to:
	// 1–255 characters of A-Z a-z 0-9 _ . : @ -.
	OwnerID string `json:"owner_id,omitempty"`
	// Meta is a JSON object (at most 4096 bytes compact, 64 members) that
	// every verifier of the key sees.
	Meta json.RawMessage `json:"meta,omitempty"`
	// IPAllowlist restricts the key to these addresses and CIDRs.
	IPAllowlist []string `json:"ip_allowlist,omitempty"`
	// RateLimits and Credits (nil: unlimited) control usage in verify.
	RateLimits []RateLimit `json:"ratelimits,omitempty"`
	Credits    *Credits    `json:"credits,omitempty"`
}

// UpdateParams are the changes to a key. A field left at its zero value is
// not sent and stays as it is; Value sets it and Null clears it:
//
//	client.UpdateParams{Name: client.Value("billing"), ExpiresAt: client.Null[time.Time]()}
type UpdateParams struct {
	Name   Field[string]   `json:"name,omitzero"`
	Scopes Field[[]string] `json:"scopes,omitzero"`
	// ExpiresAt: Null removes the expiry.
	ExpiresAt Field[time.Time] `json:"expires_at,omitzero"`
	// RotationIntervalDays: Null disables scheduled rotation.
	RotationIntervalDays Field[int] `json:"rotation_interval_days,omitzero"`
	// RotationWebhookURL: Null removes it (only without a rotation
	// interval).
	RotationWebhookURL Field[string] `json:"rotation_webhook_url,omitzero"`
	// NextRotationAt moves the next scheduled rotation, e.g. to now.
	NextRotationAt Field[time.Time] `json:"next_rotation_at,omitzero"`
	// OwnerID: Null removes the owner.
	OwnerID Field[string] `json:"owner_id,omitzero"`
	// Meta replaces the meta whole; Null clears it.
	Meta Field[json.RawMessage] `json:"meta,omitzero"`
	// IPAllowlist replaces the allowlist; Null allows any address.
	IPAllowlist Field[[]string] `json:"ip_allowlist,omitzero"`
	// RateLimits: Null removes them.
	RateLimits Field[[]RateLimit] `json:"ratelimits,omitzero"`
	// Credits redefines the balance; Null makes credits unlimited.
	Credits Field[Credits] `json:"credits,omitzero"`
}

// Field is one field of a partial update: absent (the zero value), a value
// (Value) or null (Null).
type Field[T any] struct {
	value T
	set   bool
	null  bool
}

// Value returns a field set to v. An empty slice clears a list.
func Value[T any](v T) Field[T] { return Field[T]{value: v, set: true} }

// Null returns a field set to null, which clears it.
func Null[T any]() Field[T] { return Field[T]{set: true, null: true} }

// IsZero reports whether the field is absent; encoding/json then leaves it
// out.
func (f Field[T]) IsZero() bool { return !f.set }

// MarshalJSON writes the value, or null.
func (f Field[T]) MarshalJSON() ([]byte, error) {
	if f.null {
		return []byte("null"), nil
	}
	if v := reflect.ValueOf(f.value); v.Kind() == reflect.Slice && v.IsNil() {
		return []byte("[]"), nil // Value[[]string](nil) means "no scopes", not null
	}
	return json.Marshal(f.value)
}

// RotateParams configure a rotation.
type RotateParams struct {
	// GracePeriodMinutes is how long the old key keeps working: nil for the
	// server's default (60), new(0) to stop it at once, up to 10080.
	GracePeriodMinutes *int `json:"grace_period_minutes,omitempty"`
}

// VerifyParams are a presented key and what it must allow.
type VerifyParams struct {
	Key string `json:"key"`
	// Scopes the key must all hold.
	Scopes []string `json:"scopes,omitempty"`
	// EnvironmentID, when set, is the environment the key must be bound to.
	EnvironmentID string `json:"environment_id,omitempty"`
	// ClientIP is the address the key was presented from; a key with an
	// allowlist is CodeIPNotAllowed without it.
	ClientIP string `json:"client_ip,omitempty"`
	// Cost is what a VALID verify spends of the key's credits: nil for
	// the default, 1; Cost(0) checks without spending.
	Cost *int64 `json:"cost,omitempty"`
}

// Cost returns a VerifyParams cost.
func Cost(n int64) *int64 { return &n }

// CreditParams change a key's balance: Op "set", "increment" or
// "decrement" by Amount.
type CreditParams struct {
	Op     string `json:"op"`
	Amount int64  `json:"amount"`
}

// ListParams select the keys ListKeys returns, newest first.
type ListParams struct {
	ProjectID     string
	EnvironmentID string
	// OwnerID selects the keys of one owner.
	OwnerID string
	Status  Status
	// Limit is the page size (1–1000; 0 means the server's default, 100).
	Limit int
	// Cursor starts at a page a previous Page.NextCursor named.
	Cursor string
}

// ExpiringParams select the keys ExpiringKeys returns, soonest first.
type ExpiringParams struct {
	ProjectID     string
	EnvironmentID string
	// WithinDays is the window from now (0 means the server's default, 30).
	WithinDays int
	Limit      int
	Cursor     string
}

// AuditParams select the events AuditEvents returns, newest first.
type AuditParams struct {
	// ProjectID is the project whose events to list. Empty: an API key's
	// own project; for the admin token and root keys holding
	// root-keys:read, the events of no project (the changes to root keys).
	ProjectID     string
	EnvironmentID string
	KeyID         string
	// Action is one of api_key.created, api_key.updated, api_key.revoked,
	// api_key.rotated, api_key.rotation_failed, api_key.disabled,
	// api_key.enabled, api_key.imported, api_key.credits_adjusted,
	// root_key.created, root_key.updated, root_key.revoked,
	// root_key.rotated, owner.updated, owner.deleted.
	Action string
	Limit  int
	Cursor string
}

// ImportParams are keys to import into a project: 1–1000 of them.
type ImportParams struct {
	ProjectID string      `json:"project_id"`
	Keys      []ImportKey `json:"keys"`
}

// ImportKey is one key to import: its plaintext (Key) or the hash of it
// (Hash, "sha256:<64 lowercase hex>"), and the fields a new key has.
type ImportKey struct {
	Name          string          `json:"name"`
	Key           string          `json:"key,omitempty"`
	Hash          string          `json:"hash,omitempty"`
	KeyPrefix     string          `json:"key_prefix,omitempty"`
	Scopes        []string        `json:"scopes,omitempty"`
	EnvironmentID string          `json:"environment_id,omitempty"`
	ExpiresAt     time.Time       `json:"expires_at,omitzero"`
	OwnerID       string          `json:"owner_id,omitempty"`
	Meta          json.RawMessage `json:"meta,omitempty"`
	IPAllowlist   []string        `json:"ip_allowlist,omitempty"`
}
