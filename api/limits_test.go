package api

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/service"
)

// padded returns the JSON object obj padded with spaces before its closing
// brace to exactly n bytes.
func padded(obj string, n int) []byte {
	return []byte(obj[:len(obj)-1] + strings.Repeat(" ", n-len(obj)) + "}")
}

// TestBodyLimit: on every route with a body, a body of exactly 1 MiB is
// read and judged on its content, and one byte more is 413 and changes
// nothing.
func TestBodyLimit(t *testing.T) {
	f := newFixture(t, 100)
	patched := f.create(t, service.CreateInput{ProjectID: "p1", Name: "patched"})
	rotated := f.create(t, service.CreateInput{ProjectID: "p1", Name: "rotated"})
	kept := f.create(t, service.CreateInput{ProjectID: "p1", Name: "kept"})
	for _, tc := range []struct {
		name, method, path string
		body               string
		status             int
	}{
		{"Create", http.MethodPost, "/v1/api-keys", `{"project_id":"p1","name":"at-limit"}`, http.StatusCreated},
		{"Patch", http.MethodPatch, "/v1/api-keys/" + patched.Key.ID, `{"name":"at-limit"}`, http.StatusOK},
		{"Rotate", http.MethodPost, "/v1/api-keys/" + rotated.Key.ID + "/rotate", `{"grace_period_minutes":5}`, http.StatusCreated},
		{"Verify", http.MethodPost, "/v1/api-keys/verify", `{"key":"x"}`, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := f.do(t, tc.method, tc.path, f.admin, padded(tc.body, MaxBodyBytes))
			if status != tc.status {
				t.Fatalf("exactly %d bytes: %d %s, want %d", MaxBodyBytes, status, body, tc.status)
			}
			for _, n := range []int{MaxBodyBytes + 1, 3 * MaxBodyBytes} {
				status, body = f.do(t, tc.method, tc.path, f.admin, padded(tc.body, n))
				var p Problem
				if err := json.Unmarshal(body, &p); err != nil || status != http.StatusRequestEntityTooLarge ||
					p.Type != "urn:apikeyd:problem:too-large" || p.Detail != "request body is too large limit=1048576 bytes" {
					t.Fatalf("%d bytes: %d %s, want 413 naming the 1048576-byte limit", n, status, body)
				}
			}
		})
	}
	// What the over-limit bodies asked for did not happen: the limit-sized
	// ones did, once.
	keys, _, err := f.svc.List(t.Context(), apikey.AdminPrincipal, service.ListInput{ProjectID: "p1", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]int{}
	for _, k := range keys {
		names[k.Name]++
	}
	// patched renamed once, one created, rotated + its replacement, kept.
	if len(keys) != 5 || names["at-limit"] != 2 || names["rotated"] != 2 || names["kept"] != 1 {
		t.Fatalf("keys after the limit tests: %v", names)
	}
	if k, _ := f.svc.Get(t.Context(), apikey.AdminPrincipal, kept.Key.ID); k.ReplacedByKeyID != "" {
		t.Fatal("kept was changed")
	}
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestVerifyReadBody: the verify handler's reader takes a body of exactly
// MaxBodyBytes, and of a larger one reads and buffers no more than one
// byte past the limit, however the body arrives.
func TestVerifyReadBody(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		wrap func(io.Reader) io.Reader
	}{
		{"OK/Small", 100, func(r io.Reader) io.Reader { return r }},
		{"OK/AtLimit", MaxBodyBytes, func(r io.Reader) io.Reader { return r }},
		{"OK/AtLimitHalfReads", MaxBodyBytes, iotest.HalfReader},
		{"OK/AtLimitDataErr", MaxBodyBytes, iotest.DataErrReader},
		{"ErrOverByOne", MaxBodyBytes + 1, func(r io.Reader) io.Reader { return r }},
		{"ErrOverByOneDataErr", MaxBodyBytes + 1, iotest.DataErrReader},
		{"ErrHuge", 64 * MaxBodyBytes, func(r io.Reader) io.Reader { return r }},
		{"ErrHugeHalfReads", 64 * MaxBodyBytes, iotest.HalfReader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &countingReader{r: io.LimitReader(zeros{}, int64(tc.size))}
			vb := verifyBufs.New().(*verifyBuf) // as the handler gets it
			body, err := vb.readBody(tc.wrap(src))
			over := tc.size > MaxBodyBytes
			if over {
				p, ok := err.(*Problem)
				if !ok || p.Status != http.StatusRequestEntityTooLarge {
					t.Fatalf("%d bytes: %v, want 413", tc.size, err)
				}
			} else if err != nil || len(body) != tc.size {
				t.Fatalf("%d bytes: read %d, %v", tc.size, len(body), err)
			}
			if src.n > MaxBodyBytes+1 {
				t.Fatalf("read %d bytes of the body, want at most %d", src.n, MaxBodyBytes+1)
			}
			if cap(vb.body) > MaxBodyBytes {
				t.Fatalf("buffered %d bytes, want at most %d", cap(vb.body), MaxBodyBytes)
			}
		})
	}
}

// zeros is an endless body of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestKeyIDPath: a key ID in the path is not a JSON field but a name to
// look up, so an ID of any shape or length, up to one that fills most of
// the request line, is 404 like any unknown key.
func TestKeyIDPath(t *testing.T) {
	f := newFixture(t, 100)
	k := f.create(t, service.CreateInput{ProjectID: "p1", Name: "k"})
	for _, id := range []string{
		"key_0000000000000000000000000a", // the shape of an ID, but unknown
		strings.Repeat("k", 64),
		strings.Repeat("k", 65),
		k.Key.ID + "0",
		strings.Repeat("x", 10<<10),
		strings.Repeat("%C3%A9", 5<<10),
	} {
		for _, tc := range []struct {
			method, path string
			body         []byte
		}{
			{http.MethodGet, "/v1/api-keys/" + id, nil},
			{http.MethodPatch, "/v1/api-keys/" + id, []byte(`{"name":"n"}`)},
			{http.MethodDelete, "/v1/api-keys/" + id, nil},
			{http.MethodPost, "/v1/api-keys/" + id + "/rotate", []byte(`{}`)},
		} {
			status, body := f.do(t, tc.method, tc.path, f.admin, tc.body)
			var p Problem
			if err := json.Unmarshal(body, &p); err != nil || status != http.StatusNotFound ||
				p.Type != "urn:apikeyd:problem:not-found" || len(p.Errors) != 0 || len(body) > 200 {
				t.Fatalf("%s with a %d-character ID: %d %.300s, want a short 404 problem", tc.method, len(id), status, body)
			}
		}
	}
	// The key itself is untouched.
	if got, err := f.svc.Get(t.Context(), apikey.AdminPrincipal, k.Key.ID); err != nil || got.Name != "k" || !got.RevokedAt.IsZero() {
		t.Fatalf("key after the lookups: %+v, %v", got, err)
	}
}
