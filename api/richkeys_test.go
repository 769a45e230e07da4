package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
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
