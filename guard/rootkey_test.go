package guard

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"

	"github.com/apikeyd/apikeyd/client"
)

// TestTwoCustomersOneRootKey is the documented set-up of a multi-customer
// API: one guard, configured with a verify-only root key of every project,
// accepts the keys of two customers (projects) and tells them apart by
// project; a key of neither, and the root key itself, is 401.
func TestTwoCustomersOneRootKey(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	rk, err := f.admin.CreateRootKey(ctx, client.CreateRootKeyParams{Name: "orders API", Permissions: []string{client.PermissionVerify}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(f.srv.URL, rk.Secret)
	if err != nil {
		t.Fatal(err)
	}
	h := New(c, Options{Logger: slog.New(slog.DiscardHandler)}).Require("orders:read")(sample)

	acme := f.create(t, client.CreateParams{ProjectID: "acme", Name: "acme prod", Scopes: []string{"orders:read"}})
	globex := f.create(t, client.CreateParams{ProjectID: "globex", Name: "globex ci", Scopes: []string{"orders:*"}})
	for _, k := range []*client.CreatedKey{acme, globex} {
		rec := call(h, "Bearer "+k.Secret)
		var got map[string]any
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil {
			t.Fatalf("%s: %d %s", k.ProjectID, rec.Code, rec.Body)
		}
		if got["project_id"] != k.ProjectID || got["key_id"] != k.ID {
			t.Fatalf("%s: identity %v", k.ProjectID, got)
		}
	}
	noScope := f.create(t, client.CreateParams{ProjectID: "acme", Name: "billing only", Scopes: []string{"billing:read"}})
	problemOf(t, call(h, "Bearer "+noScope.Secret), http.StatusForbidden)
	problemOf(t, call(h, "Bearer "+rk.Secret), http.StatusUnauthorized)

	// Revoking one customer's key refuses it on the next request; the
	// other customer is untouched.
	if err := f.admin.RevokeKey(ctx, acme.ID); err != nil {
		t.Fatal(err)
	}
	problemOf(t, call(h, "Bearer "+acme.Secret), http.StatusUnauthorized)
	if rec := call(h, "Bearer "+globex.Secret); rec.Code != http.StatusOK {
		t.Fatalf("globex after acme's revocation: %d %s", rec.Code, rec.Body)
	}
}
