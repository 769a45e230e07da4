package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/apikeyd/apikeyd/client"
)

// The browser tests drive Debian's chromium, headless, against the real
// server of this package (TestMain): one browser for the whole package,
// one fresh browser context (its own cookies) per test. chromedp is told
// exactly which browser to run and never fetches one. Without chromium the
// tests skip, unless CI=true, where a missing browser fails them.

const chromiumPath = "/usr/bin/chromium"

var browser struct {
	once   sync.Once
	ctx    context.Context // the browser's first tab; nil if it did not start
	cancel func()
	err    error
}

// startBrowser launches chromium once for the package.
func startBrowser() {
	dir, err := os.MkdirTemp("", "apikeyd-chromium-")
	if err != nil {
		browser.err = err
		return
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		// Containers often have a small /dev/shm, which crashes tabs.
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(dir),
	)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	browser.cancel = func() {
		cancelCtx()
		cancelAlloc()
		os.RemoveAll(dir)
	}
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		browser.err = err
		return
	}
	browser.ctx = ctx
}

// stopBrowser ends the browser, if one ran (TestMain).
func stopBrowser() {
	if browser.cancel != nil {
		browser.cancel()
	}
}

// console collects what a tab reports that a user would never see but
// that means a page is broken: script errors, and content the page's
// Content-Security-Policy blocked.
type console struct {
	mu       sync.Mutex
	problems []string
}

func (c *console) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *cdplog.EventEntryAdded:
		if e := ev.Entry; e.Source == cdplog.EntrySourceSecurity || strings.Contains(e.Text, "Content Security Policy") {
			msg = fmt.Sprintf("%s: %s (%s)", e.Source, e.Text, e.URL)
		}
	case *cdpruntime.EventExceptionThrown:
		msg = "script error: " + ev.ExceptionDetails.Text
		if ex := ev.ExceptionDetails.Exception; ex != nil {
			msg += " " + ex.Description
		}
	}
	if msg != "" {
		c.mu.Lock()
		c.problems = append(c.problems, msg)
		c.mu.Unlock()
	}
}

func (c *console) report() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.problems...)
}

// tab returns a browser tab of its own (own cookies) for one test, with a
// deadline for everything the test does in it. The test fails if a page it
// showed had a script error or broke its Content-Security-Policy.
func tab(t *testing.T) context.Context {
	t.Helper()
	ctx, c := tabWithConsole(t)
	t.Cleanup(func() {
		for _, p := range c.report() {
			t.Errorf("the browser reported %s", p)
		}
	})
	return ctx
}

func tabWithConsole(t *testing.T) (context.Context, *console) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no browser at %s and CI=true: the browser tests must run (.ci/run installs chromium): %v", chromiumPath, err)
		}
		t.Skipf("no browser at %s (apt-get install chromium); skipping the browser test", chromiumPath)
	}
	browser.once.Do(startBrowser)
	if browser.err != nil {
		t.Fatalf("start chromium: %v", browser.err)
	}
	c := &console{}
	ctx, cancel := chromedp.NewContext(browser.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(c.listen))
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	return ctx, c
}

// TestBrowserConsoleCatchesCSPViolations makes sure the check of tab can
// fail: a script the page adds inline is blocked by the dashboard's CSP,
// and the tab reports it.
func TestBrowserConsoleCatchesCSPViolations(t *testing.T) {
	ctx, c := tabWithConsole(t)
	do(t, ctx, chromedp.Navigate(srv.URL+"/ui/"), chromedp.WaitVisible(chromedp.ID("#token")))
	ran := run(t, ctx, chromedp.Evaluate[bool](`(() => {
		window.inlineRan = false;
		const s = document.createElement("script");
		s.textContent = "window.inlineRan = true";
		document.body.appendChild(s);
		return window.inlineRan;
	})()`))
	if ran {
		t.Fatal("an inline script ran under the dashboard's CSP")
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(c.report()) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // the report arrives as an event
	}
	if got := c.report(); len(got) == 0 || !strings.Contains(strings.Join(got, " "), "Content Security Policy") {
		t.Fatalf("the blocked inline script was not reported: %q", got)
	}
}

// do runs browser steps, failing the test on an error.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// run runs one browser action and returns its value.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// submit runs a step that submits a form and waits for the page it leads
// to, returning that page's status.
func submit(t *testing.T, ctx context.Context, step chromedp.Action[chromedp.Void]) int64 {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, step)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Status
}

// pageHTML is the current page's markup.
func pageHTML(t *testing.T, ctx context.Context) string {
	t.Helper()
	return run(t, ctx, chromedp.OuterHTML(chromedp.CSS("html")))
}

// wantText fails unless the element sel holds want.
func wantText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	got := run(t, ctx, chromedp.Text(chromedp.CSS(sel)))
	if !strings.Contains(got, want) {
		t.Fatalf("%s says %q, want it to contain %q", sel, got, want)
	}
}

// browserSignIn signs the tab in with the admin token, by keyboard.
func browserSignIn(t *testing.T, ctx context.Context) {
	t.Helper()
	do(t, ctx, chromedp.Navigate(srv.URL+"/ui/"), chromedp.WaitVisible(chromedp.ID("#token")))
	if st := submit(t, ctx, chromedp.SendKeys(chromedp.ID("#token"), srv.AdminToken+"\r")); st != http.StatusOK {
		t.Fatalf("sign-in led to %d", st)
	}
	wantText(t, ctx, "h1", "Projects")
}

func TestBrowserSignIn(t *testing.T) {
	ctx := tab(t)
	do(t, ctx, chromedp.Navigate(srv.URL+"/ui/"), chromedp.WaitVisible(chromedp.ID("#token")))
	if st := submit(t, ctx, chromedp.SendKeys(chromedp.ID("#token"), "not-the-admin-token\r")); st != http.StatusUnauthorized {
		t.Fatalf("a wrong token led to %d, want 401", st)
	}
	wantText(t, ctx, "#login-error", "does not open the dashboard")
	browserSignIn(t, ctx)
	if st := submit(t, ctx, chromedp.Click(chromedp.CSS("header form button"))); st != http.StatusOK {
		t.Fatalf("sign-out led to %d", st)
	}
	do(t, ctx, chromedp.WaitVisible(chromedp.ID("#token")))
	// Signed out, a page of the dashboard shows the sign-in form again.
	do(t, ctx, chromedp.Navigate(srv.URL+"/ui/projects/any/keys"), chromedp.WaitVisible(chromedp.ID("#token")))
}

// TestBrowserKeyLifecycle is a support person's session: open a project,
// create a key and copy it (shown once, not after a reload), rotate it with
// a grace preset, then revoke the replacement with a reason and its typed
// prefix. Each step is checked on the page and through the API.
func TestBrowserKeyLifecycle(t *testing.T) {
	ctx := tab(t)
	api := adminClient(t)
	project := "browser-lifecycle"
	browserSignIn(t, ctx)

	// Open the (empty) project and create its first key.
	do(t, ctx, chromedp.SendKeys(chromedp.ID("#project_id"), project))
	submit(t, ctx, chromedp.Submit(chromedp.ID("#project_id")))
	wantText(t, ctx, ".empty", "no keys yet")
	submit(t, ctx, chromedp.Click(chromedp.CSS(`a[href$="/keys/new"]`)))
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("#name"), "billing worker"),
		chromedp.SendKeys(chromedp.ID("#scopes"), "orders:read orders:write"),
		chromedp.SendKeys(chromedp.ID("#owner_id"), "acct_7"),
		chromedp.SetValue(chromedp.ID("#expires_in_days"), "30"),
	)
	if st := submit(t, ctx, chromedp.Click(chromedp.CSS(`main button[type=submit]`))); st != http.StatusOK {
		t.Fatalf("create led to %d", st)
	}
	wantText(t, ctx, "#secret-title", "copy it now")
	secret := run(t, ctx, chromedp.Value(chromedp.ID("#secret")))
	keyURL := run(t, ctx, chromedp.Location())
	keyID := keyURL[strings.LastIndex(keyURL, "/")+1:]

	// The API knows the key, and the secret shown is the key.
	k, err := api.GetKey(t.Context(), keyID)
	wantText(t, ctx, "#owner", "acct_7")
	wantText(t, ctx, "#source", "issued")
	if err != nil || k.Name != "billing worker" || k.ProjectID != project || k.Status != client.StatusActive ||
		k.OwnerID == nil || *k.OwnerID != "acct_7" || k.Source != "issued" ||
		strings.Join(k.Scopes, " ") != "orders:read orders:write" || k.ExpiresAt == nil {
		t.Fatalf("stored key %+v, %v", k, err)
	}
	if !strings.HasPrefix(secret, k.KeyPrefix) {
		t.Fatalf("the page showed a secret that does not start with the key's prefix %s", k.KeyPrefix)
	}
	if v, err := api.Verify(t.Context(), client.VerifyParams{Key: secret}); err != nil || !v.Valid || v.KeyID != keyID {
		t.Fatalf("the secret shown does not verify as the new key: %+v, %v", v, err)
	}

	// A reload no longer shows it.
	do(t, ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("h1")))
	if html := pageHTML(t, ctx); strings.Contains(html, secret) || strings.Contains(html, "secret-panel") {
		t.Fatal("the key's plaintext is still on the page after a reload")
	}

	// Rotate with the one-day grace preset.
	before := time.Now()
	do(t, ctx, chromedp.SetValue(chromedp.ID("#grace"), "1440"))
	if st := submit(t, ctx, chromedp.Click(chromedp.CSS(`form[action$="/rotate"] button`))); st != http.StatusOK {
		t.Fatalf("rotate led to %d", st)
	}
	after := time.Now()
	wantText(t, ctx, "#secret-title", "replacement key")
	wantText(t, ctx, ".notice", "keeps working until")
	replacement := run(t, ctx, chromedp.Value(chromedp.ID("#secret")))
	newURL := run(t, ctx, chromedp.Location())
	newID := newURL[strings.LastIndex(newURL, "/")+1:]
	old, err := api.GetKey(t.Context(), keyID)
	if err != nil || old.Status != client.StatusRotating || old.ReplacedByKeyID == nil || *old.ReplacedByKeyID != newID {
		t.Fatalf("old key after rotate: %+v, %v", old, err)
	}
	if g := *old.GraceExpiresAt; g.Before(before.Add(24*time.Hour).Truncate(time.Second)) || g.After(after.Add(24*time.Hour)) {
		t.Fatalf("grace ends %v, want a day after the rotation (%v–%v)", g, before, after)
	}
	if v, err := api.Verify(t.Context(), client.VerifyParams{Key: replacement}); err != nil || !v.Valid || v.KeyID != newID {
		t.Fatalf("the replacement shown does not verify: %+v, %v", v, err)
	}

	// Revoke the replacement: a wrong confirmation changes nothing.
	nk, err := api.GetKey(t.Context(), newID)
	if err != nil {
		t.Fatal(err)
	}
	do(t, ctx,
		chromedp.SetValue(chromedp.ID("#reason"), "key_compromise"),
		chromedp.SendKeys(chromedp.ID("#confirm"), "sk_wrong"),
	)
	if st := submit(t, ctx, chromedp.Click(chromedp.CSS(`form[action$="/revoke"] button`))); st != http.StatusBadRequest {
		t.Fatalf("revoke with a wrong confirmation led to %d, want 400", st)
	}
	wantText(t, ctx, "#revoke-error", "Nothing was revoked")
	if k, err := api.GetKey(t.Context(), newID); err != nil || k.Status != client.StatusActive {
		t.Fatalf("after a refused revoke: %+v, %v", k, err)
	}
	do(t, ctx,
		chromedp.SetValue(chromedp.ID("#reason"), "key_compromise"),
		chromedp.SendKeys(chromedp.ID("#confirm"), nk.KeyPrefix),
	)
	if st := submit(t, ctx, chromedp.Click(chromedp.CSS(`form[action$="/revoke"] button`))); st != http.StatusOK {
		t.Fatalf("revoke led to %d", st)
	}
	wantText(t, ctx, ".notice", "Key revoked")
	wantText(t, ctx, "h1", "revoked")
	wantText(t, ctx, "#revocation-reason", "Key compromise")
	if k, err := api.GetKey(t.Context(), newID); err != nil || k.Status != client.StatusRevoked ||
		k.RevocationReason == nil || *k.RevocationReason != "key_compromise" {
		t.Fatalf("after revoke: %+v, %v", k, err)
	}
	if v, err := api.Verify(t.Context(), client.VerifyParams{Key: replacement}); err != nil || v.Valid {
		t.Fatalf("the revoked key still verifies: %+v, %v", v, err)
	}

	// The project's list and audit log show what happened.
	do(t, ctx, chromedp.Navigate(srv.URL+"/ui/projects/"+project+"/keys"), chromedp.WaitVisible(chromedp.CSS("table")))
	if html := pageHTML(t, ctx); !strings.Contains(html, k.KeyPrefix) || !strings.Contains(html, nk.KeyPrefix) {
		t.Fatal("the key list lacks a key")
	}
	do(t, ctx, chromedp.Navigate(srv.URL+"/ui/projects/"+project+"/audit"), chromedp.WaitVisible(chromedp.CSS("table")))
	html := pageHTML(t, ctx)
	for _, action := range []string{"api_key.created", "api_key.rotated", "api_key.revoked"} {
		if !strings.Contains(html, action) {
			t.Errorf("the audit log lacks %s", action)
		}
	}
}

// TestBrowserDisableEnable pauses a key from its page with a reason and
// turns it back on: the page, the stored key and verify agree at each step.
func TestBrowserDisableEnable(t *testing.T) {
	ctx := tab(t)
	api := adminClient(t)
	created, err := api.CreateKey(t.Context(), client.CreateParams{ProjectID: "browser-disable", Name: "partner feed"})
	if err != nil {
		t.Fatal(err)
	}
	id := created.ID
	browserSignIn(t, ctx)
	do(t, ctx, chromedp.Navigate(srv.URL+"/ui/keys/"+id), chromedp.WaitVisible(chromedp.ID("#disable-reason")),
		chromedp.SendKeys(chromedp.ID("#disable-reason"), "invoice overdue"))
	if st := submit(t, ctx, chromedp.Click(chromedp.CSS(`form[action$="/disable"] button`))); st != http.StatusOK {
		t.Fatalf("disable led to %d", st)
	}
	wantText(t, ctx, ".notice", "Key disabled")
	wantText(t, ctx, "h1", "disabled")
	wantText(t, ctx, "#disabled", "invoice overdue")
	if html := pageHTML(t, ctx); strings.Contains(html, `action="/ui/keys/`+id+`/rotate"`) || strings.Contains(html, `/disable"`) {
		t.Fatal("a disabled key's page still offers rotate or disable")
	}
	k, err := api.GetKey(t.Context(), id)
	if err != nil || k.Status != client.StatusDisabled || k.DisabledAt == nil || k.DisabledReason == nil || *k.DisabledReason != "invoice overdue" {
		t.Fatalf("stored key after disable: %+v, %v", k, err)
	}
	if v, err := api.Verify(t.Context(), client.VerifyParams{Key: created.Secret}); err != nil || v.Valid || v.Code != client.CodeDisabled {
		t.Fatalf("a disabled key verifies as %+v, %v", v, err)
	}
	do(t, ctx, chromedp.Navigate(srv.URL+"/ui/projects/browser-disable/keys?status=disabled"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/ui/keys/`+id+`"]`)))
	wantText(t, ctx, "#key-list", "disabled")
	submit(t, ctx, chromedp.Click(chromedp.CSS(`a[href="/ui/keys/`+id+`"]`)))

	if st := submit(t, ctx, chromedp.Click(chromedp.CSS(`form[action$="/enable"] button`))); st != http.StatusOK {
		t.Fatalf("enable led to %d", st)
	}
	wantText(t, ctx, ".notice", "Key enabled")
	wantText(t, ctx, "h1", "active")
	wantText(t, ctx, "#disabled", "no")
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS(`form[action$="/rotate"] button`)))
	k, err = api.GetKey(t.Context(), id)
	if err != nil || k.Status != client.StatusActive || k.DisabledAt != nil || k.DisabledReason != nil {
		t.Fatalf("stored key after enable: %+v, %v", k, err)
	}
	if v, err := api.Verify(t.Context(), client.VerifyParams{Key: created.Secret}); err != nil || !v.Valid {
		t.Fatalf("an enabled key verifies as %+v, %v", v, err)
	}
}

// TestBrowserKeyFieldsAndOwner: an imported key's page shows its owner,
// its meta indented, its allowlist and where it came from; the owner links
// to the project's keys of that owner, and only those.
func TestBrowserKeyFieldsAndOwner(t *testing.T) {
	ctx := tab(t)
	api := adminClient(t)
	project := "browser-owner"
	imported, err := api.ImportKeys(t.Context(), client.ImportParams{ProjectID: project, Keys: []client.ImportKey{{
		Name: "legacy partner", Key: "legacy-partner-key-0123456789", KeyPrefix: "legacy",
		OwnerID: "team_42", Meta: json.RawMessage(`{"plan":"pro","seats":5}`), IPAllowlist: []string{"10.0.0.0/8", "2001:db8::1"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := api.CreateKey(t.Context(), client.CreateParams{ProjectID: project, Name: "ownerless"})
	if err != nil {
		t.Fatal(err)
	}
	id := imported[0].ID
	browserSignIn(t, ctx)
	do(t, ctx, chromedp.Navigate(srv.URL+"/ui/keys/"+id), chromedp.WaitVisible(chromedp.ID("#meta")))
	wantText(t, ctx, "#owner", "team_42")
	wantText(t, ctx, "#ip-allowlist", "10.0.0.0/8 2001:db8::1")
	wantText(t, ctx, "#source", "imported")
	if got := run(t, ctx, chromedp.Text(chromedp.ID("#meta"))); got != "{\n  \"plan\": \"pro\",\n  \"seats\": 5\n}" {
		t.Fatalf("meta shows %q, want it indented", got)
	}
	submit(t, ctx, chromedp.Click(chromedp.CSS("#owner a")))
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS(`a[href="/ui/keys/`+id+`"]`)))
	if v := run(t, ctx, chromedp.Value(chromedp.ID("#owner_id"))); v != "team_42" {
		t.Fatalf("the owner filter holds %q", v)
	}
	if html := pageHTML(t, ctx); strings.Contains(html, other.ID) {
		t.Fatal("the owner's keys include a key without an owner")
	}
	page, err := api.ListKeysPage(t.Context(), client.ListParams{ProjectID: project, OwnerID: "team_42"})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != id {
		t.Fatalf("the API's keys of team_42: %+v, %v", page, err)
	}
}

// TestBrowserCreditsAndUsage: a metered key's page shows its limits, its
// balance and its verdicts of the last 24 hours and 30 days as the service
// counted them; the credits form sets, takes away and adds, each checked
// on the page and through the API.
func TestBrowserCreditsAndUsage(t *testing.T) {
	ctx := tab(t)
	api := adminClient(t)
	created, err := api.CreateKey(t.Context(), client.CreateParams{ProjectID: "browser-credits", Name: "metered search",
		Scopes:     []string{"search:read"},
		RateLimits: []client.RateLimit{{Name: "per-minute", Limit: 100, DurationMS: 60000}},
		Credits:    &client.Credits{Remaining: 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Two verifies pass and spend a credit each; one asks for a scope the
	// key lacks and spends nothing.
	for _, scopes := range [][]string{nil, {"search:read"}, {"admin"}} {
		if _, err := api.Verify(t.Context(), client.VerifyParams{Key: created.Secret, Scopes: scopes}); err != nil {
			t.Fatal(err)
		}
	}
	browserSignIn(t, ctx)
	do(t, ctx, chromedp.Navigate(srv.URL+"/ui/keys/"+created.ID), chromedp.WaitVisible(chromedp.ID("#credit-amount")))
	wantText(t, ctx, "#ratelimits", "per-minute: 100 per minute")
	wantText(t, ctx, "#credits-remaining", "8")
	for _, id := range []string{"usage-hours-desc", "usage-days-desc"} {
		if got := run(t, ctx, chromedp.TextContent(chromedp.ID("#"+id))); !strings.Contains(got, "2 valid and 1 denied") {
			t.Errorf("%s says %q, want 2 valid and 1 denied", id, got)
		}
	}
	if n := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("#usage-hours rect.bar").length`)); n != 2 {
		t.Errorf("the hourly chart has %d bar parts, want 2 (valid and denied, this hour)", n)
	}
	for _, step := range []struct {
		op, amount string
		want       int64
	}{{"set", "100", 100}, {"decrement", "500", 0}, {"increment", "5", 5}} {
		do(t, ctx, chromedp.SetValue(chromedp.ID("#credit-op"), step.op), chromedp.SendKeys(chromedp.ID("#credit-amount"), step.amount))
		if st := submit(t, ctx, chromedp.Click(chromedp.CSS(`form[action$="/credits"] button`))); st != http.StatusOK {
			t.Fatalf("%s %s led to %d", step.op, step.amount, st)
		}
		want := fmt.Sprint(step.want)
		wantText(t, ctx, ".notice", want+" remaining")
		wantText(t, ctx, "#credits-remaining", want)
		k, err := api.GetKey(t.Context(), created.ID)
		if err != nil || k.Credits == nil || k.Credits.Remaining != step.want {
			t.Fatalf("after %s %s the API says %+v, %v", step.op, step.amount, k, err)
		}
	}
}

// TestBrowserCrossOriginPost submits a form from a page of another origin
// to the dashboard of a signed-in browser: it is refused, and nothing is
// created.
func TestBrowserCrossOriginPost(t *testing.T) {
	ctx := tab(t)
	project := "browser-cross-origin"
	browserSignIn(t, ctx)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/ui/projects/%s/keys">
<input name="name" value="planted"><button id="go">go</button></form>`, srv.URL, project)
	}))
	defer evil.Close()
	do(t, ctx, chromedp.Navigate(evil.URL), chromedp.WaitVisible(chromedp.ID("#go")))
	if st := submit(t, ctx, chromedp.Click(chromedp.ID("#go"))); st != http.StatusForbidden {
		t.Fatalf("a cross-origin POST got %d, want 403", st)
	}
	wantText(t, ctx, "main", "refused")
	page, err := adminClient(t).ListKeysPage(t.Context(), client.ListParams{ProjectID: project})
	if err != nil || len(page.Items) != 0 {
		t.Fatalf("keys after a refused cross-origin POST: %+v, %v", page, err)
	}
}

// TestBrowserLiveSearch: with htmx (under the dashboard's CSP), typing in
// the search box narrows the list in place and puts the search in the
// address bar.
func TestBrowserLiveSearch(t *testing.T) {
	ctx := tab(t)
	api := adminClient(t)
	project := "browser-search"
	ids := map[string]string{}
	for _, name := range []string{"alpha one", "beta two"} {
		k, err := api.CreateKey(t.Context(), client.CreateParams{ProjectID: project, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = k.ID
	}
	browserSignIn(t, ctx)
	do(t, ctx, chromedp.Navigate(srv.URL+"/ui/projects/"+project+"/keys"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/ui/keys/`+ids["alpha one"]+`"]`)),
		chromedp.SendKeys(chromedp.ID("#q"), "beta"),
		chromedp.WaitNotPresent(chromedp.CSS(`a[href="/ui/keys/`+ids["alpha one"]+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/ui/keys/`+ids["beta two"]+`"]`)),
	)
	if loc := run(t, ctx, chromedp.Location()); !strings.Contains(loc, "q=beta") {
		t.Fatalf("the address bar says %s, want the search in it", loc)
	}
}

// TestScreenshots writes the screenshots of docs/dashboard.md when
// APIKEYD_SCREENSHOTS names a directory: the keys list, a key's page and
// the create-once secret, at 1280 and 390 px wide.
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("APIKEYD_SCREENSHOTS")
	if dir == "" {
		t.Skip("APIKEYD_SCREENSHOTS is not set")
	}
	ctx := tab(t)
	api := adminClient(t)
	project := "acme-prod"
	for _, k := range []client.CreateParams{
		{Name: "checkout service", Scopes: []string{"orders:read", "orders:write"}, EnvironmentID: "live"},
		{Name: "nightly export", Scopes: []string{"reports:read"}, EnvironmentID: "live", ExpiresInDays: 90},
		{Name: "staging smoke tests", Scopes: []string{"*"}, EnvironmentID: "test"},
	} {
		k.ProjectID = project
		created, err := api.CreateKey(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		if k.Name == "staging smoke tests" {
			if _, err := api.DisableKey(t.Context(), created.ID, "paused during the staging freeze"); err != nil {
				t.Fatal(err)
			}
		}
		if k.Name == "nightly export" {
			if _, err := api.Verify(t.Context(), client.VerifyParams{Key: created.Secret}); err != nil {
				t.Fatal(err)
			}
		}
	}
	browserSignIn(t, ctx)
	shoot := func(name string, width int64) {
		t.Helper()
		do(t, ctx, chromedp.EmulateViewport(width, 900))
		png := run(t, ctx, chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, width)), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do(t, ctx, chromedp.Navigate(srv.URL+"/ui/projects/"+project+"/keys/new"), chromedp.WaitVisible(chromedp.ID("#name")),
		chromedp.SendKeys(chromedp.ID("#name"), "billing worker"),
		chromedp.SendKeys(chromedp.ID("#scopes"), "invoices:read invoices:write"),
		chromedp.SetValue(chromedp.ID("#environment_id"), "live"),
		chromedp.SendKeys(chromedp.ID("#owner_id"), "acct_1042"))
	submit(t, ctx, chromedp.Click(chromedp.CSS(`main button[type=submit]`)))
	for _, w := range []int64{1280, 390} {
		shoot("secret", w)
	}
	loc := run(t, ctx, chromedp.Location())
	secret := run(t, ctx, chromedp.Value(chromedp.ID("#secret")))
	if _, err := api.UpdateKey(t.Context(), loc[strings.LastIndex(loc, "/")+1:], client.UpdateParams{
		Meta:       client.Value(json.RawMessage(`{"plan":"pro","region":"eu-west-1","billing_contact":"ops@acme.example"}`)),
		RateLimits: client.Value([]client.RateLimit{{Name: "per-minute", Limit: 600, DurationMS: 60000}}),
		Credits:    client.Value(client.Credits{Remaining: 5000, Refill: &client.Refill{Interval: "monthly", Amount: 5000, Mode: "replace", DayOfMonth: 1}}),
	}); err != nil {
		t.Fatal(err)
	}
	for _, scopes := range [][]string{nil, nil, nil, {"invoices:read"}, {"admin"}} {
		if _, err := api.Verify(t.Context(), client.VerifyParams{Key: secret, Scopes: scopes}); err != nil {
			t.Fatal(err)
		}
	}
	do(t, ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("h1")))
	for _, w := range []int64{1280, 390} {
		shoot("key", w)
	}
	do(t, ctx, chromedp.Navigate(srv.URL+"/ui/projects/"+project+"/keys"), chromedp.WaitVisible(chromedp.CSS("table")))
	for _, w := range []int64{1280, 390} {
		shoot("keys", w)
	}
}
