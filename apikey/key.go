package apikey

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// Key is an API key as the store keeps it: everything but the plaintext.
//
// Unset times are the zero time and unset strings are empty; the api package
// renders both as JSON null.
type Key struct {
	ID            string
	ProjectID     string
	EnvironmentID string
	Name          string
	// KeyPrefix is the first KeyPrefixLen characters of the plaintext.
	KeyPrefix string
	// Hash is the SHA-256 of the plaintext, the only form in which the key
	// itself is stored.
	Hash   Hash
	Scopes []string
	// OwnerID is the customer's user, team or service account the key
	// belongs to (ValidOwnerID); empty for none.
	OwnerID string
	// Meta is the key's meta as compact JSON (CompactMeta), handed to every
	// verifier; nil for none.
	Meta []byte
	// IPAllowlist is where the key may be used from; nil for anywhere.
	IPAllowlist Allowlist

	ExpiresAt  time.Time
	LastUsedAt time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
	RevokedAt  time.Time
	// RevocationReason is why a revoked key was revoked; empty otherwise.
	RevocationReason RevocationReason
	// DisabledAt is set while the key is disabled, with the reason given
	// (possibly empty); enabling clears both.
	DisabledAt     time.Time
	DisabledReason string
	// Source is where the key came from; empty means SourceIssued.
	Source Source

	// ReplacedByKeyID is set once the key has been rotated; the key keeps
	// working until GraceExpiresAt.
	ReplacedByKeyID string
	GraceExpiresAt  time.Time
	// ReplacesKeyID links a replacement back to the key it replaced.
	ReplacesKeyID string

	// RotationIntervalDays > 0 schedules automatic rotation at NextRotationAt.
	RotationIntervalDays int
	NextRotationAt       time.Time
	RotationWebhookURL   string
	// WebhookSecretSealed is the rotation webhook secret, encrypted with the
	// master key. Nil when the key has no webhook.
	WebhookSecretSealed []byte

	// LineageID names the allowance the key draws on (SPEC §10): a new
	// key's is its own ID, a replacement's its predecessor's, so that old
	// and new key in grace share one balance and the same windows.
	LineageID string
	// RateLimits are the key's limits (nil: none). HasCredits says the key
	// has a balance, kept by the usage store under Subject (false:
	// unlimited).
	RateLimits []RateLimit
	HasCredits bool

	// Version increases by one with every change to the key's stored state
	// (last use excepted). Caches stamp their copies with it so that an older
	// read can never overwrite a newer one.
	Version int64
}

// Status is the lifecycle state of a key at a given instant.
type Status string

// Key statuses, in the order Key.Status decides them.
const (
	StatusActive   Status = "active"
	StatusRotating Status = "rotating" // replaced, still within its grace period
	StatusRotated  Status = "rotated"  // replaced, grace period over
	StatusExpired  Status = "expired"
	StatusRevoked  Status = "revoked"
	StatusDisabled Status = "disabled" // disabled, and neither revoked, expired nor rotated
)

// ParseStatus returns the status named s, or false.
func ParseStatus(s string) (Status, bool) {
	switch st := Status(s); st {
	case StatusActive, StatusRotating, StatusRotated, StatusExpired, StatusRevoked, StatusDisabled:
		return st, true
	}
	return "", false
}

// Status returns the key's state at now. Revocation wins over everything,
// then expiry, then the end of rotation, then disabling (SPEC §9), then a
// rotation in progress.
func (k *Key) Status(now time.Time) Status {
	switch {
	case !k.RevokedAt.IsZero():
		return StatusRevoked
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return StatusExpired
	case k.ReplacedByKeyID != "" && !now.Before(k.GraceExpiresAt):
		return StatusRotated
	case !k.DisabledAt.IsZero():
		return StatusDisabled
	case k.ReplacedByKeyID != "":
		return StatusRotating
	}
	return StatusActive
}

// SubjectPrefix starts the usage subject of a key's lineage.
const SubjectPrefix = "key:"

// Subject is the usage subject (docs/limits.md) of the key's lineage: its
// rate-limit windows and its balance. A key written without a lineage
// (by a tool that inserts keys straight into the store) is its own.
func (k *Key) Subject() string { return SubjectPrefix + cmp.Or(k.LineageID, k.ID) }

// Record returns what a verification needs to know about the key.
func (k *Key) Record() Record {
	return Record{
		ID:             k.ID,
		ProjectID:      k.ProjectID,
		EnvironmentID:  k.EnvironmentID,
		Name:           k.Name,
		Scopes:         k.Scopes,
		ExpiresAt:      k.ExpiresAt,
		RevokedAt:      k.RevokedAt,
		Replaced:       k.ReplacedByKeyID != "",
		GraceExpiresAt: k.GraceExpiresAt,
		Version:        k.Version,
		OwnerID:        k.OwnerID,
		Meta:           string(k.Meta),
		Allowlist:      k.IPAllowlist,
		Disabled:       !k.DisabledAt.IsZero(),
		Subject:        k.Subject(),
		RateLimits:     k.RateLimits,
		HasCredits:     k.HasCredits,
	}
}

// SourceOrIssued is the key's Source, SourceIssued when unset.
func (k *Key) SourceOrIssued() Source {
	if k.Source == "" {
		return SourceIssued
	}
	return k.Source
}

// Clone returns a deep copy of k, so that a caller may change it without
// touching a shared value.
func (k *Key) Clone() *Key {
	c := *k
	c.Scopes = append([]string(nil), k.Scopes...)
	if k.WebhookSecretSealed != nil {
		c.WebhookSecretSealed = append([]byte(nil), k.WebhookSecretSealed...)
	}
	if k.Meta != nil {
		c.Meta = append([]byte(nil), k.Meta...)
	}
	if k.IPAllowlist != nil {
		c.IPAllowlist = slices.Clone(k.IPAllowlist)
	}
	if k.RateLimits != nil {
		c.RateLimits = slices.Clone(k.RateLimits)
	}
	return &c
}

// Limits of the key object, from SPEC §5.
const (
	MaxNameLen           = 255
	MaxExpiresInDays     = 36500
	MaxRotationDays      = 36500
	MaxGraceMinutes      = 10080
	DefaultGraceMinutes  = 60
	MaxWebhookURLLen     = 2048
	MaxIdentifierLen     = 128
	DefaultListLimit     = 100
	MaxListLimit         = 1000
	DefaultExpiringDays  = 30
	MaxExpiringDays      = 36500
	MaxPresentedKeyBytes = 512
)

// ValidIdentifier reports whether s may be used as a project or environment
// ID: 1–128 characters of [A-Za-z0-9_.:-]. Customers bring their own IDs, so
// the rule is the same generous one as for scopes, minus wildcards.
func ValidIdentifier(s string) bool {
	if len(s) == 0 || len(s) > MaxIdentifierLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !identChar(s[i]) {
			return false
		}
	}
	return true
}

func identChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == ':' || c == '-'
}

// The settable fields of a key. A plain new field is declared here: in Key
// above, in KeyInput (set at creation) and KeyPatch (changed by PATCH) with
// their checks, and in auditFields (recorded by audit events). The service
// passes these types through; the API decodes into them; each store maps
// the Key field once.

// KeyInput is what the creator of a key chooses. Pointers are nil when the
// field was not given.
type KeyInput struct {
	ProjectID            string
	Name                 string
	Scopes               []string
	ExpiresInDays        *int
	ExpiresAt            *time.Time
	EnvironmentID        *string
	RotationIntervalDays *int
	RotationWebhookURL   *string
	OwnerID              *string
	// Meta is the raw JSON given; nil or JSON null for none.
	Meta json.RawMessage
	// IPAllowlist is nil for any address.
	IPAllowlist *[]string
	RateLimits  []RateLimit
	// Credits is the key's starting balance; nil means unlimited. The
	// service puts it in the usage store with the key.
	Credits *Credits
}

// NewKey checks in and returns the key it describes at now: every field a
// creator sets, and the times that follow from them. Identity (ID, prefix,
// hash) and secrets are the caller's to add. env is the environment of a
// key whose input names none. The field errors come all at once, in field
// order; the caller may add its own before making them an error with
// InvalidFields.
func (in *KeyInput) NewKey(now time.Time, env string) (*Key, []FieldError) {
	var bad problems
	bad.identifier("project_id", in.ProjectID)
	bad.name("name", in.Name)
	scopes, serr := ValidateScopes("scopes", in.Scopes)
	bad.fromError(serr)
	k := &Key{ProjectID: in.ProjectID, EnvironmentID: env, Name: in.Name, Scopes: scopes, CreatedAt: now, UpdatedAt: now}
	switch {
	case in.ExpiresInDays != nil && in.ExpiresAt != nil:
		bad.add("expires_at", "give expires_in_days or expires_at, not both")
	case in.ExpiresInDays != nil:
		bad.days("expires_in_days", *in.ExpiresInDays, MaxExpiresInDays)
		k.ExpiresAt = now.Add(time.Duration(*in.ExpiresInDays) * Day)
	case in.ExpiresAt != nil:
		k.ExpiresAt = in.ExpiresAt.UTC().Truncate(time.Microsecond)
		bad.future("expires_at", k.ExpiresAt, now)
	}
	if in.EnvironmentID != nil {
		bad.identifier("environment_id", *in.EnvironmentID)
		k.EnvironmentID = *in.EnvironmentID
	}
	if in.RotationIntervalDays != nil {
		k.RotationIntervalDays = *in.RotationIntervalDays
		bad.days("rotation_interval_days", k.RotationIntervalDays, MaxRotationDays)
		if in.RotationWebhookURL == nil {
			bad.add("rotation_webhook_url", "is required with rotation_interval_days")
		}
		k.NextRotationAt = now.Add(time.Duration(k.RotationIntervalDays) * Day)
	}
	if in.RotationWebhookURL != nil {
		k.RotationWebhookURL = *in.RotationWebhookURL
	}
	if in.OwnerID != nil {
		bad.ownerID("owner_id", *in.OwnerID)
		k.OwnerID = *in.OwnerID
	}
	k.Meta = bad.meta("meta", in.Meta)
	if in.IPAllowlist != nil {
		k.IPAllowlist = bad.allowlist("ip_allowlist", *in.IPAllowlist)
	}
	k.Source = SourceIssued
	bad = append(bad, ValidateRateLimits("ratelimits", in.RateLimits)...)
	bad = append(bad, in.Credits.Validate("credits")...)
	k.RateLimits, k.HasCredits = in.RateLimits, in.Credits != nil
	return k, bad
}

// ownerID records an error unless s is a valid owner_id.
func (p *problems) ownerID(field, s string) {
	if !ValidOwnerID(s) {
		p.add(field, MsgOwnerID)
	}
}

// meta records an error unless raw is a JSON object fit to be meta, and
// returns its compact form; nil for none (absent or JSON null).
func (p *problems) meta(field string, raw json.RawMessage) []byte {
	if len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil
	}
	m, err := CompactMeta(raw)
	if err != nil {
		p.add(field, err.Error())
	}
	return m
}

// allowlist records the errors of entries, naming each bad one
// (ip_allowlist[3]), and returns the list they make.
func (p *problems) allowlist(field string, entries []string) Allowlist {
	l, bad, err := ParseAllowlist(entries)
	if err != nil {
		p.add(field, err.Error())
	}
	for i := range entries {
		if msg, ok := bad[i]; ok {
			p.add(field+"["+strconv.Itoa(i)+"]", msg)
		}
	}
	return l
}

// Day is the unit of the key's day counts.
const Day = 24 * time.Hour

// KeyPatch is a partial update of a key: each field absent, null (clear)
// or a value.
type KeyPatch struct {
	Name                 Optional[string]
	Scopes               Optional[[]string]
	ExpiresAt            Optional[time.Time]
	RotationIntervalDays Optional[int]
	RotationWebhookURL   Optional[string]
	// NextRotationAt moves the next scheduled rotation; null is absent.
	NextRotationAt Optional[time.Time]
	// OwnerID: null removes the owner.
	OwnerID Optional[string]
	// Meta replaces the meta whole; null clears it. Check compacts it.
	Meta Optional[json.RawMessage]
	// IPAllowlist replaces the list; null allows every address.
	IPAllowlist Optional[[]string]
	// RateLimits replaces the key's limits; null removes them.
	RateLimits Optional[[]RateLimit]
	// Credits redefines the key's balance (the service puts it in the
	// usage store); null makes credits unlimited.
	Credits Optional[Credits]
}

// Check checks the rules of p that do not depend on the key, at now, and
// normalises what it accepts (scopes, times).
func (p *KeyPatch) Check(now time.Time) []FieldError {
	var bad problems
	bad.notNull("name", p.Name.Null)
	bad.notNull("scopes", p.Scopes.Null)
	if p.Name.Valid() {
		bad.name("name", p.Name.Value)
	}
	if p.Scopes.Valid() {
		scopes, serr := ValidateScopes("scopes", p.Scopes.Value)
		bad.fromError(serr)
		p.Scopes.Value = scopes
	}
	if p.ExpiresAt.Valid() {
		p.ExpiresAt.Value = p.ExpiresAt.Value.UTC().Truncate(time.Microsecond)
		bad.future("expires_at", p.ExpiresAt.Value, now)
	}
	if p.RotationIntervalDays.Valid() {
		bad.days("rotation_interval_days", p.RotationIntervalDays.Value, MaxRotationDays)
	}
	if p.NextRotationAt.Valid() {
		p.NextRotationAt.Value = p.NextRotationAt.Value.UTC().Truncate(time.Microsecond)
	}
	if p.OwnerID.Valid() {
		bad.ownerID("owner_id", p.OwnerID.Value)
	}
	if p.Meta.Valid() {
		p.Meta.Value = bad.meta("meta", p.Meta.Value)
	}
	if p.IPAllowlist.Valid() {
		bad.allowlist("ip_allowlist", p.IPAllowlist.Value)
	}
	if p.RateLimits.Valid() {
		if p.RateLimits.Value == nil {
			p.RateLimits.Value = []RateLimit{}
		}
		bad = append(bad, ValidateRateLimits("ratelimits", p.RateLimits.Value)...)
	}
	if p.Credits.Valid() {
		bad = append(bad, p.Credits.Value.Validate("credits")...)
	}
	return bad
}

// Apply changes k as p (already checked) asks, at now, and returns the
// errors of the rules that depend on the key's state.
func (p *KeyPatch) Apply(k *Key, now time.Time) []FieldError {
	if p.Name.Valid() {
		k.Name = p.Name.Value
	}
	if p.Scopes.Valid() {
		k.Scopes = p.Scopes.Value
	}
	if p.ExpiresAt.Set {
		k.ExpiresAt = value(p.ExpiresAt)
	}
	if p.RotationWebhookURL.Set {
		k.RotationWebhookURL = value(p.RotationWebhookURL)
	}
	if p.OwnerID.Set {
		k.OwnerID = value(p.OwnerID)
	}
	if p.Meta.Set {
		k.Meta = value(p.Meta)
	}
	if p.IPAllowlist.Set {
		var discard problems // Check reported them
		k.IPAllowlist = nil
		if p.IPAllowlist.Valid() {
			k.IPAllowlist = discard.allowlist("ip_allowlist", p.IPAllowlist.Value)
		}
	}
	if p.RotationIntervalDays.Set {
		k.RotationIntervalDays = value(p.RotationIntervalDays)
		k.NextRotationAt = time.Time{}
		if p.RotationIntervalDays.Valid() {
			// The schedule counts from the key's creation; a key already
			// older than its new interval comes due at once.
			k.NextRotationAt = k.CreatedAt.Add(time.Duration(k.RotationIntervalDays) * Day)
			if k.NextRotationAt.Before(now) {
				k.NextRotationAt = now
			}
		}
	}
	if p.RateLimits.Set {
		k.RateLimits = value(p.RateLimits)
	}
	if p.Credits.Set {
		k.HasCredits = p.Credits.Valid()
	}
	var bad problems
	if p.NextRotationAt.Valid() {
		if k.RotationIntervalDays == 0 {
			bad.add("next_rotation_at", "the key has no rotation_interval_days")
		}
		k.NextRotationAt = p.NextRotationAt.Value
	}
	if k.RotationIntervalDays > 0 && k.RotationWebhookURL == "" {
		bad.add("rotation_webhook_url", "is required while rotation_interval_days is set")
	}
	return bad
}

// value is o's value, or the zero value (unset) when o is null.
func value[T any](o Optional[T]) T {
	var zero T
	if o.Null {
		return zero
	}
	return o.Value
}

// auditFields are the fields of a key that audit events record before and
// after a change, by their API names; unset values are nil.
var auditFields = []struct {
	name string
	get  func(k *Key) any
}{
	{"name", func(k *Key) any { return k.Name }},
	{"scopes", func(k *Key) any { return k.Scopes }},
	{"environment_id", func(k *Key) any { return orNil(k.EnvironmentID) }},
	{"expires_at", func(k *Key) any { return orNil(k.ExpiresAt) }},
	{"revoked_at", func(k *Key) any { return orNil(k.RevokedAt) }},
	{"replaced_by_key_id", func(k *Key) any { return orNil(k.ReplacedByKeyID) }},
	{"grace_expires_at", func(k *Key) any { return orNil(k.GraceExpiresAt) }},
	{"replaces_key_id", func(k *Key) any { return orNil(k.ReplacesKeyID) }},
	{"rotation_interval_days", func(k *Key) any { return orNil(k.RotationIntervalDays) }},
	{"next_rotation_at", func(k *Key) any { return orNil(k.NextRotationAt) }},
	{"rotation_webhook_url", func(k *Key) any { return orNil(k.RotationWebhookURL) }},
	{"owner_id", func(k *Key) any { return orNil(k.OwnerID) }},
	{"meta", func(k *Key) any {
		if k.Meta == nil {
			return nil
		}
		return json.RawMessage(k.Meta)
	}},
	{"ip_allowlist", func(k *Key) any {
		if k.IPAllowlist == nil {
			return nil
		}
		return k.IPAllowlist.Strings()
	}},
	{"disabled_at", func(k *Key) any { return orNil(k.DisabledAt) }},
	{"disabled_reason", func(k *Key) any { return orNil(k.DisabledReason) }},
	{"ratelimits", func(k *Key) any {
		if k.RateLimits == nil {
			return nil
		}
		return k.RateLimits
	}},
	{"has_credits", func(k *Key) any { return orNil(k.HasCredits) }},
}

func orNil[T comparable](v T) any {
	var zero T
	if v == zero {
		return nil
	}
	return v
}

// Diff returns the recorded fields (auditFields) that differ between
// before and after, with their values on each side; before nil means a new
// key, and then after holds every field that is set. Both maps are empty,
// not nil, when nothing changed.
func Diff(before, after *Key) (was, is map[string]any) {
	was, is = map[string]any{}, map[string]any{}
	for _, f := range auditFields {
		a := f.get(after)
		if before == nil {
			if a != nil && !isEmpty(a) {
				is[f.name] = a
			}
			continue
		}
		if b := f.get(before); !equalValue(b, a) {
			was[f.name], is[f.name] = b, a
		}
	}
	return was, is
}

func isEmpty(v any) bool {
	s, ok := v.([]string)
	return ok && len(s) == 0
}

func equalValue(a, b any) bool {
	switch a := a.(type) {
	case []string:
		b, ok := b.([]string)
		return ok && slices.Equal(a, b)
	case time.Time:
		b, ok := b.(time.Time)
		return ok && a.Equal(b)
	case json.RawMessage:
		b, ok := b.(json.RawMessage)
		return ok && bytes.Equal(a, b)
	case []RateLimit:
		b, ok := b.([]RateLimit)
		return ok && slices.Equal(a, b)
	}
	return a == b
}
