package client

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// errNoID is returned, without a request, for an empty key ID (which would
// otherwise address the list instead of a key).
var errNoID = errors.New("client: a key ID is required")

func keyPath(id string) string { return "/v1/api-keys/" + url.PathEscape(id) }

// CreateKey issues a key. The answer's Secret is the key itself, shown this
// once. Needs api-keys:write.
func (c *Client) CreateKey(ctx context.Context, p CreateParams) (*CreatedKey, error) {
	var out CreatedKey
	if _, err := c.do(ctx, http.MethodPost, c.endpoint("/v1/api-keys", nil), p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetKey returns the key with the given ID. A key the token may not see is
// not found. Needs api-keys:read.
func (c *Client) GetKey(ctx context.Context, id string) (*Key, error) {
	if id == "" {
		return nil, errNoID
	}
	var out Key
	if _, err := c.do(ctx, http.MethodGet, c.endpoint(keyPath(id), nil), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateKey changes the fields set in p and returns the key as it is now.
// A revoked or replaced key is a conflict. Needs api-keys:write.
func (c *Client) UpdateKey(ctx context.Context, id string, p UpdateParams) (*UpdatedKey, error) {
	if id == "" {
		return nil, errNoID
	}
	var out UpdatedKey
	if _, err := c.do(ctx, http.MethodPatch, c.endpoint(keyPath(id), nil), p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeKey revokes a key at once, ending any grace period. Revoking a
// revoked key succeeds. Needs api-keys:write.
func (c *Client) RevokeKey(ctx context.Context, id string) error {
	return c.RevokeKeyFor(ctx, id, "")
}

// RevokeKeyFor is RevokeKey for a reason: unspecified (also ""),
// key_compromise, superseded, privilege_withdrawn or
// cessation_of_operation. A repeated revoke keeps the first reason.
func (c *Client) RevokeKeyFor(ctx context.Context, id, reason string) error {
	if id == "" {
		return errNoID
	}
	var q url.Values
	if reason != "" {
		q = url.Values{"reason": {reason}}
	}
	_, err := c.do(ctx, http.MethodDelete, c.endpoint(keyPath(id), q), nil, nil)
	return err
}

// DisableKey pauses a key until EnableKey: it verifies as CodeDisabled and
// cannot be used as a bearer or rotated. reason (optional, at most 255
// characters) is shown as DisabledReason. Idempotent; a revoked key is a
// conflict. Needs api-keys:write.
func (c *Client) DisableKey(ctx context.Context, id, reason string) (*Key, error) {
	if id == "" {
		return nil, errNoID
	}
	var body any
	if reason != "" {
		body = map[string]string{"reason": reason}
	}
	var out Key
	if _, err := c.do(ctx, http.MethodPost, c.endpoint(keyPath(id)+"/disable", nil), body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EnableKey undoes DisableKey. Idempotent; a revoked key is a conflict.
// Needs api-keys:write.
func (c *Client) EnableKey(ctx context.Context, id string) (*Key, error) {
	if id == "" {
		return nil, errNoID
	}
	var out Key
	if _, err := c.do(ctx, http.MethodPost, c.endpoint(keyPath(id)+"/enable", nil), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RotateKey issues a replacement of a key; the old key keeps working for
// the grace period. Needs api-keys:write.
func (c *Client) RotateKey(ctx context.Context, id string, p RotateParams) (*Rotated, error) {
	if id == "" {
		return nil, errNoID
	}
	var out Rotated
	if _, err := c.do(ctx, http.MethodPost, c.endpoint(keyPath(id)+"/rotate", nil), p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AdjustCredits changes a key's balance (POST /v1/api-keys/{id}/credits)
// and returns what is left. Needs api-keys:write.
func (c *Client) AdjustCredits(ctx context.Context, id string, p CreditParams) (int64, error) {
	if id == "" {
		return 0, errNoID
	}
	var out struct {
		Remaining int64 `json:"remaining"`
	}
	if _, err := c.do(ctx, http.MethodPost, c.endpoint(keyPath(id)+"/credits", nil), p, &out); err != nil {
		return 0, err
	}
	return out.Remaining, nil
}

// Verify asks whether a presented key is valid, with the scopes and
// environment in p. The answer is a verdict, not an error: an invalid key
// is a Verdict with Valid false and a Code saying why. Needs
// api-keys:verify.
func (c *Client) Verify(ctx context.Context, p VerifyParams) (*Verdict, error) {
	var out Verdict
	if _, err := c.do(ctx, http.MethodPost, c.endpoint("/v1/api-keys/verify", nil), p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Health returns nil while the server process serves requests (GET
// /healthz). It needs no token.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, c.endpoint("/healthz", nil), nil, nil)
	return err
}

// Ready returns nil while the server can answer from its store (GET
// /readyz), and a 503 *Error otherwise. It needs no token.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, c.endpoint("/readyz", nil), nil, nil)
	return err
}

// Page is one page of a list, for callers that page by hand (a UI that
// shows one page at a time). NextCursor is empty on the last page; pass it
// as the Cursor of the params to get the next one.
type Page[T any] struct {
	Items      []T
	NextCursor string
}

// ListKeys returns every key of a project matching p, newest first,
// fetching page after page as the loop goes on. Stop the loop to stop
// fetching. Needs api-keys:read.
func (c *Client) ListKeys(ctx context.Context, p ListParams) iter.Seq2[Key, error] {
	return all[Key](ctx, c, c.endpoint("/v1/api-keys", p.query()))
}

// ListKeysPage returns one page of ListKeys.
func (c *Client) ListKeysPage(ctx context.Context, p ListParams) (*Page[Key], error) {
	return page[Key](ctx, c, c.endpoint("/v1/api-keys", p.query()))
}

// ExpiringKeys returns the usable keys of a project that expire within the
// window, soonest first, page after page. Needs api-keys:read.
func (c *Client) ExpiringKeys(ctx context.Context, p ExpiringParams) iter.Seq2[Key, error] {
	return all[Key](ctx, c, c.endpoint("/v1/api-keys/expiring", p.query()))
}

// ExpiringKeysPage returns one page of ExpiringKeys.
func (c *Client) ExpiringKeysPage(ctx context.Context, p ExpiringParams) (*Page[Key], error) {
	return page[Key](ctx, c, c.endpoint("/v1/api-keys/expiring", p.query()))
}

// AuditEvents returns a project's audit events, newest first, page after
// page. Needs api-keys:read.
func (c *Client) AuditEvents(ctx context.Context, p AuditParams) iter.Seq2[AuditEvent, error] {
	return all[AuditEvent](ctx, c, c.endpoint("/v1/audit-events", p.query()))
}

// AuditEventsPage returns one page of AuditEvents.
func (c *Client) AuditEventsPage(ctx context.Context, p AuditParams) (*Page[AuditEvent], error) {
	return page[AuditEvent](ctx, c, c.endpoint("/v1/audit-events", p.query()))
}

// page fetches one page at u.
func page[T any](ctx context.Context, c *Client, u *url.URL) (*Page[T], error) {
	items, next, err := fetch[T](ctx, c, u)
	if err != nil {
		return nil, err
	}
	p := &Page[T]{Items: items}
	if next != nil {
		p.NextCursor = next.Query().Get("cursor")
	}
	return p, nil
}

// fetch gets one page at u and the URL of the next one, from the Link
// header, or nil on the last page.
func fetch[T any](ctx context.Context, c *Client, u *url.URL) ([]T, *url.URL, error) {
	var items []T
	h, err := c.do(ctx, http.MethodGet, u, nil, &items)
	if err != nil {
		return nil, nil, err
	}
	next, err := c.nextURL(u, h.Values("Link"))
	if err != nil {
		return nil, nil, err
	}
	return items, next, nil
}

// all iterates over every item of every page from u on. An error ends the
// iteration after it is yielded.
func all[T any](ctx context.Context, c *Client, u *url.URL) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for u != nil {
			items, next, err := fetch[T](ctx, c, u)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			u = next
		}
	}
}

func addInt(q url.Values, name string, n int) {
	if n != 0 {
		q.Set(name, strconv.Itoa(n))
	}
}

func addString(q url.Values, name, s string) {
	if s != "" {
		q.Set(name, s)
	}
}

func (p ListParams) query() url.Values {
	q := url.Values{"project_id": {p.ProjectID}}
	addString(q, "environment_id", p.EnvironmentID)
	addString(q, "owner_id", p.OwnerID)
	addString(q, "status", string(p.Status))
	addInt(q, "limit", p.Limit)
	addString(q, "cursor", p.Cursor)
	return q
}

func (p ExpiringParams) query() url.Values {
	q := url.Values{"project_id": {p.ProjectID}}
	addString(q, "environment_id", p.EnvironmentID)
	addInt(q, "within_days", p.WithinDays)
	addInt(q, "limit", p.Limit)
	addString(q, "cursor", p.Cursor)
	return q
}

func (p AuditParams) query() url.Values {
	q := url.Values{}
	addString(q, "project_id", p.ProjectID)
	addString(q, "environment_id", p.EnvironmentID)
	addString(q, "key_id", p.KeyID)
	addString(q, "action", p.Action)
	addInt(q, "limit", p.Limit)
	addString(q, "cursor", p.Cursor)
	return q
}

// ImportKeys stores existing keys — by plaintext or by hash — all or none:
// an invalid item is an *Error naming it (keys[3].hash), a key that exists
// already or comes twice a conflict naming it. Needs api-keys:write.
func (c *Client) ImportKeys(ctx context.Context, p ImportParams) ([]Key, error) {
	var out struct {
		Keys []Key `json:"keys"`
	}
	if _, err := c.do(ctx, http.MethodPost, c.endpoint("/v1/api-keys/import", nil), p, &out); err != nil {
		return nil, err
	}
	return out.Keys, nil
}
