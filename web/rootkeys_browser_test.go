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
