package guard

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/client"
	"github.com/apikeyd/apikeyd/internal/testserver"
)

// fixture is a real apikeyd with a verifier key for project "shop" and a
// few keys of that project.
type fixture struct {
	srv      *testserver.Server
	admin    *client.Client
	verifier string
	calls    *atomic.Int64 // verifications the guard sent to apikeyd
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := testserver.New(t)
	admin, err := client.New(srv.URL, srv.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: srv, admin: admin, calls: &atomic.Int64{}}
	f.verifier = f.create(t, client.CreateParams{ProjectID: "shop", Name: "orders API", Scopes: []string{"api-keys:verify"}}).Secret
	return f
}

func (f *fixture) create(t *testing.T, p client.CreateParams) *client.CreatedKey {
	t.Helper()
	k, err := f.admin.CreateKey(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// transport is the client's own, as a guard made without WithHTTPClient
// would use; the counting transport wraps it.
var transport = client.NewTransport()

type countingTransport struct{ n *atomic.Int64 }

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return transport.RoundTrip(r)
}

// guard returns a guard verifying through the fixture's verifier key.
func (f *fixture) guard(t *testing.T, o Options) *Guard {
	t.Helper()
	c, err := client.New(f.srv.URL, f.verifier, client.WithHTTPClient(&http.Client{Transport: countingTransport{f.calls}}))
	if err != nil {
		t.Fatal(err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return New(c, o)
}

// sample is the user's own handler: it answers with the identity it was
// given.
var sample = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	id, ok := IdentityFrom(r.Context())
	if !ok {
		http.Error(w, "no identity", http.StatusInternalServerError)
		return
	}
	json.NewEncoder(w).Encode(map[string]any{
		"key_id": id.KeyID, "project_id": id.ProjectID, "environment_id": id.EnvironmentID,
		"name": id.Name, "scopes": id.Scopes, "can_refund": id.HasScope("orders:refund"),
	})
})

// call sends GET / to h with the given Authorization header.
func call(h http.Handler, authorization string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/orders", nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// problemOf checks that rec is a problem+json with status and returns it.
func problemOf(t *testing.T, rec *httptest.ResponseRecorder, status int) map[string]any {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d: %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var p map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p["status"] != float64(status) || p["type"] == "" || p["title"] == "" || p["detail"] == "" {
		t.Fatalf("problem %v", p)
	}
	return p
}

func TestRequire(t *testing.T) {
	f := newFixture(t)
	valid := f.create(t, client.CreateParams{ProjectID: "shop", Name: "acme checkout", Scopes: []string{"orders:*"}, EnvironmentID: "prod"})
	reader := f.create(t, client.CreateParams{ProjectID: "shop", Name: "reader", Scopes: []string{"orders:read"}, EnvironmentID: "prod"})
	revoked := f.create(t, client.CreateParams{ProjectID: "shop", Name: "revoked", Scopes: []string{"orders:*"}, EnvironmentID: "prod"})
	if err := f.admin.RevokeKey(t.Context(), revoked.ID); err != nil {
		t.Fatal(err)
	}
	dev := f.create(t, client.CreateParams{ProjectID: "shop", Name: "dev", Scopes: []string{"orders:*"}, EnvironmentID: "dev"})
	foreign := f.create(t, client.CreateParams{ProjectID: "other-shop", Name: "foreign", Scopes: []string{"orders:*"}})

	g := f.guard(t, Options{Environment: "prod"})
	h := g.Require("orders:read", "orders:write")(sample)

	t.Run("OK/ValidKey", func(t *testing.T) {
		rec := call(h, "Bearer "+valid.Secret)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		var got map[string]any
		json.Unmarshal(rec.Body.Bytes(), &got)
		want := map[string]any{"key_id": valid.ID, "project_id": "shop", "environment_id": "prod", "name": "acme checkout",
			"scopes": []any{"orders:*"}, "can_refund": true}
		for k, v := range want {
			if fmt.Sprint(got[k]) != fmt.Sprint(v) {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
	})
	t.Run("OK/SchemeCase", func(t *testing.T) {
		if rec := call(h, "bearer "+valid.Secret); rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
	})

	unauthorized := []struct{ name, header string }{
		{"ErrMissingKey", ""},
		{"ErrOtherScheme", "Basic " + valid.Secret},
		{"ErrEmptyBearer", "Bearer "},
		{"ErrMalformed", "Bearer not-a-key"},
		{"ErrTooLong", "Bearer " + strings.Repeat("a", 600)},
		{"ErrControlChars", "Bearer sk_a\x01b"},
		{"ErrRevokedKey", "Bearer " + revoked.Secret},
		{"ErrOtherEnvironment", "Bearer " + dev.Secret},
		{"ErrOtherProject", "Bearer " + foreign.Secret},
		{"ErrUnknownKey", "Bearer sk_00000000000000000000000000000000000000000004LPos6"},
	}
	for _, tc := range unauthorized {
		t.Run(tc.name, func(t *testing.T) {
			rec := call(h, tc.header)
			p := problemOf(t, rec, http.StatusUnauthorized)
			www := rec.Header().Get("WWW-Authenticate")
			if !strings.HasPrefix(www, `Bearer realm="api"`) {
				t.Fatalf("WWW-Authenticate %q", www)
			}
			if tc.name != "ErrMissingKey" && tc.name != "ErrOtherScheme" && tc.name != "ErrEmptyBearer" && !strings.Contains(www, `error="invalid_token"`) {
				t.Fatalf("WWW-Authenticate %q lacks invalid_token", www)
			}
			if strings.Contains(rec.Body.String(), valid.Secret) || strings.Contains(fmt.Sprint(p), "sk_") {
				t.Fatalf("the answer repeats the key: %s", rec.Body)
			}
		})
	}

	t.Run("ErrInsufficientScope", func(t *testing.T) {
		rec := call(h, "Bearer "+reader.Secret)
		problemOf(t, rec, http.StatusForbidden)
		if www := rec.Header().Get("WWW-Authenticate"); www != `Bearer realm="api", error="insufficient_scope", scope="orders:read orders:write"` {
			t.Fatalf("WWW-Authenticate %q", www)
		}
		// The same key passes a route that asks less.
		if rec := call(g.Require("orders:read")(sample), "Bearer "+reader.Secret); rec.Code != http.StatusOK {
			t.Fatalf("orders:read route: %d", rec.Code)
		}
	})

	t.Run("ErrUnreachable", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		c, _ := client.New(dead.URL, f.verifier)
		rec := call(New(c, Options{Logger: slog.New(slog.DiscardHandler)}).Require("orders:read")(sample), "Bearer "+valid.Secret)
		problemOf(t, rec, http.StatusServiceUnavailable)
		if rec.Header().Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
	})

	t.Run("ErrVerifierMisconfigured", func(t *testing.T) {
		// The guard's own token lacks api-keys:verify: not the caller's
		// fault, so 503 and a log line for the operator.
		c, _ := client.New(f.srv.URL, reader.Secret)
		var logs strings.Builder
		g := New(c, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		problemOf(t, call(g.Require("orders:read")(sample), "Bearer "+valid.Secret), http.StatusServiceUnavailable)
		if !strings.Contains(logs.String(), "403") || strings.Contains(logs.String(), valid.Secret) || strings.Contains(logs.String(), reader.Secret) {
			t.Fatalf("log %q", logs.String())
		}
	})

	t.Run("ErrInvalidSetup", func(t *testing.T) {
		for name, fn := range map[string]func(){
			"scope":       func() { g.Require("bad scope") },
			"environment": func() { New(nil, Options{Environment: "a b"}) },
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("invalid %s accepted", name)
					}
				}()
				fn()
			}()
		}
	})
}

func TestCache(t *testing.T) {
	f := newFixture(t)
	k := f.create(t, client.CreateParams{ProjectID: "shop", Name: "k", Scopes: []string{"orders:read"}})
	now := time.Now()
	g := f.guard(t, Options{CacheTTL: time.Minute, CacheSize: 3})
	g.now = func() time.Time { return now }
	h := g.Require("orders:read")(sample)

	t.Run("OK/PositiveCached", func(t *testing.T) {
		f.calls.Store(0)
		for range 3 {
			if rec := call(h, "Bearer "+k.Secret); rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
		}
		if n := f.calls.Load(); n != 1 {
			t.Fatalf("%d verifications for 3 requests within the TTL, want 1", n)
		}
	})

	t.Run("OK/KeyedByHashAndRequirement", func(t *testing.T) {
		g.cache.mu.Lock()
		dump := fmt.Sprintf("%+v", g.cache.m)
		g.cache.mu.Unlock()
		if strings.Contains(dump, k.Secret) || strings.Contains(dump, k.Secret[3:20]) {
			t.Fatal("the cache holds the key itself")
		}
		// Another route's requirement is verified on its own.
		f.calls.Store(0)
		if rec := call(g.Require("orders:write")(sample), "Bearer "+k.Secret); rec.Code != http.StatusForbidden {
			t.Fatalf("orders:write with an orders:read key: %d", rec.Code)
		}
		if f.calls.Load() != 1 {
			t.Fatal("a verdict for orders:read was reused for orders:write")
		}
	})

	t.Run("OK/RevocationAfterTTL", func(t *testing.T) {
		if err := f.admin.RevokeKey(t.Context(), k.ID); err != nil {
			t.Fatal(err)
		}
		// Within the TTL the cached verdict still stands: the documented
		// price of caching.
		if rec := call(h, "Bearer "+k.Secret); rec.Code != http.StatusOK {
			t.Fatalf("within the TTL: %d", rec.Code)
		}
		now = now.Add(time.Minute)
		if rec := call(h, "Bearer "+k.Secret); rec.Code != http.StatusUnauthorized {
			t.Fatalf("after the TTL: %d, want 401", rec.Code)
		}
	})

	t.Run("OK/NegativesNotCached", func(t *testing.T) {
		f.calls.Store(0)
		for range 3 {
			call(h, "Bearer "+k.Secret)
		}
		if n := f.calls.Load(); n != 3 {
			t.Fatalf("%d verifications of a revoked key in 3 requests, want 3", n)
		}
	})

	t.Run("OK/NotPastKeyExpiry", func(t *testing.T) {
		long := f.guard(t, Options{CacheTTL: 24 * time.Hour})
		exp := f.create(t, client.CreateParams{ProjectID: "shop", Name: "exp", Scopes: []string{"orders:read"},
			ExpiresAt: time.Now().Add(10 * time.Minute)})
		if rec := call(long.Require("orders:read")(sample), "Bearer "+exp.Secret); rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
		e := long.cache.m[cacheKey{hash: sha256.Sum256([]byte(exp.Secret)), req: "\x00orders:read", from: netip.MustParseAddr("192.0.2.1")}]
		if e.id == nil || !e.until.Equal(*exp.ExpiresAt) {
			t.Fatalf("cached until %v, want the key's expiry %v", e.until, *exp.ExpiresAt)
		}
	})

	t.Run("OK/Bounded", func(t *testing.T) {
		for i := range 10 {
			kk := f.create(t, client.CreateParams{ProjectID: "shop", Name: fmt.Sprint(i), Scopes: []string{"orders:read"}})
			if rec := call(h, "Bearer "+kk.Secret); rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			if n := g.cache.len(); n > 3 {
				t.Fatalf("%d cached verdicts, bound 3", n)
			}
		}
	})
}

func TestNoCacheByDefault(t *testing.T) {
	f := newFixture(t)
	k := f.create(t, client.CreateParams{ProjectID: "shop", Name: "k", Scopes: []string{"orders:read"}})
	h := f.guard(t, Options{}).Require("orders:read")(sample)
	if rec := call(h, "Bearer "+k.Secret); rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if err := f.admin.RevokeKey(t.Context(), k.ID); err != nil {
		t.Fatal(err)
	}
	if rec := call(h, "Bearer "+k.Secret); rec.Code != http.StatusUnauthorized {
		t.Fatalf("revoked key without a cache: %d, want 401 at once", rec.Code)
	}
}

// TestOverHTTP runs the guard in a real server, as a user's API would.
func TestOverHTTP(t *testing.T) {
	f := newFixture(t)
	k := f.create(t, client.CreateParams{ProjectID: "shop", Name: "k", Scopes: []string{"orders:read"}})
	mux := http.NewServeMux()
	mux.Handle("GET /orders", f.guard(t, Options{}).Require("orders:read")(sample))
	api := httptest.NewServer(mux)
	defer api.Close()
	for token, want := range map[string]int{k.Secret: http.StatusOK, "": http.StatusUnauthorized} {
		req, _ := http.NewRequest(http.MethodGet, api.URL+"/orders", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("status %d, want %d: %s", resp.StatusCode, want, body)
		}
		if want == http.StatusOK && !strings.Contains(string(body), k.ID) {
			t.Fatalf("body %s", body)
		}
	}
}

// countingProxy is a TCP listener on loopback in front of apikeyd: it
// counts the connections it accepts and relays each to apikeyd byte for
// byte, so that the test sees every connection a client opens.
type countingProxy struct {
	URL      string
	accepted atomic.Int64
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{URL: "http://" + ln.Addr().String()}
	var (
		mu     sync.Mutex
		open   = map[net.Conn]bool{}
		relays sync.WaitGroup
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		relays.Wait()
	})
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return // closed at cleanup
			}
			p.accepted.Add(1)
			mu.Lock()
			open[in] = true
			mu.Unlock()
			relays.Go(func() {
				defer func() {
					mu.Lock()
					delete(open, in)
					mu.Unlock()
					in.Close()
				}()
				out, err := net.Dial("tcp", u.Host)
				if err != nil {
					return
				}
				defer out.Close()
				go func() { io.Copy(out, in); out.Close() }()
				io.Copy(in, out)
			})
		}
	}()
	return p
}

// TestConnectionReuse sends many concurrent requests through guards and
// counts the connections each opens to apikeyd. A guard made as the
// documentation shows (client.New without options), or with an http.Client
// of one's own on client.NewTransport, reuses its connections whatever the
// verdict it gets: it opens at most twice as many as it has requests in flight (a
// connection is back in the pool a moment after its answer was read, so
// the next request may find none idle yet). net/http's default transport,
// keeping 2 idle connections, opens about one per request.
func TestConnectionReuse(t *testing.T) {
	f := newFixture(t)
	valid := f.create(t, client.CreateParams{ProjectID: "shop", Name: "valid", Scopes: []string{"orders:read"}})
	revoked := f.create(t, client.CreateParams{ProjectID: "shop", Name: "revoked", Scopes: []string{"orders:read"}})
	if err := f.admin.RevokeKey(t.Context(), revoked.ID); err != nil {
		t.Fatal(err)
	}
	const concurrency, perWorker = 16, 25
	for _, tc := range []struct {
		name   string
		token  string // the guard's own token
		opts   []client.Option
		key    string // the key presented to the guard
		want   int
		reused bool // whether connections are reused (else: the contrast)
	}{
		{"OK/Valid", f.verifier, nil, valid.Secret, http.StatusOK, true},
		{"OK/Refused", f.verifier, nil, revoked.Secret, http.StatusUnauthorized, true},
		// (Not a refused guard token: apikeyd closes the connection of a
		// request it refuses with a body, SPEC §12, so such a guard, a
		// misconfiguration it logs, dials once a request.)
		{"OK/OwnHTTPClient", f.verifier, []client.Option{client.WithHTTPClient(&http.Client{Transport: client.NewTransport()})},
			valid.Secret, http.StatusOK, true},
		// The measure sees churn: the same load through net/http's
		// default transport opens far more connections.
		{"Contrast/DefaultTransport", f.verifier, []client.Option{client.WithHTTPClient(&http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()})},
			valid.Secret, http.StatusOK, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := newCountingProxy(t, f.srv.URL)
			c, err := client.New(proxy.URL, tc.token, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			g := New(c, Options{Logger: slog.New(slog.DiscardHandler)})
			api := httptest.NewServer(g.Require("orders:read")(sample))
			defer api.Close()
			caller := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
			defer caller.CloseIdleConnections()

			var wg sync.WaitGroup
			var wrong atomic.Int64
			for range concurrency {
				wg.Go(func() {
					for range perWorker {
						req, _ := http.NewRequest(http.MethodGet, api.URL+"/orders", nil)
						req.Header.Set("Authorization", "Bearer "+tc.key)
						resp, err := caller.Do(req)
						if err != nil {
							wrong.Add(1)
							continue
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != tc.want {
							wrong.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if n := wrong.Load(); n > 0 {
				t.Fatalf("%d of %d requests without status %d", n, concurrency*perWorker, tc.want)
			}
			n := proxy.accepted.Load()
			t.Logf("%d connections for %d requests, %d at a time", n, concurrency*perWorker, concurrency)
			if reused := n >= 1 && n <= 2*concurrency; reused != tc.reused {
				t.Fatalf("the guard opened %d connections to apikeyd for %d requests, %d at a time; reuse means 1 to %d",
					n, concurrency*perWorker, concurrency, 2*concurrency)
			}
		})
	}
}

// TestRevocationDelay revokes a key the guard has just let through and
// sends it again: without a cache it is refused on the very next request;
// with one, the cached verdict may serve it until CacheTTL has passed since
// it was fetched (the documented bound), and never after.
func TestRevocationDelay(t *testing.T) {
	f := newFixture(t)
	const ttl = 30 * time.Second
	// A step presents the key again, after this long since the revocation,
	// and expects this status.
	type step struct {
		after time.Duration
		want  int
	}
	for _, tc := range []struct {
		name  string
		ttl   time.Duration
		steps []step
	}{
		{"OK/NoCache", 0, []step{{0, http.StatusUnauthorized}}},
		{"OK/Cache", ttl, []step{{0, http.StatusOK}, {ttl - time.Nanosecond, http.StatusOK}, {ttl, http.StatusUnauthorized}, {ttl + time.Hour, http.StatusUnauthorized}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := f.create(t, client.CreateParams{ProjectID: "shop", Name: "k", Scopes: []string{"orders:read"}})
			start := time.Now()
			now := start
			g := f.guard(t, Options{CacheTTL: tc.ttl})
			g.now = func() time.Time { return now }
			h := g.Require("orders:read")(sample)
			if rec := call(h, "Bearer "+k.Secret); rec.Code != http.StatusOK {
				t.Fatalf("before the revocation: %d", rec.Code)
			}
			if err := f.admin.RevokeKey(t.Context(), k.ID); err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.steps {
				now = start.Add(s.after)
				if rec := call(h, "Bearer "+k.Secret); rec.Code != s.want {
					t.Fatalf("%v after the revocation: %d, want %d", s.after, rec.Code, s.want)
				}
			}
		})
	}
}

// BenchmarkRequire is one guarded request, its verification sent to a real
// apikeyd on loopback in the same process: what the guard adds to a
// request of your API, apikeyd's work included (scripts/bench-guard
// measures the processes apart, under load).
func BenchmarkRequire(b *testing.B) {
	srv := testserver.New(b)
	admin, err := client.New(srv.URL, srv.AdminToken)
	if err != nil {
		b.Fatal(err)
	}
	create := func(p client.CreateParams) string {
		k, err := admin.CreateKey(b.Context(), p)
		if err != nil {
			b.Fatal(err)
		}
		return k.Secret
	}
	verifier := create(client.CreateParams{ProjectID: "shop", Name: "verifier", Scopes: []string{"api-keys:verify"}})
	key := create(client.CreateParams{ProjectID: "shop", Name: "k", Scopes: []string{"orders:read"}, EnvironmentID: "prod"})
	c, err := client.New(srv.URL, verifier)
	if err != nil {
		b.Fatal(err)
	}
	h := New(c, Options{Environment: "prod"}).Require("orders:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "/orders", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		for pb.Next() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
}

// TestUsageLimits: a key over its rate limit gets 429 with Retry-After and
// the RateLimit-Policy and RateLimit fields; a key out of credits gets 429
// problem+json; with a cache, a metered key is still verified every time.
func TestUsageLimits(t *testing.T) {
	f := newFixture(t)
	g := f.guard(t, Options{CacheTTL: time.Minute})
	h := g.Require()(sample)
	limited := f.create(t, client.CreateParams{ProjectID: "shop", Name: "limited",
		RateLimits: []client.RateLimit{{Name: "per_minute", Limit: 2, DurationMS: 60000}}})
	for i := range 2 {
		if rec := call(h, "Bearer "+limited.Secret); rec.Code != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	before := f.calls.Load()
	rec := call(h, "Bearer "+limited.Secret)
	problemOf(t, rec, http.StatusTooManyRequests)
	if f.calls.Load() != before+1 {
		t.Fatal("a metered key's verdict was answered from the cache")
	}
	if got := rec.Header().Get("RateLimit-Policy"); got != `"per_minute";q=2;w=60` {
		t.Errorf("RateLimit-Policy %q", got)
	}
	if got := rec.Header().Get("RateLimit"); !strings.HasPrefix(got, `"per_minute";r=0;t=`) {
		t.Errorf("RateLimit %q", got)
	}
	if ra, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 66 {
		t.Errorf("Retry-After %q", rec.Header().Get("Retry-After"))
	}
	poor := f.create(t, client.CreateParams{ProjectID: "shop", Name: "poor", Credits: &client.Credits{Remaining: 1}})
	if rec := call(h, "Bearer "+poor.Secret); rec.Code != http.StatusOK {
		t.Fatalf("first request on 1 credit: %d", rec.Code)
	}
	rec = call(h, "Bearer "+poor.Secret)
	problemOf(t, rec, http.StatusTooManyRequests)
	if rec.Header().Get("RateLimit") != "" {
		t.Errorf("USAGE_EXCEEDED with RateLimit %q", rec.Header().Get("RateLimit"))
	}
}

// TestClientIP: the guard sends the request's address as client_ip, so that
// a key with an IP allowlist works behind it from inside the list and is
// refused from outside, and a cached verdict is never reused for another
// address.
func TestClientIP(t *testing.T) {
	f := newFixture(t)
	// httptest.NewRequest's peer is 192.0.2.1.
	key := f.create(t, client.CreateParams{ProjectID: "shop", Name: "office only", IPAllowlist: []string{"192.0.2.0/24"}}).Secret
	t.Run("OKPeerInList", func(t *testing.T) {
		if rec := call(f.guard(t, Options{}).Require()(sample), "Bearer "+key); rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
	t.Run("ErrOutsideList", func(t *testing.T) {
		g := f.guard(t, Options{ClientIP: func(*http.Request) netip.Addr { return netip.MustParseAddr("203.0.113.9") }})
		problemOf(t, call(g.Require()(sample), "Bearer "+key), http.StatusUnauthorized)
	})
	t.Run("ErrCacheIsPerAddress", func(t *testing.T) {
		from := netip.MustParseAddr("192.0.2.7")
		g := f.guard(t, Options{CacheTTL: time.Hour, ClientIP: func(*http.Request) netip.Addr { return from }})
		h := g.Require()(sample)
		if rec := call(h, "Bearer "+key); rec.Code != http.StatusOK {
			t.Fatalf("inside the list: status %d: %s", rec.Code, rec.Body)
		}
		from = netip.MustParseAddr("198.51.100.1")
		problemOf(t, call(h, "Bearer "+key), http.StatusUnauthorized)
	})
}
