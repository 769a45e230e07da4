package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/client"
	"github.com/apikeyd/apikeyd/internal/testserver"
	"github.com/apikeyd/apikeyd/seal"
	"github.com/apikeyd/apikeyd/service"
	"github.com/apikeyd/apikeyd/sqlite"
	"github.com/apikeyd/apikeyd/web"
)

// srv is the real apikeyd (server.New on 127.0.0.1:0, dashboard mounted)
// that the tests of this package share; each test uses its own projects.
var srv *testserver.Server

func TestMain(m *testing.M) {
	var err error
	srv, err = testserver.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	stopBrowser()
	if err := srv.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// adminClient speaks to srv's API with the admin token.
func adminClient(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(srv.URL, srv.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// visitor is a browser without a browser: a cookie jar that does not
// follow redirects, so that every answer can be looked at, and a record of
// every answer it got.
type visitor struct {
	t    *testing.T
	base string
	hc   *http.Client

	mu      sync.Mutex
	answers []answer
}

type answer struct {
	method, path string
	status       int
	header       http.Header
	body         string
}

func newVisitor(t *testing.T, base string) *visitor {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &visitor{t: t, base: base, hc: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (v *visitor) do(req *http.Request) answer {
	v.t.Helper()
	resp, err := v.hc.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		v.t.Fatal(err)
	}
	a := answer{method: req.Method, path: req.URL.RequestURI(), status: resp.StatusCode, header: resp.Header, body: string(b)}
	v.mu.Lock()
	v.answers = append(v.answers, a)
	v.mu.Unlock()
	return a
}

func (v *visitor) get(path string) answer {
	v.t.Helper()
	req, err := http.NewRequest(http.MethodGet, v.base+path, nil)
	if err != nil {
		v.t.Fatal(err)
	}
	return v.do(req)
}

// post submits a form; headers are set as name, value pairs.
func (v *visitor) post(path string, form url.Values, headers ...string) answer {
	v.t.Helper()
	req, err := http.NewRequest(http.MethodPost, v.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		v.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return v.do(req)
}

// follow GETs where a redirect points, failing unless a is a 303.
func (v *visitor) follow(a answer) answer {
	v.t.Helper()
	if a.status != http.StatusSeeOther {
		v.t.Fatalf("%s %s: %d, want 303\n%s", a.method, a.path, a.status, a.body)
	}
	loc, err := url.Parse(a.header.Get("Location"))
	if err != nil {
		v.t.Fatal(err)
	}
	return v.get(loc.RequestURI())
}

func (v *visitor) signIn(token string) {
	v.t.Helper()
	if a := v.follow(v.post("/ui/login", url.Values{"token": {token}})); a.status != http.StatusOK || !strings.Contains(a.body, "<h1>Projects</h1>") {
		v.t.Fatalf("after sign-in: %d\n%s", a.status, a.body)
	}
}

// createKey creates a key through the dashboard and returns the key page
// that shows it once.
func (v *visitor) createKey(project string, form url.Values) (id string, page answer) {
	v.t.Helper()
	a := v.post("/ui/projects/"+project+"/keys", form)
	page = v.follow(a)
	return strings.TrimPrefix(a.header.Get("Location"), "/ui/keys/"), page
}

var secretRE = regexp.MustCompile(`id="secret" value="([^"]+)"`)

// shownSecret returns the plaintext key a page shows, or "".
func shownSecret(a answer) string {
	if m := secretRE.FindStringSubmatch(a.body); m != nil {
		return m[1]
	}
	return ""
}

var scriptRE = regexp.MustCompile(`<script([^>]*)>([^<]*)</script>`)

func TestHeaders(t *testing.T) {
	v := newVisitor(t, srv.URL)
	login := v.get("/ui/")
	v.signIn(srv.AdminToken)
	id, _ := v.createKey("headers", url.Values{"name": {"k"}})
	for _, a := range []answer{login, v.get("/ui/"), v.get("/ui/keys/" + id), v.get("/ui/projects/headers/keys"), v.get("/ui/nowhere")} {
		h := a.header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
			strings.Contains(csp, "unsafe-inline") || h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", a.path, h)
		}
		// No inline script or style, which the policy would block.
		scripts := scriptRE.FindAllStringSubmatch(a.body, -1)
		if len(scripts) != strings.Count(a.body, "<script") || strings.Contains(a.body, " style=") || strings.Contains(a.body, "<style") {
			t.Errorf("%s has inline script or style", a.path)
		}
		for _, m := range scripts {
			if !strings.Contains(m[1], `src="/ui/static/`) || m[2] != "" {
				t.Errorf("%s has an inline script: %s", a.path, m[0])
			}
		}
		// Nothing from anywhere else.
		if regexp.MustCompile(`(?:src|href)="(?:https?:)?//`).MatchString(a.body) {
			t.Errorf("%s refers to another origin", a.path)
		}
	}
	if a := v.get("/ui/static/"); a.status != http.StatusNotFound {
		t.Errorf("/ui/static/ lists the assets: %d", a.status)
	}
	for _, path := range []string{"/ui/static/htmx.min.js", "/ui/static/app.js", "/ui/static/style.css"} {
		if a := v.get(path); a.status != http.StatusOK || a.header.Get("Content-Security-Policy") == "" || len(a.body) < 100 {
			t.Errorf("%s: %d, %v", path, a.status, a.header)
		}
	}
}

func TestSessionCookie(t *testing.T) {
	for name, tc := range map[string]struct {
		trusted []netip.Prefix
		proto   string
		secure  bool
	}{
		"OK/plainHTTP":         {},
		"OK/trustedProxyHTTPS": {trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, proto: "https", secure: true},
		"OK/untrustedHTTPS":    {proto: "https"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newUI(t, func(o *web.Options) { o.TrustedProxies = tc.trusted })
			v := newVisitor(t, h.url)
			a := v.post("/ui/login", url.Values{"token": {adminToken}}, "X-Forwarded-Proto", tc.proto)
			if a.status != http.StatusSeeOther || a.header.Get("Location") != "/ui/" {
				t.Fatalf("sign-in: %d %v", a.status, a.header)
			}
			c := a.header.Get("Set-Cookie")
			for _, want := range []string{"apikeyd_session=", "Path=/ui/", "HttpOnly", "SameSite=Strict"} {
				if !strings.Contains(c, want) {
					t.Errorf("cookie %q lacks %s", c, want)
				}
			}
			if strings.Contains(c, "Secure") != tc.secure {
				t.Errorf("cookie %q: Secure should be %v", c, tc.secure)
			}
			if strings.Contains(c, adminToken) {
				t.Error("the cookie carries the admin token")
			}
		})
	}
}

func TestSignInFailuresCountWithTheAPI(t *testing.T) {
	s := testserver.New(t, "--auth-failure-burst", "2", "--auth-failure-refill", "1h")
	v := newVisitor(t, s.URL)
	for i := range 2 {
		a := v.post("/ui/login", url.Values{"token": {"wrong-token-number-" + fmt.Sprint(i)}})
		if a.status != http.StatusUnauthorized || !strings.Contains(a.body, "does not open the dashboard") || a.header.Get("Set-Cookie") != "" {
			t.Fatalf("wrong token %d: %d %v", i, a.status, a.header)
		}
	}
	// The address is now blocked, for the right token too, and the API's
	// bearer check shares the count.
	a := v.post("/ui/login", url.Values{"token": {s.AdminToken}})
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" || a.header.Get("Set-Cookie") != "" {
		t.Fatalf("after the burst: %d %v", a.status, a.header)
	}
	c, err := client.New(s.URL, s.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListKeysPage(t.Context(), client.ListParams{ProjectID: "p"}); !client.IsRateLimited(err) {
		t.Fatalf("the API after failed sign-ins: %v, want 429", err)
	}
}

func TestSessionIdleExpiry(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	h := newUI(t, func(o *web.Options) { o.Now = clock })
	v := newVisitor(t, h.url)
	v.signIn(adminToken)

	advance(web.DefaultSessionIdle - time.Second)
	if a := v.get("/ui/"); !strings.Contains(a.body, "<h1>Projects</h1>") {
		t.Fatalf("signed out before 12 h idle:\n%s", a.body)
	}
	// That use counts: the session lasts 12 h from it.
	advance(web.DefaultSessionIdle - time.Second)
	if a := v.get("/ui/"); !strings.Contains(a.body, "<h1>Projects</h1>") {
		t.Fatal("a used session expired")
	}
	advance(web.DefaultSessionIdle)
	if a := v.get("/ui/projects/p/keys"); a.status != http.StatusSeeOther || a.header.Get("Location") != "/ui/" {
		t.Fatalf("after 12 h idle: %d %v", a.status, a.header)
	}
	if a := v.get("/ui/"); !strings.Contains(a.body, `id="token"`) {
		t.Fatal("after 12 h idle the sign-in form is not shown")
	}
	// A change needs a session too.
	if a := v.post("/ui/projects/p/keys", url.Values{"name": {"k"}}); a.status != http.StatusSeeOther || a.header.Get("Location") != "/ui/" {
		t.Fatalf("a POST without a session: %d %v", a.status, a.header)
	}
}

func TestLogout(t *testing.T) {
	v := newVisitor(t, srv.URL)
	v.signIn(srv.AdminToken + "\r\n") // pasted with its line break
	a := v.post("/ui/logout", nil)
	if a.status != http.StatusSeeOther || !strings.Contains(a.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout: %d %v", a.status, a.header)
	}
	if a := v.get("/ui/projects/p/keys"); a.status != http.StatusSeeOther {
		t.Fatalf("after logout: %d", a.status)
	}
}

func TestCrossOriginPostRefused(t *testing.T) {
	v := newVisitor(t, srv.URL)
	v.signIn(srv.AdminToken)
	for name, headers := range map[string][]string{
		"ErrOtherOrigin":   {"Origin", "https://evil.example"},
		"ErrCrossSite":     {"Sec-Fetch-Site", "cross-site"},
		"ErrSameSiteOther": {"Sec-Fetch-Site", "same-site", "Origin", "http://127.0.0.1:1"},
	} {
		t.Run(name, func(t *testing.T) {
			project := "cross-origin-" + strings.ToLower(name)
			a := v.post("/ui/projects/"+project+"/keys", url.Values{"name": {"planted"}}, headers...)
			if a.status != http.StatusForbidden || !strings.Contains(a.body, "refused") {
				t.Fatalf("%d\n%s", a.status, a.body)
			}
			page, err := adminClient(t).ListKeysPage(t.Context(), client.ListParams{ProjectID: project})
			if err != nil || len(page.Items) != 0 {
				t.Fatalf("keys after a refused POST: %+v, %v", page, err)
			}
		})
	}
}

// TestSecretScan walks the dashboard through a key's life and checks every
// answer and the server's log: a key's plaintext appears in exactly one
// answer, the page after its create or rotate (never stored by the
// browser), and nowhere else, nor does the admin token.
func TestSecretScan(t *testing.T) {
	v := newVisitor(t, srv.URL)
	v.get("/ui/")
	v.signIn(srv.AdminToken)
	project := "secret-scan"
	id, shown := v.createKey(project, url.Values{"name": {"scanned"}, "scopes": {"a:b"}})
	secret := shownSecret(shown)
	if secret == "" || shown.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("the create answer shows no key, or may be stored: %v", shown.header)
	}
	v.get("/ui/keys/" + id) // the reload
	v.get("/ui/projects/" + project + "/keys")
	v.get("/ui/projects/" + project + "/keys?q=scanned")
	v.get("/ui/projects/" + project + "/audit")
	v.get("/ui/")
	rotated := v.follow(v.post("/ui/keys/"+id+"/rotate", url.Values{"grace_period_minutes": {"60"}}))
	replacement := shownSecret(rotated)
	if replacement == "" || replacement == secret {
		t.Fatal("the rotate answer shows no new key")
	}
	newID := strings.TrimPrefix(rotated.path, "/ui/keys/")
	v.get("/ui/keys/" + newID)
	v.get("/ui/keys/" + id)
	k, err := adminClient(t).GetKey(t.Context(), newID)
	if err != nil {
		t.Fatal(err)
	}
	v.follow(v.post("/ui/keys/"+newID+"/revoke", url.Values{"reason": {"superseded"}, "confirm": {k.KeyPrefix}}))
	v.get("/ui/projects/" + project + "/audit")
	v.post("/ui/logout", nil)

	for _, s := range []struct {
		name, secret string
		page         answer
	}{{"created key", secret, shown}, {"replacement", replacement, rotated}} {
		for _, a := range v.answers {
			in := strings.Count(a.body, s.secret)
			want := 0
			if a.method == s.page.method && a.path == s.page.path && a.body == s.page.body {
				want = 1 // the value of the one read-only field
			}
			if in != want {
				t.Errorf("%s %s holds the %s %d times, want %d", a.method, a.path, s.name, in, want)
			}
			for name, vals := range a.header {
				if strings.Contains(strings.Join(vals, " "), s.secret) {
					t.Errorf("%s %s: header %s holds the %s", a.method, a.path, name, s.name)
				}
			}
		}
		if strings.Contains(srv.Logs.String(), s.secret) {
			t.Errorf("the server's log holds the %s", s.name)
		}
	}
	for _, a := range v.answers {
		if strings.Contains(a.body, srv.AdminToken) || strings.Contains(fmt.Sprint(a.header), srv.AdminToken) {
			t.Errorf("%s %s holds the admin token", a.method, a.path)
		}
	}
	if strings.Contains(srv.Logs.String(), srv.AdminToken) {
		t.Error("the server's log holds the admin token")
	}
}

func TestForms(t *testing.T) {
	v := newVisitor(t, srv.URL)
	v.signIn(srv.AdminToken)
	api := adminClient(t)
	project := "forms"
	id, _ := v.createKey(project, url.Values{"name": {"first"}})
	tests := []struct {
		name       string
		path       string
		form       url.Values
		status     int
		wantInBody string
	}{
		{"ErrCreateNoName", "/ui/projects/" + project + "/keys", url.Values{"name": {""}}, http.StatusBadRequest, "Name must be 1-255 characters"},
		{"ErrCreateBadScope", "/ui/projects/" + project + "/keys", url.Values{"name": {"x"}, "scopes": {"no spaces!"}}, http.StatusBadRequest, "Scopes:"},
		{"ErrCreateBadOwner", "/ui/projects/" + project + "/keys", url.Values{"name": {"x"}, "owner_id": {"no spaces"}}, http.StatusBadRequest, "Owner must be 1–255 characters"},
		{"ErrCreateBadExpiry", "/ui/projects/" + project + "/keys", url.Values{"name": {"x"}, "expires_in_days": {"soon"}}, http.StatusBadRequest, "Expiry"},
		{"ErrCreateBadProject", "/ui/projects/no%20spaces/keys", url.Values{"name": {"x"}}, http.StatusBadRequest, "project_id"},
		{"ErrRotateBadGrace", "/ui/keys/" + id + "/rotate", url.Values{"grace_period_minutes": {"99999"}}, http.StatusBadRequest, "grace_period_minutes"},
		{"ErrRevokeBadReason", "/ui/keys/" + id + "/revoke", url.Values{"reason": {"bored"}, "confirm": {"x"}}, http.StatusBadRequest, "Choose one of the reasons"},
		{"ErrDisableLongReason", "/ui/keys/" + id + "/disable", url.Values{"reason": {strings.Repeat("x", 256)}}, http.StatusBadRequest, "reason must be at most 255 characters"},
		{"ErrDisableUnknownKey", "/ui/keys/key_01m8xhgd2ne418zd4mqe37wx47/disable", url.Values{}, http.StatusNotFound, "no such key"},
		{"ErrEnableUnknownKey", "/ui/keys/key_01m8xhgd2ne418zd4mqe37wx47/enable", url.Values{}, http.StatusNotFound, "no such key"},
		{"ErrCreditsBadAmount", "/ui/keys/" + id + "/credits", url.Values{"op": {"set"}, "amount": {"lots"}}, http.StatusBadRequest, "Enter a whole number of credits"},
		{"ErrCreditsBadOp", "/ui/keys/" + id + "/credits", url.Values{"op": {"double"}, "amount": {"5"}}, http.StatusBadRequest, "op must be set, increment or decrement"},
		{"ErrCreditsUnlimited", "/ui/keys/" + id + "/credits", url.Values{"op": {"set"}, "amount": {"5"}}, http.StatusConflict, "the key has unlimited credits"},
		{"ErrRevokeUnknownKey", "/ui/keys/key_01m8xhgd2ne418zd4mqe37wx47/revoke", url.Values{"reason": {"unspecified"}, "confirm": {"x"}}, http.StatusNotFound, "no such key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := v.post(tc.path, tc.form)
			if a.status != tc.status || !strings.Contains(a.body, tc.wantInBody) {
				t.Fatalf("%d, want %d with %q\n%s", a.status, tc.status, tc.wantInBody, a.body)
			}
		})
	}
	// None of them changed anything.
	page, err := api.ListKeysPage(t.Context(), client.ListParams{ProjectID: project})
	if err != nil || len(page.Items) != 1 || page.Items[0].Status != client.StatusActive {
		t.Fatalf("keys after refused forms: %+v, %v", page, err)
	}
	t.Run("ErrRotateRevoked", func(t *testing.T) {
		if err := api.RevokeKey(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		for _, action := range []string{"rotate", "disable", "enable"} {
			a := v.post("/ui/keys/"+id+"/"+action, url.Values{"grace_period_minutes": {"0"}})
			if a.status != http.StatusConflict || !strings.Contains(a.body, "the key is revoked") {
				t.Fatalf("%s: %d\n%s", action, a.status, a.body)
			}
		}
		if k, err := api.GetKey(t.Context(), id); err != nil || k.DisabledAt != nil {
			t.Fatalf("a revoked key after refused disable: %+v, %v", k, err)
		}
	})
	t.Run("ErrUnknownPages", func(t *testing.T) {
		for path, status := range map[string]int{
			"/ui/keys/key_01m8xhgd2ne418zd4mqe37wx47":   http.StatusNotFound,
			"/ui/keys/nonsense":                         http.StatusNotFound,
			"/ui/projects/forms/keys?status=dead":       http.StatusBadRequest,
			"/ui/projects/forms/keys?owner_id=a%20b":    http.StatusBadRequest,
			"/ui/projects/forms/keys?after=garbage":     http.StatusBadRequest,
			"/ui/projects/forms/audit?after=1.key_zzzz": http.StatusBadRequest,
			"/ui/nowhere": http.StatusNotFound,
		} {
			if a := v.get(path); a.status != status || !strings.Contains(a.body, "Back to the projects") {
				t.Errorf("%s: %d, want %d", path, a.status, status)
			}
		}
	})
}

func TestKeyListFiltersSearchAndPages(t *testing.T) {
	v := newVisitor(t, srv.URL)
	v.signIn(srv.AdminToken)
	api := adminClient(t)
	project := "listing"
	var prefixes []string
	for i := range 55 {
		p := client.CreateParams{ProjectID: project, Name: fmt.Sprintf("worker %02d", i), EnvironmentID: "live"}
		if i%11 == 0 {
			p.OwnerID = "team_42"
		}
		if i%5 == 0 {
			p.Name, p.EnvironmentID = fmt.Sprintf("Report job %02d", i), "test"
		}
		k, err := api.CreateKey(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		prefixes = append(prefixes, k.KeyPrefix)
		if i == 7 {
			if err := api.RevokeKey(t.Context(), k.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	rows := func(a answer) int { return strings.Count(a.body, `<td><a href="/ui/keys/`) }
	base := "/ui/projects/" + project + "/keys"

	first := v.get(base)
	if rows(first) != 50 || !strings.Contains(first.body, "Next page") {
		t.Fatalf("first page: %d rows", rows(first))
	}
	next := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(first.body)
	second := v.get(strings.ReplaceAll(next[1], "&amp;", "&"))
	if rows(second) != 5 || strings.Contains(second.body, "Next page") || !strings.Contains(second.body, "Report job 00") {
		t.Fatalf("second page: %d rows", rows(second))
	}
	for name, tc := range map[string]struct {
		query string
		rows  int
		has   string
	}{
		"OK/searchNameAnyCase":  {"?q=report", 11, "Report job 50"},
		"OK/searchPrefix":       {"?q=" + prefixes[3], 1, "worker 03"},
		"OK/environment":        {"?environment_id=test", 11, "Report job 00"},
		"OK/status":             {"?status=revoked", 1, "worker 07"},
		"OK/searchAndStatus":    {"?q=worker&status=active", 43, "worker 54"},
		"OK/searchFindsNothing": {"?q=nobody", 0, "No key matches"},
		"OK/owner":              {"?owner_id=team_42", 5, "worker 44"},
		"OK/ownerAndSearch":     {"?owner_id=team_42&q=report", 1, "Report job 00"},
	} {
		t.Run(name, func(t *testing.T) {
			a := v.get(base + tc.query)
			if a.status != http.StatusOK || rows(a) != tc.rows || !strings.Contains(a.body, tc.has) {
				t.Fatalf("%d, %d rows, want %d with %q", a.status, rows(a), tc.rows, tc.has)
			}
		})
	}
	t.Run("OK/emptyProject", func(t *testing.T) {
		if a := v.get("/ui/projects/nothing-here/keys"); !strings.Contains(a.body, "has no keys yet") || !strings.Contains(a.body, "Create its first key") {
			t.Fatalf("empty project:\n%s", a.body)
		}
	})
	t.Run("OK/projectsCounts", func(t *testing.T) {
		a := v.get("/ui/")
		if !regexp.MustCompile(`<code>listing</code></a></td>\s*<td class="num">55</td>\s*<td class="num">54</td>`).MatchString(a.body) {
			t.Fatalf("projects page lacks listing's counts:\n%s", a.body)
		}
	})
}

// adminToken is the admin token of newUI's service.
const adminToken = "web-test-admin-token-0123456789"

// uiHarness is a dashboard alone, on a real SQLite store and real HTTP on
// loopback, for what needs options the server does not expose (a clock).
type uiHarness struct {
	url string
	svc *service.Service
}

func newUI(t *testing.T, opts ...func(*web.Options)) *uiHarness {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/apikeyd.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, err := seal.New(make([]byte, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	o := web.Options{}
	for _, opt := range opts {
		opt(&o)
	}
	svc, err := service.New(service.Options{Store: st, Box: box, AdminToken: adminToken, KeyPrefix: "sk", Now: o.Now})
	if err != nil {
		t.Fatal(err)
	}
	o.Service = svc
	hs := httptest.NewServer(web.New(o))
	t.Cleanup(hs.Close)
	return &uiHarness{url: hs.URL, svc: svc}
}
