package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"time"
)

// Root-key permissions: apikeyd's own scopes, and those that govern root
// keys themselves. Write includes read.
const (
	PermissionRead          = "api-keys:read"
	PermissionWrite         = "api-keys:write"
	PermissionVerify        = "api-keys:verify"
	PermissionAPIKeys       = "api-keys:*"
	PermissionRootKeysRead  = "root-keys:read"
	PermissionRootKeysWrite = "root-keys:write"
	PermissionRootKeys      = "root-keys:*"
	PermissionAll           = "*"
)

// RootKey is a credential of the platform itself: a named, scoped stand-in
// for the admin token that acts in some projects (ProjectIDs) or, when
// ProjectIDs is nil, in every project, present and future.
type RootKey struct {
	ID              string     `json:"id"`
	Name            string     `json:"name"`
	KeyPrefix       string     `json:"key_prefix"`
	Permissions     []string   `json:"permissions"`
	ProjectIDs      []string   `json:"project_ids"`
	ExpiresAt       *time.Time `json:"expires_at"`
	LastUsedAt      *time.Time `json:"last_used_at"`
	CreatedAt       time.Time  `json:"created_at"`
	RevokedAt       *time.Time `json:"revoked_at"`
	ReplacedByKeyID *string    `json:"replaced_by_key_id"`
	GraceExpiresAt  *time.Time `json:"grace_expires_at"`
	CreatedBy       Actor      `json:"created_by"`
	Status          Status     `json:"status"`
}

// CreatedRootKey is the answer to CreateRootKey: the root key and its
// plaintext, shown this once.
type CreatedRootKey struct {
	RootKey
	// Secret is the root key itself (apikeyd_…). apikeyd keeps only its hash.
	Secret string `json:"key"`
}

// RotatedRootKey is the answer to RotateRootKey.
type RotatedRootKey struct {
	OldKeyID    string     `json:"old_key_id"`
	NewKeyID    string     `json:"new_key_id"`
	Name        string     `json:"name"`
	Secret      string     `json:"key"` // the new root key; shown this once
	KeyPrefix   string     `json:"key_prefix"`
	Permissions []string   `json:"permissions"`
	ProjectIDs  []string   `json:"project_ids"`
	ExpiresAt   *time.Time `json:"expires_at"`
	CreatedAt   time.Time  `json:"created_at"`
	// GraceExpiresAt is when the old root key stops working.
	GraceExpiresAt *time.Time `json:"grace_expires_at"`
}

// CreateRootKeyParams describe a root key to create. ProjectIDs nil means
// every project; the caller can only give permissions and projects it
// holds itself.
type CreateRootKeyParams struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	ProjectIDs  []string `json:"project_ids"`
	// ExpiresInDays or ExpiresAt (not both) give the root key an expiry.
	ExpiresInDays int       `json:"expires_in_days,omitempty"`
	ExpiresAt     time.Time `json:"expires_at,omitzero"`
}

// UpdateRootKeyParams are the changes to a root key; see UpdateParams for
// how fields are left, set and cleared. ProjectIDs: Null gives the key
// every project. ExpiresAt: Null removes the expiry.
type UpdateRootKeyParams struct {
	Name        Field[string]    `json:"name,omitzero"`
	Permissions Field[[]string]  `json:"permissions,omitzero"`
	ProjectIDs  Field[[]string]  `json:"project_ids,omitzero"`
	ExpiresAt   Field[time.Time] `json:"expires_at,omitzero"`
}

// RootKeyListParams select the root keys ListRootKeys returns, newest
// first.
type RootKeyListParams struct {
	Status Status
	Limit  int
	Cursor string
}

func (p RootKeyListParams) query() url.Values {
	q := url.Values{}
	addString(q, "status", string(p.Status))
	addInt(q, "limit", p.Limit)
	addString(q, "cursor", p.Cursor)
	return q
}

func rootKeyPath(id string) string { return "/v1/root-keys/" + url.PathEscape(id) }

// CreateRootKey issues a root key. The answer's Secret is the root key
// itself, shown this once. Needs root-keys:write (or the admin token).
func (c *Client) CreateRootKey(ctx context.Context, p CreateRootKeyParams) (*CreatedRootKey, error) {
	var out CreatedRootKey
	if _, err := c.do(ctx, http.MethodPost, c.endpoint("/v1/root-keys", nil), p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetRootKey returns the root key with the given ID. A root key outside
// the caller's projects is not found. Needs root-keys:read.
func (c *Client) GetRootKey(ctx context.Context, id string) (*RootKey, error) {
	if id == "" {
		return nil, errNoID
	}
	var out RootKey
	if _, err := c.do(ctx, http.MethodGet, c.endpoint(rootKeyPath(id), nil), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateRootKey changes the fields set in p and returns the root key as it
// is now. A revoked or replaced root key is a conflict. Needs
// root-keys:write.
func (c *Client) UpdateRootKey(ctx context.Context, id string, p UpdateRootKeyParams) (*RootKey, error) {
	if id == "" {
		return nil, errNoID
	}
	var out RootKey
	if _, err := c.do(ctx, http.MethodPatch, c.endpoint(rootKeyPath(id), nil), p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeRootKey revokes a root key at once, on every replica, ending any
// grace period. Revoking a revoked root key succeeds. Needs
// root-keys:write.
func (c *Client) RevokeRootKey(ctx context.Context, id string) error {
	if id == "" {
		return errNoID
	}
	_, err := c.do(ctx, http.MethodDelete, c.endpoint(rootKeyPath(id), nil), nil, nil)
	return err
}

// RotateRootKey issues a replacement of a root key; the old one keeps
// working for the grace period. Needs root-keys:write.
func (c *Client) RotateRootKey(ctx context.Context, id string, p RotateParams) (*RotatedRootKey, error) {
	if id == "" {
		return nil, errNoID
	}
	var out RotatedRootKey
	if _, err := c.do(ctx, http.MethodPost, c.endpoint(rootKeyPath(id)+"/rotate", nil), p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListRootKeys returns the root keys the caller may see, newest first,
// page after page. Needs root-keys:read.
func (c *Client) ListRootKeys(ctx context.Context, p RootKeyListParams) iter.Seq2[RootKey, error] {
	return all[RootKey](ctx, c, c.endpoint("/v1/root-keys", p.query()))
}

// ListRootKeysPage returns one page of ListRootKeys.
func (c *Client) ListRootKeysPage(ctx context.Context, p RootKeyListParams) (*Page[RootKey], error) {
	return page[RootKey](ctx, c, c.endpoint("/v1/root-keys", p.query()))
}
