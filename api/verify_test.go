package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/keycache"
	"github.com/apikeyd/apikeyd/seal"
	"github.com/apikeyd/apikeyd/service"
	"github.com/apikeyd/apikeyd/sqlite"
	"github.com/apikeyd/apikeyd/usage"
)

// failingStore is a real store whose key lookups can be made to fail, as
// when the database is away.
type failingStore struct {
	*sqlite.Store
	down atomic.Bool
	// lookups counts KeyByHash calls.
	lookups atomic.Int64
}

func (s *failingStore) KeyByHash(ctx context.Context, h apikey.Hash) (*apikey.Key, error) {
	s.lookups.Add(1)
	if s.down.Load() {
		return nil, &apikey.Error{Code: apikey.EUNAVAILABLE, Message: "the database is unavailable"}
	}
	return s.Store.KeyByHash(ctx, h)
}

type fixture struct {
	api   *API
	svc   *service.Service
	store *failingStore
	url   string
	admin string
}

const adminToken = "admin-token-for-tests"

func newFixture(t *testing.T, burst int) *fixture {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "apikeyd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fs := &failingStore{Store: st}
	box, err := seal.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(service.Options{
		Store: st, Index: keycache.New(keycache.Options{Store: fs}), Box: box, AdminToken: adminToken, KeyPrefix: "sk",
	})
	if err != nil {
		t.Fatal(err)
	}
	a := New(Options{Service: svc, AuthFailureBurst: burst})
	srv := httptest.NewServer(observed(a))
	t.Cleanup(srv.Close)
	return &fixture{api: a, svc: svc, store: fs, url: srv.URL, admin: adminToken}
}

func (f *fixture) create(t *testing.T, in service.CreateInput) *service.Created {
	t.Helper()
	c, err := f.svc.Create(t.Context(), apikey.AdminPrincipal, in)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) post(t *testing.T, token string, body []byte) (*http.Response, []byte) {
	t.Helper()
	return f.request(t, http.MethodPost, "/v1/api-keys/verify", token, body)
}

// do sends a request to the fixture's server and returns the status and
// body of the answer.
func (f *fixture) do(t *testing.T, method, path, token string, body []byte) (int, []byte) {
	t.Helper()
	resp, b := f.request(t, method, path, token, body)
	return resp.StatusCode, b
}

// request sends a request, with token as bearer unless it is empty, and
// returns the answer with its body read.
func (f *fixture) request(t *testing.T, method, path, token string, body []byte) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, f.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestVerifyGolden replays requests whose answers were recorded from the
// huma operation this handler replaced: status, content type and body must
// be byte for byte the same.
func TestVerifyGolden(t *testing.T) {
	f := newFixture(t, 100)
	verifier := f.create(t, service.CreateInput{ProjectID: "p1", Name: "verifier", Scopes: []string{apikey.ScopeVerify}})
	raw, err := os.ReadFile("testdata/verify_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden []struct {
		Request     string `json:"request"`
		Status      int    `json:"status"`
		ContentType string `json:"content_type"`
		Response    string `json:"response"`
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	for _, g := range golden {
		t.Run(g.Request, func(t *testing.T) {
			resp, body := f.post(t, verifier.Plaintext, []byte(g.Request))
			if resp.StatusCode != g.Status || resp.Header.Get("Content-Type") != g.ContentType || string(body) != g.Response {
				t.Fatalf("got %d %s %s\nwant %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body, g.Status, g.ContentType, g.Response)
			}
		})
	}
}

// TestVerifyKnownKeys checks the answers about known keys in every state
// against encoding/json's rendering of the same verdict.
func TestVerifyKnownKeys(t *testing.T) {
	f := newFixture(t, 100)
	days := func(n int) *int { return &n }
	env := func(s string) *string { return &s }
	plain := f.create(t, service.CreateInput{ProjectID: "p1", Name: "plain"})
	full := f.create(t, service.CreateInput{ProjectID: "p1", Name: `<b>&"é"\` + "\u2028", Scopes: []string{"orders:*", "profile"},
		EnvironmentID: env("prod"), ExpiresInDays: days(3)})
	revoked := f.create(t, service.CreateInput{ProjectID: "p1", Name: "revoked"})
	if err := f.svc.Revoke(t.Context(), apikey.AdminPrincipal, revoked.Key.ID, ""); err != nil {
		t.Fatal(err)
	}
	old := f.create(t, service.CreateInput{ProjectID: "p1", Name: "rotated"})
	if _, err := f.svc.Rotate(t.Context(), apikey.AdminPrincipal, old.Key.ID, 30); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   service.VerifyInput
	}{
		{"Valid", service.VerifyInput{Key: plain.Plaintext}},
		{"ValidFull", service.VerifyInput{Key: full.Plaintext, Scopes: []string{"orders:read"}, EnvironmentID: "prod"}},
		{"Scope", service.VerifyInput{Key: full.Plaintext, Scopes: []string{"admin"}}},
		{"Environment", service.VerifyInput{Key: full.Plaintext, EnvironmentID: "dev"}},
		{"Revoked", service.VerifyInput{Key: revoked.Plaintext}},
		{"InGrace", service.VerifyInput{Key: old.Plaintext}},
		{"Malformed", service.VerifyInput{Key: "nope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]any{"key": tc.in.Key, "scopes": tc.in.Scopes, "environment_id": tc.in.EnvironmentID}
			if tc.in.Cost.Set {
				m["cost"] = tc.in.Cost.Value
			}
			body, _ := json.Marshal(m)
			v, err := f.svc.Verify(t.Context(), apikey.AdminPrincipal, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(verifyObject(v))
			if err != nil {
				t.Fatal(err)
			}
			resp, got := f.post(t, f.admin, body)
			if resp.StatusCode != http.StatusOK || string(got) != string(want)+"\n" {
				t.Fatalf("got %d %s\nwant %s", resp.StatusCode, got, want)
			}
		})
	}
}

func TestAppendVerdict(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.UTC)
	for name, v := range map[string]service.Verdict{
		"Unknown": {Code: apikey.CodeNotFound},
		"Bare":    {Code: apikey.CodeValid, Known: true, Record: apikey.Record{ID: "key_x", ProjectID: "p"}},
		"Full": {Code: apikey.CodeRotated, Known: true, Record: apikey.Record{ID: "key_x", ProjectID: "p<1>", EnvironmentID: "e&",
			Name: "n\x00\xff\u2029\"", Scopes: []string{"a", "b:*"}, ExpiresAt: at, Replaced: true, GraceExpiresAt: at.Add(time.Second / 3)}},
		"GraceNotReplaced": {Code: apikey.CodeValid, Known: true, Record: apikey.Record{ID: "key_x", GraceExpiresAt: at}},
		"Whole":            {Code: apikey.CodeExpired, Known: true, Record: apikey.Record{ID: "key_x", ExpiresAt: at.Truncate(time.Second)}},
		"OwnerMeta": {Code: apikey.CodeValid, Known: true, Record: apikey.Record{ID: "key_x", OwnerID: "user:1@acme.example",
			Meta: `{"plan":"pro","n":[1,2.5,null],"o":{"é":true}}`}},
		"MetaEscaped": {Code: apikey.CodeIPNotAllowed, Known: true, Record: apikey.Record{ID: "key_x",
			Meta: `{"h":"<b>&amp;</b>","s":"` + "\u2028  " + `"}`}},
		"Metered":          metered(at, true),
		"MeteredNoCredits": metered(at, false),
		"MeteredOwner":     meteredOwner(at, []byte(`{"plan":"pro","n":[1,2]}`)),
		"MeteredOwnerBare": meteredOwner(at, nil),
	} {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(verifyObject(v))
			if err != nil {
				t.Fatal(err)
			}
			if got := appendVerdict(nil, &v); string(got) != string(want)+"\n" {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		})
	}
}

// metered is a verdict the usage engine decided: two limits (the second
// with nothing counted) and, if credits, a balance with a refill.
func metered(at time.Time, credits bool) service.Verdict {
	v := service.Verdict{Code: apikey.CodeRateLimited, Known: true, Metered: true, Record: apikey.Record{ID: "key_x", ProjectID: "p",
		RateLimits: []apikey.RateLimit{{Name: "per_second", Limit: 10, DurationMS: 1000}, {Name: "day.<b>", Limit: 1e9, DurationMS: 86400000}},
		HasCredits: credits}}
	st := &v.Usage.Subjects[0]
	st.NLimits = 2
	st.Limits[0] = usage.LimitState{Remaining: 0, ResetAt: at.Add(1234567 * time.Nanosecond)}
	st.Limits[1] = usage.LimitState{Remaining: 1e9}
	if credits {
		st.Credits, st.Remaining, st.NextRefillAt = true, 42, at.Truncate(time.Hour)
	}
	return v
}

// meteredOwner is metered with an owner's allowance as second subject.
func meteredOwner(at time.Time, meta []byte) service.Verdict {
	v := metered(at, false)
	v.Record.OwnerID = "acme@corp"
	v.Owner = &apikey.Owner{ProjectID: "p", OwnerID: "acme@corp", Meta: meta, HasCredits: true,
		RateLimits: []apikey.RateLimit{{Name: "shared", Limit: 100, DurationMS: 60000}}}
	st := &v.Usage.Subjects[1]
	st.NLimits = 1
	st.Limits[0] = usage.LimitState{Remaining: 7, ResetAt: at}
	st.Credits, st.Remaining = true, 5
	return v
}

// parseVerify is the strict reference parseFast is checked against: what
// huma does with the operation's body, with the operation's own schema.
func parseVerify(a *API, body []byte) (service.VerifyInput, error) {
	if len(body) == 0 {
		return service.VerifyInput{}, newHumaError(http.StatusBadRequest, "request body is required")
	}
	var parsed any
	if err := decodeJSON(body, &parsed); err != nil {
		return service.VerifyInput{}, newHumaError(http.StatusBadRequest, "validation failed",
			&huma.ErrorDetail{Location: "body", Message: err.Error()})
	}
	oapi := a.huma.OpenAPI()
	schema := oapi.Paths["/v1/api-keys/verify"].Post.RequestBody.Content["application/json"].Schema
	res := &huma.ValidateResult{}
	pb := huma.NewPathBuffer(make([]byte, 0, 64), 0)
	pb.Push("body")
	huma.Validate(oapi.Components.Schemas, schema, pb, huma.ModeWriteToServer, parsed, res)
	if len(res.Errors) > 0 {
		return service.VerifyInput{}, newHumaError(http.StatusUnprocessableEntity, "validation failed", res.Errors...)
	}
	var in verifyInput
	if err := decodeJSON(body, &in.Body); err != nil {
		return service.VerifyInput{}, newHumaError(http.StatusBadRequest, "validation failed",
			&huma.ErrorDetail{Location: "body", Message: err.Error()})
	}
	out := service.VerifyInput{Key: in.Body.Key, Scopes: in.Body.Scopes, EnvironmentID: in.Body.EnvironmentID, ClientIP: in.Body.ClientIP}
	if in.Body.Cost != nil {
		out.Cost = apikey.Some(*in.Body.Cost)
	}
	return out, nil
}

// checkParsers fails if parseFast takes a body that the strict decoder
// reads differently or rejects.
func checkParsers(t *testing.T, a *API, body []byte) {
	var vb verifyBuf
	fast, ok := vb.parseFast(body)
	if !ok {
		return
	}
	strict, err := parseVerify(a, body)
	if err != nil {
		t.Fatalf("parseFast took %q, which the strict decoder rejects: %v", body, err)
	}
	if len(fast.Scopes) == 0 && len(strict.Scopes) == 0 {
		fast.Scopes, strict.Scopes = nil, nil
	}
	if !reflect.DeepEqual(fast, strict) {
		t.Fatalf("%q: parseFast %+v, strict %+v", body, fast, strict)
	}
}

func TestParseFast(t *testing.T) {
	a := New(Options{})
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"key":"k"}`, true},
		{" \t\r\n{ \"key\" : \"k\" , \"scopes\" : [ \"a\" , \"b:*\" ] , \"environment_id\" : \"prod\" } \n", true},
		{`{"scopes":[],"key":"k"}`, true},
		{`{"key":"k","client_ip":"2001:db8::1"}`, true},
		{`{"client_ip":"10.0.0.1","key":"k","scopes":["a"]}`, true},
		{`{"key":"k","client_ip":"10.0.0.1","client_ip":"10.0.0.2"}`, false},
		{`{"key":"k","client_ip":"` + strings.Repeat("1", 65) + `"}`, false},
		{`{"key":"k","client_ip":null}`, false},
		{`{"key":""}`, true},
		{`{}`, false},
		{`{"scopes":["a"]}`, false},
		{`{"key":"k",}`, false},
		{`{"key":"k"}x`, false},
		{`{"key":"k"}{}`, false},
		{`{"key":"k","key":"k"}`, false},
		{`{"Key":"k"}`, false},
		{`{"key":"k\""}`, false},
		{`{"key":"é"}`, false},
		{`{"key":"k","extra":1}`, false},
		{`{"key":null}`, false},
		{`{"key":"k","scopes":null}`, false},
		{`{"key":"k","scopes":["a",]}`, false},
		{`{"key":"k","scopes":["a"`, false},
		{`{"key":"k","environment_id":"` + strings.Repeat("e", 129) + `"}`, false},
		{`{"key":"k","scopes":[` + strings.Repeat(`"a",`, 16) + `"a"]}`, false},
		{"\ufeff{\"key\":\"k\"}", false},
		{`{"key":"k"`, false},
		{``, false},
		{`{"key":"k","cost":0}`, true},
		{`{"cost": 1000000 ,"key":"k"}`, true},
		{`{"key":"k","cost":17}`, true},
		{`{"key":"k","cost":1000001}`, false},
		{`{"key":"k","cost":-1}`, false},
		{`{"key":"k","cost":01}`, false},
		{`{"key":"k","cost":1.0}`, false},
		{`{"key":"k","cost":1e3}`, false},
		{`{"key":"k","cost":"1"}`, false},
		{`{"key":"k","cost":null}`, false},
		{`{"key":"k","cost":1,"cost":1}`, false},
		{`{"key":"k","cost":}`, false},
	} {
		var vb verifyBuf
		if _, ok := vb.parseFast([]byte(tc.body)); ok != tc.ok {
			t.Errorf("parseFast(%q) = %v, want %v", tc.body, ok, tc.ok)
		}
		checkParsers(t, a, []byte(tc.body))
	}
}

func FuzzParseFast(f *testing.F) {
	a := New(Options{})
	f.Add([]byte(`{"key":"k","scopes":["a","b"],"environment_id":"e"}`))
	f.Add([]byte(` { "key" : "k" } `))
	f.Add([]byte(`{"key":"k","scopes":[]}`))
	f.Add([]byte(`{"key":"k","cost":12}`))
	f.Fuzz(func(t *testing.T, body []byte) { checkParsers(t, a, body) })
}

func TestVerifyAuth(t *testing.T) {
	f := newFixture(t, 100)
	reader := f.create(t, service.CreateInput{ProjectID: "p1", Name: "reader", Scopes: []string{apikey.ScopeRead}})
	body := []byte(`{"key":"x"}`)

	resp, b := f.post(t, "", body)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no bearer: %d %s", resp.StatusCode, b)
	}
	resp, b = f.post(t, reader.Plaintext, []byte(`{"bad json`))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "api-keys:verify") {
		t.Fatalf("without the scope: %d %s", resp.StatusCode, b)
	}
	resp, b = f.post(t, f.admin, bytes.Repeat([]byte("x"), MaxBodyBytes+1))
	if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("1 MiB + 1 byte body: %d %s", resp.StatusCode, b)
	}
	// The store is away: a bearer the index does not know cannot be
	// decided, and the answer says so.
	f.store.down.Store(true)
	unknown, _ := apikey.GenerateKey("sk")
	resp, b = f.post(t, unknown.Plaintext, body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("store away: %d %s", resp.StatusCode, b)
	}
	// A known bearer still verifies from memory.
	resp, b = f.post(t, f.admin, body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("admin with the store away: %d %s", resp.StatusCode, b)
	}
}

// TestConcurrentSuccessNotLimited: many concurrent requests with a good
// token from one address are never limited, however small the burst;
// concurrent failures still get no more than the burst through.
func TestConcurrentSuccessNotLimited(t *testing.T) {
	f := newFixture(t, 2)
	verifier := f.create(t, service.CreateInput{ProjectID: "p1", Name: "verifier", Scopes: []string{apikey.ScopeVerify}})
	var mu sync.Mutex
	counts := map[string]map[int]int{"good": {}, "bad": {}}
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kind, token := "good", verifier.Plaintext
			if i%3 == 0 {
				kind, token = "bad", "wrong"
			}
			resp, _ := f.post(t, token, []byte(`{"key":"x"}`))
			mu.Lock()
			counts[kind][resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts["bad"][http.StatusUnauthorized] != 2 {
		t.Fatalf("failures answered %v, want exactly 2×401", counts["bad"])
	}
	// Good requests after the two failures may be held back (the address
	// is blocked then); before it, none are. Without failures, none ever.
	f2 := newFixture(t, 2)
	v2 := f2.create(t, service.CreateInput{ProjectID: "p1", Name: "verifier", Scopes: []string{apikey.ScopeVerify}})
	statuses := map[int]int{}
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := f2.post(t, v2.Plaintext, []byte(`{"key":"x"}`))
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[http.StatusOK] != 40 {
		t.Fatalf("40 concurrent good requests got %v", statuses)
	}
}

// TestVerifyOpenAPI: the hand-written route is documented exactly as huma
// documented the operation it replaced.
func TestVerifyOpenAPI(t *testing.T) {
	a := New(Options{})
	raw, err := json.Marshal(a.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths      map[string]any
		Components struct{ Schemas map[string]any }
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]any{"operation": doc.Paths["/v1/api-keys/verify"], "schemas": map[string]any{}}
	for _, name := range []string{"VerifyInputBody", "VerifyObject", "Problem", "FieldProblem"} {
		got["schemas"].(map[string]any)[name] = doc.Components.Schemas[name]
	}
	var want map[string]any
	b, err := os.ReadFile("testdata/verify_openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.MarshalIndent(got, "", " ")
	wantJSON, _ := json.MarshalIndent(want, "", " ")
	if string(gotJSON) != string(wantJSON) {
		t.Fatalf("OpenAPI of verify:\n%s\nwant:\n%s", gotJSON, wantJSON)
	}
}

// discard is a ResponseWriter that keeps nothing, so that the handler's
// own allocations can be measured.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkServeVerify is the API's handler alone, without net/http or
// observation around it: routing, authentication, body, decoding,
// verdict, answer.
func BenchmarkServeVerify(b *testing.B) {
	st, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "apikeyd.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	box, _ := seal.New(make([]byte, 32))
	svc, err := service.New(service.Options{Store: st, Index: keycache.New(keycache.Options{Store: st}), Box: box, AdminToken: adminToken, KeyPrefix: "sk"})
	if err != nil {
		b.Fatal(err)
	}
	a := New(Options{Service: svc})
	verifier, err := svc.Create(b.Context(), apikey.AdminPrincipal, service.CreateInput{ProjectID: "p1", Name: "v", Scopes: []string{apikey.ScopeVerify}})
	if err != nil {
		b.Fatal(err)
	}
	env := "prod"
	k, err := svc.Create(b.Context(), apikey.AdminPrincipal, service.CreateInput{ProjectID: "p1", Name: "k", Scopes: []string{"orders:read"}, EnvironmentID: &env})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"key":"` + k.Plaintext + `","scopes":["orders:read"],"environment_id":"prod"}`)
	req := httptest.NewRequest(http.MethodPost, "/v1/api-keys/verify", nil)
	req.Header.Set("Authorization", "Bearer "+verifier.Plaintext)
	rd := bytes.NewReader(body)
	req.Body = io.NopCloser(rd)
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		clear(w.h)
		a.ServeHTTP(w, req)
	}
}

// TestVerifyMetered runs one sequence of verifies on two keys defined
// alike, one through the fast path and one through huma (scopes: null is
// a body the fast path hands on): the answers agree, and say what the
// limits and the balance have left.
func TestVerifyMetered(t *testing.T) {
	f := newFixture(t, 100)
	def := func(name string) service.CreateInput {
		return service.CreateInput{ProjectID: "p1", Name: name,
			RateLimits: []apikey.RateLimit{{Name: "a", Limit: 2, DurationMS: 60000}},
			Credits:    &apikey.Credits{Remaining: 5}}
	}
	fast, slow := f.create(t, def("twin")), f.create(t, def("twin"))
	for i, step := range []struct {
		cost      string
		code      string
		limitLeft float64
		credits   float64
	}{
		{`2`, "VALID", 1, 3},
		{`4`, "USAGE_EXCEEDED", 1, 3},
		{`0`, "VALID", 0, 3},
		{`1`, "RATE_LIMITED", 0, 3},
	} {
		var answers [2]map[string]any
		for j, body := range []string{
			`{"key":"` + fast.Plaintext + `","cost":` + step.cost + `}`,
			`{"key":"` + slow.Plaintext + `","cost":` + step.cost + `,"scopes":null}`,
		} {
			resp, got := f.post(t, f.admin, []byte(body))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("step %d: %d %s", i, resp.StatusCode, got)
			}
			var m map[string]any
			if err := json.Unmarshal(got, &m); err != nil {
				t.Fatal(err)
			}
			rl := m["ratelimits"].([]any)[0].(map[string]any)
			if m["code"] != step.code || rl["remaining"] != step.limitLeft || m["credits"].(map[string]any)["remaining"] != step.credits {
				t.Fatalf("step %d (%s): %s", i, []string{"fast", "huma"}[j], got)
			}
			delete(m, "key_id")
			delete(rl, "reset_at")
			answers[j] = m
		}
		if !reflect.DeepEqual(answers[0], answers[1]) {
			t.Fatalf("step %d: fast path %v, huma %v", i, answers[0], answers[1])
		}
	}
	// A cost out of range is a 400 naming cost, on either path.
	for _, body := range []string{`{"key":"` + fast.Plaintext + `","cost":1000001}`, `{"key":"` + fast.Plaintext + `","cost":-1}`} {
		if resp, got := f.post(t, f.admin, []byte(body)); resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(got), `"cost"`) {
			t.Fatalf("%s: %d %s", body, resp.StatusCode, got)
		}
	}
}

// BenchmarkServeVerifyMetered is BenchmarkServeVerify with a key that has
// one rate limit (never reached) and credits (never exhausted): the cost
// of admission by the usage engine, in process.
func BenchmarkServeVerifyMetered(b *testing.B) {
	for _, metered := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "limit+credits"}[metered], func(b *testing.B) {
			benchVerify(b, metered)
		})
	}
}

func benchVerify(b *testing.B, metered bool) {
	st, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "apikeyd.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	box, _ := seal.New(make([]byte, 32))
	svc, err := service.New(service.Options{Store: st, Index: keycache.New(keycache.Options{Store: st}), Box: box, AdminToken: adminToken, KeyPrefix: "sk"})
	if err != nil {
		b.Fatal(err)
	}
	a := New(Options{Service: svc})
	verifier, err := svc.Create(b.Context(), apikey.AdminPrincipal, service.CreateInput{ProjectID: "p1", Name: "v", Scopes: []string{apikey.ScopeVerify}})
	if err != nil {
		b.Fatal(err)
	}
	in := service.CreateInput{ProjectID: "p1", Name: "k", Scopes: []string{"orders:read"}}
	if metered {
		in.RateLimits = []apikey.RateLimit{{Name: "per_second", Limit: apikey.MaxRateLimit, DurationMS: 1000}}
		in.Credits = &apikey.Credits{Remaining: apikey.MaxCredits}
	}
	k, err := svc.Create(b.Context(), apikey.AdminPrincipal, in)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"key":"` + k.Plaintext + `","scopes":["orders:read"]}`)
	req := httptest.NewRequest(http.MethodPost, "/v1/api-keys/verify", nil)
	req.Header.Set("Authorization", "Bearer "+verifier.Plaintext)
	rd := bytes.NewReader(body)
	req.Body = io.NopCloser(rd)
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		clear(w.h)
		a.ServeHTTP(w, req)
	}
}
