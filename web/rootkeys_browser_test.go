package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/apikeyd/apikeyd/client"
)

// TestBrowserRootKeySession is an operator's session with a root key
// limited to one project: they sign in with it, see their project and not
// the other, cannot open the other project's page, see the root keys
// page; once the root key is revoked through the API, the session is gone
// on the next page.
func TestBrowserRootKeySession(t *testing.T) {
	ctx := tab(t)
	api := adminClient(t)
	mine, theirs := "browser-rk-mine", "browser-rk-theirs"
	for _, p := range []string{mine, theirs} {
		if _, err := api.CreateKey(t.Context(), client.CreateParams{ProjectID: p, Name: "key of " + p}); err != nil {
			t.Fatal(err)
		}
	}
	rk, err := api.CreateRootKey(t.Context(), client.CreateRootKeyParams{Name: "support desk",
		Permissions: []string{client.PermissionRead, client.PermissionRootKeysRead}, ProjectIDs: []string{mine}})
	if err != nil {
		t.Fatal(err)
	}

	do(t, ctx, chromedp.Navigate(srv.URL+"/ui/"), chromedp.WaitVisible(chromedp.ID("#token")))
	if st := submit(t, ctx, chromedp.SendKeys(chromedp.ID("#token"), rk.Secret+"\r")); st != http.StatusOK {
		t.Fatalf("sign-in with a root key led to %d", st)
	}
	wantText(t, ctx, "h1", "Projects")
	wantText(t, ctx, ".who", "support desk")
	html := pageHTML(t, ctx)
	if !strings.Contains(html, mine) || strings.Contains(html, theirs) {
		t.Fatalf("the projects page of a root key of %s shows:\n%s", mine, html)
	}
	if strings.Contains(html, rk.Secret) {
		t.Fatal("the page shows the root key")
	}

	// Its own project opens; the other is refused.
	if st := submit(t, ctx, chromedp.Navigate(srv.URL+"/ui/projects/"+mine+"/keys")); st != http.StatusOK {
		t.Fatalf("its own project: %d", st)
	}
	wantText(t, ctx, "main", "key of "+mine)
	if st := submit(t, ctx, chromedp.Navigate(srv.URL+"/ui/projects/"+theirs+"/keys")); st != http.StatusForbidden {
		t.Fatalf("another project's page: %d, want 403", st)
	}
	if html := pageHTML(t, ctx); strings.Contains(html, "key of "+theirs) {
		t.Fatal("the refused page shows the other project's key")
	}

	// The root keys page lists it, reached from the navigation.
	if st := submit(t, ctx, chromedp.Click(chromedp.CSS(`nav a[href="/ui/root-keys"]`))); st != http.StatusOK {
		t.Fatalf("root keys page: %d", st)
	}
	wantText(t, ctx, "main table", "support desk")
	wantText(t, ctx, "main table", rk.KeyPrefix)

	// Revoked through the API, the root key's session ends.
	if err := api.RevokeRootKey(t.Context(), rk.ID); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, chromedp.Navigate(srv.URL+"/ui/projects/"+mine+"/keys"), chromedp.WaitVisible(chromedp.ID("#token")))
	if html := pageHTML(t, ctx); strings.Contains(html, "key of "+mine) {
		t.Fatal("a revoked root key's session still shows the project")
	}
}

// TestBrowserCreateRootKey: the admin creates a verify-only root key of
// every project on the root keys page, copies it (shown once), and it
// verifies a customer's key through the API; a create without saying
// where the key acts is refused and creates nothing.
func TestBrowserCreateRootKey(t *testing.T) {
	ctx := tab(t)
	api := adminClient(t)
	browserSignIn(t, ctx)
	submit(t, ctx, chromedp.Click(chromedp.CSS(`nav a[href="/ui/root-keys"]`)))
	wantText(t, ctx, "h1", "Root keys")

	name := "browser gateway"
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("#name"), name),
		chromedp.Click(chromedp.CSS(`input[name=permission][value="api-keys:verify"]`)),
	)
	if st := submit(t, ctx, chromedp.Click(chromedp.CSS(`form[action="/ui/root-keys"] button[type=submit]`))); st != http.StatusBadRequest {
		t.Fatalf("create without projects led to %d, want 400", st)
	}
	wantText(t, ctx, "#rootkeys-error", "Say where the root key acts")
	for rk, err := range api.ListRootKeys(t.Context(), client.RootKeyListParams{}) {
		if err != nil || rk.Name == name {
			t.Fatalf("a refused create stored %+v (%v)", rk, err)
		}
	}

	do(t, ctx, chromedp.Click(chromedp.ID("#all_projects")))
	if st := submit(t, ctx, chromedp.Click(chromedp.CSS(`form[action="/ui/root-keys"] button[type=submit]`))); st != http.StatusOK {
		t.Fatalf("create led to %d", st)
	}
	wantText(t, ctx, "#secret-title", "copy it now")
	secret := run(t, ctx, chromedp.Value(chromedp.ID("#secret")))
	if !strings.HasPrefix(secret, "apikeyd_") {
		t.Fatalf("the page showed %q", secret)
	}
	k, err := api.CreateKey(t.Context(), client.CreateParams{ProjectID: "browser-rk-any", Name: "customer"})
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := client.New(srv.URL, secret)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := verifier.Verify(t.Context(), client.VerifyParams{Key: k.Secret}); err != nil || !v.Valid {
		t.Fatalf("the root key shown does not verify: %+v %v", v, err)
	}
	do(t, ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("h1")))
	if html := pageHTML(t, ctx); strings.Contains(html, secret) || strings.Contains(html, "secret-panel") {
		t.Fatal("the root key is still on the page after a reload")
	}
	wantText(t, ctx, "main table", name)

	// Revoke it: a wrong confirmation revokes nothing, its prefix does.
	var id, prefix string
	for rk, err := range api.ListRootKeys(t.Context(), client.RootKeyListParams{}) {
		if err != nil {
			t.Fatal(err)
		}
		if rk.Name == name {
			id, prefix = rk.ID, rk.KeyPrefix
		}
	}
	form := `form[action="/ui/root-keys/` + id + `/revoke"]`
	do(t, ctx, chromedp.SendKeys(chromedp.CSS(form+` input[name=confirm]`), "wrong"))
	if st := submit(t, ctx, chromedp.Click(chromedp.CSS(form+` button`))); st != http.StatusBadRequest {
		t.Fatalf("revoke with a wrong confirmation led to %d", st)
	}
	if rk, err := api.GetRootKey(t.Context(), id); err != nil || rk.Status != client.StatusActive {
		t.Fatalf("after a wrong confirmation: %+v %v", rk, err)
	}
	do(t, ctx, chromedp.SendKeys(chromedp.CSS(form+` input[name=confirm]`), prefix))
	if st := submit(t, ctx, chromedp.Click(chromedp.CSS(form+` button`))); st != http.StatusOK {
		t.Fatalf("revoke led to %d", st)
	}
	wantText(t, ctx, ".notice", "revoked")
	if rk, err := api.GetRootKey(t.Context(), id); err != nil || rk.Status != client.StatusRevoked {
		t.Fatalf("after the revocation: %+v %v", rk, err)
	}
	if _, err := verifier.Verify(t.Context(), client.VerifyParams{Key: k.Secret}); !client.IsUnauthorized(err) {
		t.Fatalf("the revoked root key still verifies: %v", err)
	}
}
