package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// decodeKey decodes a key object answer, failing unless the status is want.
func decodeKey(t *testing.T, rec interface {
	Result() *http.Response
}, want int) map[string]any {
	t.Helper()
	res := rec.Result()
	defer res.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != want {
		t.Fatalf("status %d, want %d: %v", res.StatusCode, want, m)
	}
	return m
}

// TestOwnerID checks owner_id through create, get, patch (set, null) and
// the 400 for a bad value, which changes nothing.
func TestOwnerID(t *testing.T) {
	a := newTestAPI(t, slog.New(slog.DiscardHandler))
	created := decodeKey(t, serve(a, "POST", "/v1/api-keys", testAdmin,
		`{"project_id":"p","name":"k","owner_id":"user:42@acme.example"}`), http.StatusCreated)
	if created["owner_id"] != "user:42@acme.example" {
		t.Fatalf("created owner_id = %v", created["owner_id"])
	}
	id := created["id"].(string)
	if got := decodeKey(t, serve(a, "GET", "/v1/api-keys/"+id, testAdmin, ""), http.StatusOK); got["owner_id"] != "user:42@acme.example" {
		t.Fatalf("get owner_id = %v", got["owner_id"])
	}
	for _, body := range []string{`{"owner_id":"has space"}`, `{"owner_id":""}`} {
		decodeKey(t, serve(a, "PATCH", "/v1/api-keys/"+id, testAdmin, body), http.StatusBadRequest)
	}
	if got := decodeKey(t, serve(a, "PATCH", "/v1/api-keys/"+id, testAdmin, `{"owner_id":"team-7"}`), http.StatusOK); got["owner_id"] != "team-7" {
		t.Fatalf("patched owner_id = %v", got["owner_id"])
	}
	got := decodeKey(t, serve(a, "PATCH", "/v1/api-keys/"+id, testAdmin, `{"owner_id":null}`), http.StatusOK)
	if v, ok := got["owner_id"]; !ok || v != nil {
		t.Fatalf("cleared owner_id = %v (present %v)", v, ok)
	}
	decodeKey(t, serve(a, "POST", "/v1/api-keys", testAdmin, `{"project_id":"p","name":"k","owner_id":"a b"}`), http.StatusBadRequest)
}

// TestListByOwner checks the owner_id filter of the key listing, and that
// the filter is kept in the next page's link.
func TestListByOwner(t *testing.T) {
	a := newTestAPI(t, slog.New(slog.DiscardHandler))
	for _, owner := range []string{"alice", "bob", "alice"} {
		decodeKey(t, serve(a, "POST", "/v1/api-keys", testAdmin, `{"project_id":"p","name":"k","owner_id":"`+owner+`"}`), http.StatusCreated)
	}
	rec := serve(a, "GET", "/v1/api-keys?project_id=p&owner_id=alice&limit=1", testAdmin, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var page []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	if len(page) != 1 || page[0]["owner_id"] != "alice" {
		t.Fatalf("page = %v", page)
	}
	if link := rec.Header().Get("Link"); !strings.Contains(link, "owner_id=alice") {
		t.Fatalf("Link %q lost the owner filter", link)
	}
	if rec := serve(a, "GET", "/v1/api-keys?project_id=p&owner_id=a%20b", testAdmin, ""); rec.Code != http.StatusBadRequest {
		t.Fatalf("bad owner_id: status %d", rec.Code)
	}
}
