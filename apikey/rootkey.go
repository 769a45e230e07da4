package apikey

import (
	"strconv"
	"strings"
	"time"
)

// IDKindRootKey starts the IDs of root keys (SPEC §8).
const IDKindRootKey = "root"

// RootKeyPrefix starts every root key. It is fixed, so that a root key can
// be told from a customer's key by its shape alone; APIKEYD_KEY_PREFIX may
// therefore not be the same.
const RootKeyPrefix = "apikeyd"

// RootKey is a credential of the platform itself (SPEC §8): a named, scoped
// stand-in for the admin token that acts in some projects, or in every one,
// with apikeyd's own permissions. Like Key, it is everything but the
// plaintext, and unset times and strings are zero.
type RootKey struct {
	ID   string
	Name string
	// KeyPrefix is the first KeyPrefixLen characters of the plaintext.
	KeyPrefix string
	// Hash is the SHA-256 of the plaintext.
	Hash Hash
	// Permissions are drawn from RootPermissions; see ValidatePermissions.
	Permissions []string
	// ProjectIDs are the projects the key acts in. Nil means every project,
	// present and future; an empty, non-nil list means none.
	ProjectIDs []string

	ExpiresAt  time.Time
	LastUsedAt time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
	RevokedAt  time.Time

	// ReplacedByKeyID is set once the key has been rotated; it keeps
	// working until GraceExpiresAt.
	ReplacedByKeyID string
	GraceExpiresAt  time.Time
	// ReplacesKeyID links a replacement back to the key it replaced.
	ReplacesKeyID string

	// CreatedBy is who created the key: the admin or another root key.
	CreatedBy Actor

	// Version increases by one with every change to the stored state (last
	// use excepted), as Key.Version does.
	Version int64
}

// Status returns the root key's state at now, decided exactly as for a
// key (Key.Status). Root keys cannot be disabled.
func (rk *RootKey) Status(now time.Time) Status {
	k := Key{RevokedAt: rk.RevokedAt, ExpiresAt: rk.ExpiresAt, ReplacedByKeyID: rk.ReplacedByKeyID, GraceExpiresAt: rk.GraceExpiresAt}
	return k.Status(now)
}

// AllProjects reports whether the key acts in every project.
func (rk *RootKey) AllProjects() bool { return rk.ProjectIDs == nil }

// Record returns what authenticating with the root key needs to know. The
// record is marked Root, so that it can never pass for a customer's key.
func (rk *RootKey) Record() Record {
	return Record{
		ID:             rk.ID,
		Name:           rk.Name,
		Scopes:         rk.Permissions,
		ExpiresAt:      rk.ExpiresAt,
		RevokedAt:      rk.RevokedAt,
		Replaced:       rk.ReplacedByKeyID != "",
		GraceExpiresAt: rk.GraceExpiresAt,
		Version:        rk.Version,
		Root:           true,
		ProjectIDs:     rk.ProjectIDs,
	}
}

// Clone returns a deep copy of rk that keeps nil ProjectIDs nil.
func (rk *RootKey) Clone() *RootKey {
	c := *rk
	c.Permissions = append([]string(nil), rk.Permissions...)
	if rk.ProjectIDs != nil {
		c.ProjectIDs = append([]string{}, rk.ProjectIDs...)
	}
	return &c
}

// Audit actions of root keys. Their events belong to no project
// (AuditEvent.ProjectID is empty) and their KeyID is the root key's.
const (
	ActionRootKeyCreated = "root_key.created"
	ActionRootKeyUpdated = "root_key.updated"
	ActionRootKeyRevoked = "root_key.revoked"
	ActionRootKeyRotated = "root_key.rotated"
)

// Root-key permissions: apikeyd's own scopes, plus those that govern root
// keys themselves.
const (
	ScopeAll       = "*"
	ScopeAPIKeys   = "api-keys:*"
	ScopeRootRead  = "root-keys:read"
	ScopeRootWrite = "root-keys:write"
	ScopeRootKeys  = "root-keys:*"
)

// RootPermissions is the whole vocabulary of root-key permissions.
var RootPermissions = []string{
	ScopeRead, ScopeWrite, ScopeVerify, ScopeAPIKeys,
	ScopeRootRead, ScopeRootWrite, ScopeRootKeys,
	ScopeAll,
}

// Limits of the root-key object.
const (
	MaxRootPermissions = 16
	// MaxRootProjects bounds project_ids; a platform with more projects
	// gives its key every project (null).
	MaxRootProjects = 100
)

// ValidatePermissions checks a root key's permission list — 1 to 16
// entries of RootPermissions — and returns it without duplicates, in the
// order given. field names the JSON field for error messages.
func ValidatePermissions(field string, perms []string) ([]string, *Error) {
	switch {
	case len(perms) == 0:
		return nil, Invalid("a root key needs at least one permission", FieldError{Field: field, Message: "at least 1 permission"})
	case len(perms) > MaxRootPermissions:
		return nil, Invalid("too many permissions", FieldError{Field: field, Message: "at most 16 permissions"})
	}
	out := make([]string, 0, len(perms))
	var bad []FieldError
	for i, p := range perms {
		if !knownPermission(p) {
			bad = append(bad, FieldError{
				Field:   field + "[" + strconv.Itoa(i) + "]",
				Message: "unknown permission; one of " + strings.Join(RootPermissions, ", "),
			})
			continue
		}
		if !contains(out, p) {
			out = append(out, p)
		}
	}
	if bad != nil {
		return nil, Invalid("invalid permissions", bad...)
	}
	return out, nil
}

// ValidateProjectIDs checks the projects of a root key: nil (every
// project) or 1–100 project IDs. It returns the list without duplicates,
// nil staying nil.
func ValidateProjectIDs(field string, ids []string) ([]string, *Error) {
	if ids == nil {
		return nil, nil
	}
	switch {
	case len(ids) == 0:
		return nil, Invalid("project_ids is empty", FieldError{Field: field, Message: "at least 1 project ID, or null for every project"})
	case len(ids) > MaxRootProjects:
		return nil, Invalid("too many projects", FieldError{Field: field, Message: "at most 100 project IDs, or null for every project"})
	}
	out := make([]string, 0, len(ids))
	var bad []FieldError
	for i, id := range ids {
		if !ValidIdentifier(id) {
			bad = append(bad, FieldError{
				Field:   field + "[" + strconv.Itoa(i) + "]",
				Message: "a project ID is 1-128 characters of A-Z a-z 0-9 _ . : -",
			})
			continue
		}
		if !contains(out, id) {
			out = append(out, id)
		}
	}
	if bad != nil {
		return nil, Invalid("invalid project IDs", bad...)
	}
	return out, nil
}

func knownPermission(p string) bool { return contains(RootPermissions, p) }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// GenerateRootKey returns a fresh random root key: RootKeyPrefix, then the
// same body as every key (GenerateKey).
func GenerateRootKey() (Secret, error) { return GenerateKey(RootKeyPrefix) }

// ParseRootKey reports whether s has the shape and checksum of a root key.
// It does no lookup. A root key also satisfies ParseKey; callers ask
// ParseRootKey first and send what it accepts to the root keys only.
func ParseRootKey(s string) bool {
	return len(s) == len(RootKeyPrefix)+1+bodyLen && strings.HasPrefix(s, RootKeyPrefix+"_") && ParseKey(s)
}

// Principal returns the principal a usable root key acts as.
func (rk *RootKey) Principal() Principal {
	r := rk.Record()
	return r.Principal()
}

// HoldsPermissions reports whether the principal may give a root key the
// permissions perms: the admin may give any; a root key only those it
// holds itself (write including read). No one else may manage root keys.
func (p Principal) HoldsPermissions(perms []string) bool {
	if p.Admin {
		return true
	}
	if !p.Root {
		return false
	}
	for _, want := range perms {
		if !holds(p.Scopes, want) {
			return false
		}
	}
	return true
}

// HoldsProjects reports whether the principal may give a root key the
// projects ids (nil: every project): the admin and a root key of every
// project may give any; a root key limited to projects only some of its
// own, and never every project.
func (p Principal) HoldsProjects(ids []string) bool {
	switch {
	case p.Admin:
		return true
	case !p.Root:
		return false
	case p.ProjectIDs == nil:
		return true
	case ids == nil:
		return false
	}
	for _, id := range ids {
		if !contains(p.ProjectIDs, id) {
			return false
		}
	}
	return true
}

// holds reports whether the permissions held grant want, a write
// permission granting the matching read.
func holds(held []string, want string) bool {
	switch {
	case anyCovers(held, want):
		return true
	case want == ScopeRead:
		return anyCovers(held, ScopeWrite)
	case want == ScopeRootRead:
		return anyCovers(held, ScopeRootWrite)
	}
	return false
}

// apikeydScope reports whether a customer key with scope s would hold one
// of apikeyd's own scopes: s is "*" or in the api-keys: namespace.
func apikeydScope(s string) bool { return s == ScopeAll || strings.HasPrefix(s, "api-keys:") }

// rootKeyScope reports whether s names a root-key permission, which only
// root keys and the admin ever hold.
func rootKeyScope(s string) bool { return strings.HasPrefix(s, "root-keys:") }
