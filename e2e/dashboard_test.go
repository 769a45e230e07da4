package e2e

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// browser is a cookie jar speaking to the dashboard the way a browser's
// forms do, without following redirects, keeping every answer.
type browser struct {
	t       *testing.T
	s       *server
	hc      *http.Client
	answers []page
}

type page struct {
	method, path string
	status       int
	header       http.Header
	body         string
}

func newBrowser(t *testing.T, s *server) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, s: s, hc: &http.Client{
		Jar: jar, Timeout: httpClient.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (b *browser) send(method, path string, form url.Values) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.s.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	p := page{method: method, path: path, status: resp.StatusCode, header: resp.Header, body: string(raw)}
	b.answers = append(b.answers, p)
	return p
}

// submit POSTs a form and follows its 303 to the page it leads to.
func (b *browser) submit(path string, form url.Values) page {
	b.t.Helper()
	p := b.send(http.MethodPost, path, form)
	if p.status != http.StatusSeeOther {
		b.t.Fatalf("POST %s: %d, want 303\n%s", path, p.status, p.body)
	}
	return b.send(http.MethodGet, p.header.Get("Location"), nil)
}

var shownKeyRE = regexp.MustCompile(`id="secret" value="([^"]+)"`)

// TestDashboardSecrets runs a key's life through the dashboard of the real
// binary and checks that each plaintext key reaches exactly one page —
// the one after its create or rotate — and nothing else: no other page, no
// header, no line of the server's output (the suite-wide scan adds them to
// its book, too). The admin token reaches no page at all.
func TestDashboardSecrets(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t, s)
	if p := b.send(http.MethodGet, "/ui/", nil); p.status != http.StatusOK || !strings.Contains(p.body, `name="token"`) {
		t.Fatalf("sign-in form: %d\n%s", p.status, p.body)
	}
	if p := b.submit("/ui/login", url.Values{"token": {s.Admin}}); !strings.Contains(p.body, "<h1>Projects</h1>") {
		t.Fatalf("after sign-in:\n%s", p.body)
	}
	created := b.submit("/ui/projects/p1/keys", url.Values{"name": {"from the dashboard"}, "scopes": {"orders:read"}})
	m := shownKeyRE.FindStringSubmatch(created.body)
	if m == nil {
		t.Fatalf("the create answer shows no key:\n%s", created.body)
	}
	key := m[1]
	secrets.add("API key (dashboard)", key)
	id := strings.TrimPrefix(created.path, "/ui/keys/")
	if v := s.verify(t, s.Admin, map[string]any{"key": key}); v["code"] != "VALID" || v["key_id"] != id {
		t.Fatalf("the key shown does not verify: %v", v)
	}
	b.send(http.MethodGet, created.path, nil)
	b.send(http.MethodGet, "/ui/projects/p1/keys?q=dashboard", nil)
	rotated := b.submit("/ui/keys/"+id+"/rotate", url.Values{"grace_period_minutes": {"0"}})
	m = shownKeyRE.FindStringSubmatch(rotated.body)
	if m == nil {
		t.Fatalf("the rotate answer shows no key:\n%s", rotated.body)
	}
	replacement := m[1]
	secrets.add("API key (dashboard rotation)", replacement)
	newID := strings.TrimPrefix(rotated.path, "/ui/keys/")
	prefix := s.get(t, newID)["key_prefix"].(string)
	b.submit("/ui/keys/"+newID+"/revoke", url.Values{"reason": {"superseded"}, "confirm": {prefix}})
	if st := s.get(t, newID)["status"]; st != "revoked" {
		t.Fatalf("after revoking in the dashboard the API says %v", st)
	}
	b.send(http.MethodGet, "/ui/projects/p1/audit", nil)
	b.send(http.MethodGet, "/ui/", nil)
	b.send(http.MethodPost, "/ui/logout", url.Values{})

	for _, p := range b.answers {
		for secret, shownOn := range map[string]page{key: created, replacement: rotated} {
			want := 0
			if p.path == shownOn.path && p.body == shownOn.body {
				want = 1
			}
			if n := strings.Count(p.body, secret); n != want {
				t.Errorf("%s %s holds a plaintext key %d times, want %d", p.method, p.path, n, want)
			}
			for name, vals := range p.header {
				if strings.Contains(strings.Join(vals, " "), secret) {
					t.Errorf("%s %s: header %s holds a plaintext key", p.method, p.path, name)
				}
			}
		}
		if strings.Contains(p.body, s.Admin) {
			t.Errorf("%s %s holds the admin token", p.method, p.path)
		}
	}
	if found := leaks(s.out.String(), map[string]string{key: "created key", replacement: "replacement", s.Admin: "admin token"}); len(found) > 0 {
		t.Fatalf("the server's output holds: %s", strings.Join(found, ", "))
	}
}

// TestDashboardOff: with APIKEYD_UI=false the binary serves no dashboard;
// /ui/ is an unknown route of the API.
func TestDashboardOff(t *testing.T) {
	s := startServer(t, withArgs("--ui=false"))
	for _, path := range []string{"/ui/", "/ui/static/htmx.min.js"} {
		problem(t, s.do(t, http.MethodGet, path, "", nil), http.StatusNotFound)
	}
	// The API is unaffected.
	expect(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=p1", s.Admin, nil), http.StatusOK)
}
