package apikey

import "time"

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

	ExpiresAt  time.Time
	LastUsedAt time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
	RevokedAt  time.Time

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
)

// ParseStatus returns the status named s, or false.
func ParseStatus(s string) (Status, bool) {
	switch st := Status(s); st {
	case StatusActive, StatusRotating, StatusRotated, StatusExpired, StatusRevoked:
		return st, true
	}
	return "", false
}

// Status returns the key's state at now. Revocation wins over everything,
// then expiry, then rotation.
func (k *Key) Status(now time.Time) Status {
	switch {
	case !k.RevokedAt.IsZero():
		return StatusRevoked
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return StatusExpired
	case k.ReplacedByKeyID != "" && !now.Before(k.GraceExpiresAt):
		return StatusRotated
	case k.ReplacedByKeyID != "":
		return StatusRotating
	}
	return StatusActive
}

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
	}
}

// Clone returns a deep copy of k, so that a caller may change it without
// touching a shared value.
func (k *Key) Clone() *Key {
	c := *k
	c.Scopes = append([]string(nil), k.Scopes...)
	if k.WebhookSecretSealed != nil {
		c.WebhookSecretSealed = append([]byte(nil), k.WebhookSecretSealed...)
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
