package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// A cursor is opaque to clients and tamper-evident (SPEC §12): base64url
// of "<unix microseconds>.<id>" followed by a 16-byte HMAC-SHA256 tag over
// the listing it was returned for and that position. A cursor edited,
// forged, or taken from another listing (another route, project or
// filter) fails the tag and is 400. The page size is not part of the
// listing: a client may change it between pages.

// cursorTagSize is the length of a cursor's tag: 128 bits.
const cursorTagSize = 16

// listing is one listing a cursor belongs to: the route (by name, so that
// aliases of one route share cursors), the filters that select its items,
// and the path its Link points to.
type listing struct {
	route   string
	path    string
	filters url.Values
}

// cursors signs and checks the cursors of every listing.
type cursors struct{ key []byte }

// newCursors returns cursors signed with key, or with a random key (valid
// for this process only) when key is empty.
func newCursors(key []byte) cursors {
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key) // never fails (crypto/rand)
	}
	return cursors{key: key}
}

func (c cursors) tag(l listing, pos []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(l.route))
	m.Write([]byte{0})
	m.Write([]byte(l.filters.Encode())) // sorted by name: one text per listing
	m.Write([]byte{0})
	m.Write(pos)
	return m.Sum(nil)[:cursorTagSize]
}

func (c cursors) encode(l listing, cur *apikey.Cursor) string {
	pos := []byte(strconv.FormatInt(cur.Time.UnixMicro(), 10) + "." + cur.ID)
	return base64.RawURLEncoding.EncodeToString(append(pos, c.tag(l, pos)...))
}

// decode returns the position of a cursor of l; nil for "".
func (c cursors) decode(l listing, s string) (*apikey.Cursor, error) {
	if s == "" {
		return nil, nil
	}
	bad := apikey.Invalid("the request is invalid", apikey.FieldError{Field: "cursor", Message: "is not a cursor this API returned for this listing"})
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) <= cursorTagSize {
		return nil, bad
	}
	pos, tag := raw[:len(raw)-cursorTagSize], raw[len(raw)-cursorTagSize:]
	if !hmac.Equal(tag, c.tag(l, pos)) {
		return nil, bad
	}
	us, id, ok := strings.Cut(string(pos), ".")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil || id == "" || len(id) > 64 {
		return nil, bad // signed by us, so never; checked all the same
	}
	return &apikey.Cursor{Time: time.UnixMicro(n).UTC(), ID: id}, nil
}

// nextLink returns the Link header pointing at the page after next, keeping
// the listing's filters and the page size; "" when there is no next page.
// The target is a path-absolute reference, resolved against the request's
// own URL, so it stays right behind proxies that rewrite the host.
func (c cursors) nextLink(l listing, limit int, next *apikey.Cursor) string {
	if next == nil {
		return ""
	}
	q := url.Values{}
	for k, v := range l.filters {
		q[k] = v
	}
	q.Set("limit", strconv.Itoa(limit))
	q.Set("cursor", c.encode(l, next))
	return "<" + l.path + "?" + q.Encode() + `>; rel="next"`
}

// query collects non-empty parameters: the filters of a listing.
func query(pairs ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			q.Set(pairs[i], pairs[i+1])
		}
	}
	return q
}

// listProject is the project a listing is of: the one asked for, or, when
// none is, the bearer's own (SPEC §12: Strait's CLI lists without
// project_id). The admin token has no project of its own and must name one.
func listProject(p apikey.Principal, asked string) (string, error) {
	if asked != "" {
		return asked, nil
	}
	if p.Admin || p.ProjectID == "" {
		return "", apikey.Invalid("the request is invalid", apikey.FieldError{Field: "project_id", Message: msgProjectRequired})
	}
	return p.ProjectID, nil
}

// msgProjectRequired is what a listing without project_id by the admin
// says, as huma said it when the parameter was required of everyone.
const msgProjectRequired = "required query parameter is missing"

// auditProject is listProject for the audit log, which has one more
// listing: without project_id, a caller holding root-keys:read (the admin,
// a root key) lists the events of no project — the changes to root keys
// (noProject). Others default as listProject says.
func auditProject(p apikey.Principal, asked string) (project string, noProject bool, err error) {
	if asked == "" && p.Allows(apikey.ScopeRootRead) {
		return "", true, nil
	}
	project, err = listProject(p, asked)
	return project, false, err
}
