package api

import (
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// Cursors are opaque to clients: base64url of "<unix microseconds>.<id>".

func encodeCursor(c *apikey.Cursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.Time.UnixMicro(), 10) + "." + c.ID))
}

func decodeCursor(s string) (*apikey.Cursor, error) {
	if s == "" {
		return nil, nil
	}
	bad := apikey.Invalid("the request is invalid", apikey.FieldError{Field: "cursor", Message: "is not a cursor this API returned"})
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	us, id, ok := strings.Cut(string(raw), ".")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil || id == "" || len(id) > 64 {
		return nil, bad
	}
	return &apikey.Cursor{Time: time.UnixMicro(n).UTC(), ID: id}, nil
}

// nextLink returns the Link header pointing at the page after next, keeping
// the request's other parameters; "" when there is no next page. The target
// is a path-absolute reference, resolved against the request's own URL, so
// it stays right behind proxies that rewrite the host.
func nextLink(path string, q url.Values, next *apikey.Cursor) string {
	if next == nil {
		return ""
	}
	q.Set("cursor", encodeCursor(next))
	return "<" + path + "?" + q.Encode() + `>; rel="next"`
}

// query collects non-empty parameters for nextLink.
func query(pairs ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			q.Set(pairs[i], pairs[i+1])
		}
	}
	return q
}
