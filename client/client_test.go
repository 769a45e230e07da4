package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/client"
	"github.com/apikeyd/apikeyd/internal/testserver"
)

// srv is one real apikeyd for every test and example of the package; each
// test works in a project of its own.
var srv *testserver.Server

func TestMain(m *testing.M) {
	var err error
	srv, err = testserver.Start("--insecure-webhooks")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The examples read these, as a program of yours would.
	os.Setenv("APIKEYD_URL", srv.URL)
	os.Setenv("APIKEYD_TOKEN", srv.AdminToken)
	code := m.Run()
	if err := srv.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// countingTransport counts the requests a client sends.
type countingTransport struct{ n atomic.Int64 }

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// recordingTransport remembers the escaped path of the last request.
type recordingTransport struct{ last string }

func (t *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.last = r.URL.EscapedPath()
	return http.DefaultTransport.RoundTrip(r)
}

func newClient(t *testing.T, token string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(srv.URL, token, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func admin(t *testing.T) *client.Client { return newClient(t, srv.AdminToken) }

var projects atomic.Int64

// project returns a project ID no other test (nor another run of this one,
// with -count) uses, since all share one server.
func project(base string) string {
	return fmt.Sprintf("%s-%d-%d", base, os.Getpid(), projects.Add(1))
}

func create(t *testing.T, c *client.Client, p client.CreateParams) *client.CreatedKey {
	t.Helper()
	k, err := c.CreateKey(t.Context(), p)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return k
}

func TestNew(t *testing.T) {
	for _, u := range []string{"", "localhost:8080", "ftp://h", "http://", "http://u:p@h", "http://h/?q=1"} {
		if _, err := client.New(u, "t"); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	if _, err := client.New("https://keys.example.com/apikeyd/", "t"); err != nil {
		t.Errorf("New with a path: %v", err)
	}
}

func TestKeyLifecycle(t *testing.T) {
	ctx := t.Context()
	c := admin(t)
	expires := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	created := create(t, c, client.CreateParams{
		ProjectID: "lifecycle", Name: "checkout", Scopes: []string{"orders:read", "orders:write"},
		ExpiresAt: expires, EnvironmentID: "prod",
		RotationIntervalDays: 30, RotationWebhookURL: "http://127.0.0.1:9/hook",
	})
	if !strings.HasPrefix(created.Secret, "sk_") || created.KeyPrefix != created.Secret[:12] ||
		!strings.HasPrefix(created.WebhookSecret, "whsec_") {
		t.Fatalf("created %+v", created.Key)
	}
	if created.Status != client.StatusActive || *created.EnvironmentID != "prod" || !created.ExpiresAt.Equal(expires) ||
		*created.RotationIntervalDays != 30 || created.NextRotationAt == nil || created.RevokedAt != nil {
		t.Fatalf("created %+v", created.Key)
	}

	t.Run("Get", func(t *testing.T) {
		got, err := c.GetKey(ctx, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != created.ID || got.Name != "checkout" || !slices.Equal(got.Scopes, []string{"orders:read", "orders:write"}) {
			t.Fatalf("got %+v", got)
		}
	})

	t.Run("UpdateValues", func(t *testing.T) {
		u, err := c.UpdateKey(ctx, created.ID, client.UpdateParams{Name: client.Value("checkout v2"), Scopes: client.Value([]string{"orders:read"})})
		if err != nil {
			t.Fatal(err)
		}
		if u.Name != "checkout v2" || !slices.Equal(u.Scopes, []string{"orders:read"}) || u.ExpiresAt == nil || *u.RotationIntervalDays != 30 {
			t.Fatalf("updated %+v", u.Key)
		}
	})

	t.Run("UpdateNulls", func(t *testing.T) {
		u, err := c.UpdateKey(ctx, created.ID, client.UpdateParams{
			ExpiresAt: client.Null[time.Time](), RotationIntervalDays: client.Null[int](), Scopes: client.Value[[]string](nil),
		})
		if err != nil {
			t.Fatal(err)
		}
		if u.ExpiresAt != nil || u.RotationIntervalDays != nil || u.NextRotationAt != nil || len(u.Scopes) != 0 || u.Name != "checkout v2" {
			t.Fatalf("updated %+v", u.Key)
		}
		if u.RotationWebhookURL == nil {
			t.Fatal("the webhook URL went away with the interval")
		}
		u, err = c.UpdateKey(ctx, created.ID, client.UpdateParams{RotationWebhookURL: client.Null[string]()})
		if err != nil {
			t.Fatal(err)
		}
		if u.RotationWebhookURL != nil {
			t.Fatalf("webhook URL %v after null", *u.RotationWebhookURL)
		}
	})

	t.Run("ErrUpdateInvalid", func(t *testing.T) {
		_, err := c.UpdateKey(ctx, created.ID, client.UpdateParams{Name: client.Null[string]()})
		var e *client.Error
		if !errors.As(err, &e) || !client.IsInvalid(err) || len(e.Fields) != 1 || e.Fields[0].Field != "name" {
			t.Fatalf("err %v", err)
		}
		if e.Type != "urn:apikeyd:problem:invalid" || e.RequestID == "" || !strings.Contains(e.Error(), "name: must not be null") {
			t.Fatalf("error %#v: %q", e, e.Error())
		}
	})

	var rotated *client.Rotated
	t.Run("Rotate", func(t *testing.T) {
		var err error
		rotated, err = c.RotateKey(ctx, created.ID, client.RotateParams{GracePeriodMinutes: new(30)})
		if err != nil {
			t.Fatal(err)
		}
		if rotated.OldKeyID != created.ID || rotated.NewKeyID == created.ID || rotated.Name != "checkout v2" ||
			rotated.Secret == created.Secret || rotated.GraceExpiresAt == nil {
			t.Fatalf("rotated %+v", rotated)
		}
		if d := time.Until(*rotated.GraceExpiresAt); d < 29*time.Minute || d > 31*time.Minute {
			t.Fatalf("grace ends in %v, want 30m", d)
		}
		old, err := c.GetKey(ctx, created.ID)
		if err != nil || old.Status != client.StatusRotating || *old.ReplacedByKeyID != rotated.NewKeyID {
			t.Fatalf("old key %+v, %v", old, err)
		}
	})

	t.Run("ErrRotateTwice", func(t *testing.T) {
		if _, err := c.RotateKey(ctx, created.ID, client.RotateParams{}); !client.IsConflict(err) {
			t.Fatalf("err %v, want a conflict", err)
		}
	})

	t.Run("Revoke", func(t *testing.T) {
		for range 2 { // idempotent
			if err := c.RevokeKey(ctx, rotated.NewKeyID); err != nil {
				t.Fatal(err)
			}
		}
		k, err := c.GetKey(ctx, rotated.NewKeyID)
		if err != nil || k.Status != client.StatusRevoked || k.RevokedAt == nil {
			t.Fatalf("revoked key %+v, %v", k, err)
		}
		if _, err := c.UpdateKey(ctx, rotated.NewKeyID, client.UpdateParams{Name: client.Value("x")}); !client.IsConflict(err) {
			t.Fatalf("patching a revoked key: %v", err)
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := c.GetKey(ctx, "key_00000000000000000000000000")
		if !client.IsNotFound(err) || client.StatusOf(err) != 404 {
			t.Fatalf("err %v", err)
		}
		// An ID is one path segment, whatever it contains.
		rt := &recordingTransport{}
		rc := newClient(t, srv.AdminToken, client.WithHTTPClient(&http.Client{Transport: rt}))
		if err := rc.RevokeKey(ctx, "nope/../../x y"); !client.IsNotFound(err) {
			t.Fatalf("revoke of a garbage ID: %v", err)
		}
		if rt.last != "/v1/api-keys/nope%2F..%2F..%2Fx%20y" {
			t.Fatalf("request path %q", rt.last)
		}
		if _, err := c.GetKey(ctx, ""); err == nil || client.StatusOf(err) != 0 {
			t.Fatalf("empty ID: %v", err)
		}
	})
}

func TestVerify(t *testing.T) {
	ctx := t.Context()
	c := admin(t)
	verifier := create(t, c, client.CreateParams{ProjectID: "verify", Name: "verifier", Scopes: []string{"api-keys:verify"}})
	good := create(t, c, client.CreateParams{ProjectID: "verify", Name: "good", Scopes: []string{"orders:*"}, EnvironmentID: "prod"})
	revoked := create(t, c, client.CreateParams{ProjectID: "verify", Name: "revoked"})
	if err := c.RevokeKey(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	other := create(t, c, client.CreateParams{ProjectID: "elsewhere", Name: "other"})
	v := newClient(t, verifier.Secret)

	for _, tc := range []struct {
		name string
		p    client.VerifyParams
		code client.VerifyCode
	}{
		{"VALID", client.VerifyParams{Key: good.Secret, Scopes: []string{"orders:read"}, EnvironmentID: "prod"}, client.CodeValid},
		{"MALFORMED", client.VerifyParams{Key: "hello"}, client.CodeMalformed},
		{"NOT_FOUND", client.VerifyParams{Key: other.Secret}, client.CodeNotFound},
		{"REVOKED", client.VerifyParams{Key: revoked.Secret}, client.CodeRevoked},
		{"INSUFFICIENT_SCOPE", client.VerifyParams{Key: good.Secret, Scopes: []string{"billing:read"}}, client.CodeInsufficientScope},
		{"ENVIRONMENT_MISMATCH", client.VerifyParams{Key: good.Secret, EnvironmentID: "dev"}, client.CodeEnvironmentMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Verify(ctx, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if got.Code != tc.code || got.Valid != (tc.code == client.CodeValid) {
				t.Fatalf("verdict %+v, want %s", got, tc.code)
			}
		})
	}
	got, err := v.Verify(ctx, client.VerifyParams{Key: good.Secret})
	if err != nil || got.KeyID != good.ID || got.ProjectID != "verify" || *got.EnvironmentID != "prod" || got.Name != "good" ||
		!slices.Equal(got.Scopes, []string{"orders:*"}) {
		t.Fatalf("verdict %+v, %v", got, err)
	}
	// A key without api-keys:verify may not verify.
	if _, err := newClient(t, good.Secret).Verify(ctx, client.VerifyParams{Key: good.Secret}); !client.IsForbidden(err) {
		t.Fatalf("verify without the scope: %v", err)
	}
}

func TestListPagination(t *testing.T) {
	ctx := t.Context()
	c := admin(t)
	paging := project("paging")
	var ids []string
	for i := range 7 {
		k := create(t, c, client.CreateParams{ProjectID: paging, Name: fmt.Sprintf("k%d", i)})
		ids = append(ids, k.ID)
	}
	create(t, c, client.CreateParams{ProjectID: project("paging-other"), Name: "other"})
	slices.Reverse(ids) // newest first

	rt := &countingTransport{}
	counted := newClient(t, srv.AdminToken, client.WithHTTPClient(&http.Client{Transport: rt}))

	t.Run("All", func(t *testing.T) {
		rt.n.Store(0)
		var got []string
		for k, err := range counted.ListKeys(ctx, client.ListParams{ProjectID: paging, Limit: 3}) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, k.ID)
		}
		if !slices.Equal(got, ids) {
			t.Fatalf("listed %v, want %v", got, ids)
		}
		if n := rt.n.Load(); n != 3 {
			t.Fatalf("%d requests for 7 keys in pages of 3, want 3", n)
		}
	})

	t.Run("StopEarly", func(t *testing.T) {
		rt.n.Store(0)
		n := 0
		for _, err := range counted.ListKeys(ctx, client.ListParams{ProjectID: paging, Limit: 3}) {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 2 {
				break
			}
		}
		if rt.n.Load() != 1 {
			t.Fatalf("%d requests to read 2 keys, want 1", rt.n.Load())
		}
	})

	t.Run("ByHand", func(t *testing.T) {
		var got []string
		p := client.ListParams{ProjectID: paging, Limit: 4}
		for {
			page, err := c.ListKeysPage(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range page.Items {
				got = append(got, k.ID)
			}
			if page.NextCursor == "" {
				break
			}
			p.Cursor = page.NextCursor
		}
		if !slices.Equal(got, ids) {
			t.Fatalf("listed %v, want %v", got, ids)
		}
	})

	t.Run("Filtered", func(t *testing.T) {
		if err := c.RevokeKey(ctx, ids[0]); err != nil {
			t.Fatal(err)
		}
		var got []string
		for k, err := range c.ListKeys(ctx, client.ListParams{ProjectID: paging, Status: client.StatusRevoked}) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, k.ID)
		}
		if !slices.Equal(got, ids[:1]) {
			t.Fatalf("revoked keys %v", got)
		}
	})

	t.Run("BehindPathPrefix", func(t *testing.T) {
		// A proxy serving apikeyd under /apikeyd: the Link header's
		// path-absolute target must keep the prefix.
		target, _ := url.Parse(srv.URL)
		proxy := httptest.NewServer(http.StripPrefix("/apikeyd", httputil.NewSingleHostReverseProxy(target)))
		defer proxy.Close()
		pc, err := client.New(proxy.URL+"/apikeyd", srv.AdminToken)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, err := range pc.ListKeys(ctx, client.ListParams{ProjectID: paging, Limit: 2}) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != len(ids) {
			t.Fatalf("listed %d keys through the proxy, want %d", n, len(ids))
		}
	})

	t.Run("ErrMissingProject", func(t *testing.T) {
		for _, err := range c.ListKeys(ctx, client.ListParams{}) {
			if !client.IsInvalid(err) {
				t.Fatalf("err %v, want invalid", err)
			}
		}
	})
}

func TestExpiringKeys(t *testing.T) {
	ctx := t.Context()
	c := admin(t)
	expiring := project("expiring")
	soon := create(t, c, client.CreateParams{ProjectID: expiring, Name: "soon", ExpiresInDays: 5})
	sooner := create(t, c, client.CreateParams{ProjectID: expiring, Name: "sooner", ExpiresInDays: 2})
	create(t, c, client.CreateParams{ProjectID: expiring, Name: "later", ExpiresInDays: 50})
	create(t, c, client.CreateParams{ProjectID: expiring, Name: "never"})

	var got []string
	for k, err := range c.ExpiringKeys(ctx, client.ExpiringParams{ProjectID: expiring, Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, k.ID)
	}
	if !slices.Equal(got, []string{sooner.ID, soon.ID}) {
		t.Fatalf("expiring within 30 days: %v", got)
	}
	page, err := c.ExpiringKeysPage(ctx, client.ExpiringParams{ProjectID: expiring, WithinDays: 60})
	if err != nil || len(page.Items) != 3 || page.NextCursor != "" {
		t.Fatalf("within 60 days: %+v, %v", page, err)
	}
}

func TestAuditEvents(t *testing.T) {
	ctx := t.Context()
	c := admin(t)
	audit := project("audit")
	k := create(t, c, client.CreateParams{ProjectID: audit, Name: "k", Scopes: []string{"api-keys:write"}})
	other := create(t, c, client.CreateParams{ProjectID: audit, Name: "other"})
	// A key acting on its own project is the actor of what it does.
	if err := newClient(t, k.Secret).RevokeKey(ctx, other.ID); err != nil {
		t.Fatal(err)
	}

	var actions []string
	for e, err := range c.AuditEvents(ctx, client.AuditParams{ProjectID: audit, Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		actions = append(actions, e.Action)
		if e.Action == "api_key.revoked" && (e.Actor.Type != "api_key" || *e.Actor.KeyID != k.ID || e.KeyID != other.ID) {
			t.Fatalf("revocation event %+v", e)
		}
	}
	if !slices.Equal(actions, []string{"api_key.revoked", "api_key.created", "api_key.created"}) {
		t.Fatalf("actions %v", actions)
	}
	page, err := c.AuditEventsPage(ctx, client.AuditParams{ProjectID: audit, KeyID: k.ID})
	if err != nil || len(page.Items) != 1 || page.Items[0].Action != "api_key.created" || page.Items[0].Actor.Type != "admin" {
		t.Fatalf("events of one key: %+v, %v", page, err)
	}
}

func TestHealth(t *testing.T) {
	c := newClient(t, "") // no token needed
	if err := c.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestErrors(t *testing.T) {
	ctx := t.Context()
	t.Run("Unauthorized", func(t *testing.T) {
		const token = "sk_00000000000000000000000000000000000000000004LPos6"
		_, err := newClient(t, token).GetKey(ctx, "key_00000000000000000000000000")
		var e *client.Error
		if !errors.As(err, &e) || !client.IsUnauthorized(err) || e.Status != 401 || e.Detail == "" {
			t.Fatalf("err %#v", err)
		}
		if strings.Contains(err.Error(), token) || strings.Contains(fmt.Sprintf("%#v", e), token) {
			t.Fatalf("the error shows the token: %v", err)
		}
	})
	t.Run("Forbidden", func(t *testing.T) {
		reader := create(t, admin(t), client.CreateParams{ProjectID: "errors", Name: "reader", Scopes: []string{"api-keys:read"}})
		_, err := newClient(t, reader.Secret).CreateKey(ctx, client.CreateParams{ProjectID: "errors", Name: "x"})
		if !client.IsForbidden(err) || client.IsNotFound(err) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		_, err := admin(t).CreateKey(ctx, client.CreateParams{ProjectID: "errors", Name: "", Scopes: []string{"bad scope"}})
		var e *client.Error
		if !errors.As(err, &e) || !client.IsInvalid(err) {
			t.Fatalf("err %v", err)
		}
		var fields []string
		for _, f := range e.Fields {
			fields = append(fields, f.Field)
		}
		if !slices.Contains(fields, "name") {
			t.Fatalf("fields %v", fields)
		}
	})
	t.Run("Unavailable", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		c, _ := client.New(dead.URL, "some-token-value-12345")
		err := c.Health(ctx)
		if !client.IsUnavailable(err) || client.StatusOf(err) != 0 {
			t.Fatalf("err %v", err)
		}
		if strings.Contains(err.Error(), "some-token-value-12345") {
			t.Fatalf("the error shows the token: %v", err)
		}
	})
	t.Run("Canceled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		err := admin(t).Health(cctx)
		if !errors.Is(err, context.Canceled) || client.IsUnavailable(err) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("NotAProblem", func(t *testing.T) {
		html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, "<html>down</html>")
		}))
		defer html.Close()
		c, _ := client.New(html.URL, "t")
		err := c.Ready(ctx)
		var e *client.Error
		if !errors.As(err, &e) || e.Status != 503 || e.Title != "Service Unavailable" || e.RetryAfter != 7*time.Second || !client.IsUnavailable(err) {
			t.Fatalf("err %#v", err)
		}
	})
	t.Run("LinkToAnotherHost", func(t *testing.T) {
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Link", `<http://attacker.example/v1/api-keys?cursor=x>; rel="next"`)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `[]`)
		}))
		defer evil.Close()
		c, _ := client.New(evil.URL, "t")
		for _, err := range c.ListKeys(ctx, client.ListParams{ProjectID: "p"}) {
			if err == nil || !strings.Contains(err.Error(), "leaves") {
				t.Fatalf("err %v", err)
			}
		}
	})
}
