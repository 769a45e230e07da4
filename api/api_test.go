package api

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/keycache"
	"github.com/apikeyd/apikeyd/lastused"
	"github.com/apikeyd/apikeyd/logging"
	"github.com/apikeyd/apikeyd/metrics"
	"github.com/apikeyd/apikeyd/observe"
	"github.com/apikeyd/apikeyd/seal"
	"github.com/apikeyd/apikeyd/service"
	"github.com/apikeyd/apikeyd/sqlite"
)

const testAdmin = "test-admin-token-0123456789"

// newTestAPI returns an API on a fresh SQLite store, logging to log.
func newTestAPI(tb testing.TB, log *slog.Logger) *API {
	tb.Helper()
	store, err := sqlite.Open(tb.Context(), filepath.Join(tb.TempDir(), "apikeyd.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	mk, _ := seal.GenerateKey()
	key, _ := seal.ParseKey(mk)
	box, err := seal.New(key)
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := service.New(service.Options{Store: store, Box: box, AdminToken: testAdmin, KeyPrefix: "sk"})
	if err != nil {
		tb.Fatal(err)
	}
	return New(Options{Service: svc, Logger: log, Metrics: metrics.New(), Ready: svc.Ready, AuthFailureBurst: 1 << 20})
}

// observed returns a's handler as the server mounts it: wearing the
// observation middleware (request IDs, metrics, request log lines), with
// a's logger and metrics.
func observed(a *API) http.Handler {
	return observe.Middleware(observe.Options{Logger: a.log, Metrics: a.metrics, TrustedProxies: a.trusted, Secret: a.svc.IsAdminToken})(a)
}

// TestRoutesMatchOpenAPI fails when a route is served that /openapi.json
// does not describe, or described that is not served.
func TestRoutesMatchOpenAPI(t *testing.T) {
	a := newTestAPI(t, nil)
	served := a.Routes()
	var documented []string
	for path, item := range a.OpenAPI().Paths {
		for method, op := range map[string]*huma.Operation{
			http.MethodGet: item.Get, http.MethodPost: item.Post, http.MethodPut: item.Put, http.MethodPatch: item.Patch,
			http.MethodDelete: item.Delete, http.MethodHead: item.Head, http.MethodOptions: item.Options, http.MethodTrace: item.Trace,
		} {
			if op != nil {
				documented = append(documented, method+" "+path)
			}
		}
	}
	slices.Sort(documented)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("%s is served but not in the OpenAPI document", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(served, d) {
			t.Errorf("%s is in the OpenAPI document but not served", d)
		}
	}
	// Every documented operation reaches its own handler, not another
	// route's nor the catch-all.
	for _, d := range documented {
		method, path, _ := strings.Cut(d, " ")
		target := strings.ReplaceAll(path, "{keyID}", "key_0000000000000000000000000a")
		_, pattern := a.mux.Handler(httptest.NewRequest(method, target, nil))
		if pattern != d {
			t.Errorf("%s %s is routed to %q, want %q", method, target, pattern, d)
		}
	}
	if len(served) < 12 {
		t.Fatalf("only %d routes recorded: %v", len(served), served)
	}
}

// TestOpenAPIDocument checks /openapi.json as served: no operation lists
// a 422 (invalid input is 400), every operation that takes a body or
// query parameters lists 400, and the schemas are apikeyd's, not the
// huma types the document itself is made of.
func TestOpenAPIDocument(t *testing.T) {
	srv := httptest.NewServer(newTestAPI(t, nil))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				In string `json:"in"`
			} `json:"parameters"`
			RequestBody any            `json:"requestBody"`
			Responses   map[string]any `json:"responses"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/openapi.json: %d %v", resp.StatusCode, err)
	}
	operations := 0
	for path, item := range doc.Paths {
		for method, op := range item {
			operations++
			if _, ok := op.Responses["422"]; ok {
				t.Errorf("%s %s documents a 422, which the server never sends", method, path)
			}
			validated := op.RequestBody != nil
			for _, p := range op.Parameters {
				validated = validated || p.In == "query"
			}
			if _, ok := op.Responses["400"]; validated && !ok {
				t.Errorf("%s %s validates its input but documents no 400", method, path)
			}
		}
	}
	if operations < 12 {
		t.Fatalf("only %d operations documented", operations)
	}
	for _, name := range []string{"OpenAPI", "Components", "Contact", "Info", "License", "Server", "PathItem",
		"Operation", "Param", "RequestBody", "Response", "MediaType", "Encoding", "Example", "Link", "Schema",
		"SecurityScheme", "OAuthFlows", "Tag", "ExternalDocs", "Discriminator"} {
		if _, ok := doc.Components.Schemas[name]; ok {
			t.Errorf("components.schemas has huma's own type %s", name)
		}
	}
	for _, name := range []string{"KeyObject", "CreatedKeyObject", "RotateObject", "VerifyObject", "Problem", "FieldProblem"} {
		if _, ok := doc.Components.Schemas[name]; !ok {
			t.Errorf("components.schemas lacks %s", name)
		}
	}
	doc200, _ := json.Marshal(doc.Paths["/openapi.json"]["get"].Responses["200"])
	if strings.Contains(string(doc200), "$ref") || !strings.Contains(string(doc200), `"type":"object"`) {
		t.Errorf("/openapi.json is documented as %s, want a plain object", doc200)
	}
}

func TestRequestID(t *testing.T) {
	a := newTestAPI(t, nil)
	for _, tc := range []struct {
		name, in string
		kept     bool
	}{
		{"OK/UUID", "0b8f3c1e-6f0e-4c1a-9d35-2b8c1f1d2e3a", true},
		{"OK/ULID", "01JD3M5X8Q7W9E2R4T6Y8U0I1O", true},
		{"OK/Dotted", "req.42:7", true},
		{"OK/MaxLen", strings.Repeat("a", 128), true},
		{"ErrEmpty", "", false},
		{"ErrTooLong", strings.Repeat("a", 129), false},
		{"ErrSpace", "a b", false},
		{"ErrNewline", "a\nlevel=ERROR", false},
		{"ErrUnderscore", "req_1", false},
		{"ErrKey", "sk_00000000000000000000000000000000000000000004LPos6", false},
		{"ErrAdminToken", testAdmin, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
			if tc.in != "" {
				req.Header.Set("X-Request-Id", tc.in)
			}
			rec := httptest.NewRecorder()
			observed(a).ServeHTTP(rec, req)
			got := rec.Header().Get("X-Request-Id")
			if tc.kept && got != tc.in {
				t.Fatalf("X-Request-Id %q, want %q kept", got, tc.in)
			}
			if !tc.kept && (got == tc.in || len(got) != 32) {
				t.Fatalf("X-Request-Id %q, want a new 32-character ID", got)
			}
		})
	}
}

// logLines is a concurrency-safe log sink that parses JSON lines.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logLines) requests(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(l.buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if m["msg"] == "request" {
			out = append(out, m)
		}
	}
	return out
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func serve(a *API, method, target, token, body string, header ...string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	req.RemoteAddr = "192.0.2.7:5555"
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	observed(a).ServeHTTP(rec, req)
	return rec
}

// TestRequestLog checks the fields of the request log lines, and that no
// key, token, query string or raw path reaches them.
func TestRequestLog(t *testing.T) {
	logs := &logLines{}
	a := newTestAPI(t, slog.New(slog.NewJSONHandler(logs, nil)))

	rec := serve(a, http.MethodPost, "/v1/api-keys", testAdmin, `{"project_id": "acme", "name": "n", "scopes": ["api-keys:*"]}`, "X-Request-Id", "create-1")
	if rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	var created struct{ ID, Key string }
	json.Unmarshal(rec.Body.Bytes(), &created)
	serve(a, http.MethodGet, "/v1/api-keys/"+created.ID, created.Key, "")
	serve(a, http.MethodPost, "/v1/api-keys/verify", testAdmin, `{"key": "`+created.Key+`"}`)
	serve(a, http.MethodGet, "/v1/api-keys?project_id=acme&note="+created.Key, testAdmin, "")
	serve(a, http.MethodGet, "/v1/api-keys/"+created.Key, testAdmin, "")
	serve(a, http.MethodGet, "/v1/api-keys?project_id=acme", "wrong-token", "")
	serve(a, http.MethodGet, "/"+created.Key, "", "")
	serve(a, http.MethodGet, "/v1/api-keys?project_id="+created.Key, testAdmin, "")

	lines := logs.requests(t)
	if len(lines) != 8 {
		t.Fatalf("%d request lines, want 8:\n%s", len(lines), logs)
	}
	want := []map[string]any{
		{"request_id": "create-1", "method": "POST", "route": "/v1/api-keys", "status": 201.0, "project": "acme", "actor": "admin"},
		{"method": "GET", "route": "/v1/api-keys/{keyID}", "status": 200.0, "project": "acme", "actor": created.ID, "key_id": created.ID},
		{"method": "POST", "route": "/v1/api-keys/verify", "status": 200.0, "project": "acme", "actor": "admin"},
		{"method": "GET", "route": "/v1/api-keys", "status": 200.0, "project": "acme", "actor": "admin"},
		{"method": "GET", "route": "/v1/api-keys/{keyID}", "status": 404.0, "actor": "admin", "key_id": nil},
		{"method": "GET", "route": "/v1/api-keys", "status": 401.0, "actor": nil, "project": nil},
		{"method": "GET", "route": "unmatched", "status": 404.0},
		{"method": "GET", "route": "/v1/api-keys", "status": 200.0, "actor": "admin", "project": nil},
	}
	for i, line := range lines {
		for k, v := range want[i] {
			if line[k] != v {
				t.Errorf("line %d: %s = %v, want %v\n%v", i, k, line[k], v, line)
			}
		}
		for _, k := range []string{"request_id", "duration", "client", "bytes"} {
			if line[k] == nil {
				t.Errorf("line %d lacks %s: %v", i, k, line)
			}
		}
		if line["client"] != "192.0.2.7" {
			t.Errorf("line %d: client %v", i, line["client"])
		}
	}
	out := logs.String()
	for _, secret := range []string{created.Key, created.Key[len(created.Key)-24:], testAdmin, "wrong-token", "note="} {
		if strings.Contains(out, secret) {
			t.Errorf("the log contains %q:\n%s", secret, out)
		}
	}
}

// BenchmarkRequestOverhead measures what observation adds around a route
// (request ID, context record, status capture, metrics, one log line):
// MuxOnly is the route alone, NoLog adds everything but the log line,
// JSONBuffered logs as the serve command does (JSON through logging's
// handler into logging.Writer on a pipe), JSONUnbuffered with one write(2)
// per line, and SlogJSONBuffered through slog's own JSONHandler, for
// comparison.
func BenchmarkRequestOverhead(b *testing.B) {
	run := func(b *testing.B, h http.Handler) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
			w := &discardWriter{h: http.Header{}}
			for pb.Next() {
				clear(w.h)
				h.ServeHTTP(w, req)
			}
		})
	}
	b.Run("MuxOnly", func(b *testing.B) { run(b, newTestAPI(b, nil).mux) })
	b.Run("NoLog", func(b *testing.B) { run(b, observed(newTestAPI(b, slog.New(slog.DiscardHandler)))) })
	b.Run("JSONBuffered", func(b *testing.B) {
		run(b, observed(newTestAPI(b, logging.New(newBenchWriter(b, true), "json", "info"))))
	})
	b.Run("JSONUnbuffered", func(b *testing.B) {
		run(b, observed(newTestAPI(b, logging.New(newBenchWriter(b, false), "json", "info"))))
	})
	b.Run("SlogJSONBuffered", func(b *testing.B) { // slog's own JSONHandler, for comparison
		run(b, observed(newTestAPI(b, slog.New(slog.NewJSONHandler(newBenchWriter(b, true), nil)))))
	})
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkVerify measures a whole verification through ServeHTTP, wired
// as the serve command wires it (key index in memory, last-use buffer,
// metrics), with a verifier key as bearer: without a log line, with the
// JSON line the serve command writes into its buffered writer, and with
// the same line through slog's own JSONHandler.
func BenchmarkVerify(b *testing.B) {
	for _, tc := range []struct {
		name string
		log  func(b *testing.B) *slog.Logger
		// rich keys carry an owner, 200 bytes of meta and an allowlist
		// (SPEC §9), and the body a client_ip.
		rich bool
	}{
		{"NoLog", func(*testing.B) *slog.Logger { return slog.New(slog.DiscardHandler) }, false},
		{"RichNoLog", func(*testing.B) *slog.Logger { return slog.New(slog.DiscardHandler) }, true},
		{"JSONBuffered", func(b *testing.B) *slog.Logger { return logging.New(newBenchWriter(b, true), "json", "info") }, false},
		// slog's own JSONHandler, for comparison with logging's.
		{"SlogJSONBuffered", func(b *testing.B) *slog.Logger { return slog.New(slog.NewJSONHandler(newBenchWriter(b, true), nil)) }, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			store, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "apikeyd.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { store.Close() })
			box, _ := seal.New(make([]byte, 32))
			svc, err := service.New(service.Options{
				Store: store, Index: keycache.New(keycache.Options{Store: store}), Usage: lastused.New(store),
				Box: box, AdminToken: testAdmin, KeyPrefix: "sk",
			})
			if err != nil {
				b.Fatal(err)
			}
			a := New(Options{Service: svc, Logger: tc.log(b), Metrics: metrics.New(), Ready: svc.Ready})
			h := observed(a)
			verifier, err := svc.Create(b.Context(), apikey.AdminPrincipal, service.CreateInput{ProjectID: "acme", Name: "v", Scopes: []string{apikey.ScopeVerify}})
			if err != nil {
				b.Fatal(err)
			}
			env := "prod"
			in := service.CreateInput{ProjectID: "acme", Name: "k", Scopes: []string{"orders:read"}, EnvironmentID: &env}
			clientIP := ""
			if tc.rich {
				owner, allow := "user:00000042@tenant", []string{"10.0.0.0/8", "2001:db8::/32"}
				in.OwnerID, in.IPAllowlist = &owner, &allow
				in.Meta = []byte(`{"customer":"cust-00000042","plan":"pro","pad":"` + strings.Repeat("x", 150) + `"}`)
				clientIP = `,"client_ip":"10.1.2.3"`
			}
			k, err := svc.Create(b.Context(), apikey.AdminPrincipal, in)
			if err != nil {
				b.Fatal(err)
			}
			body := []byte(`{"key":"` + k.Plaintext + `","scopes":["orders:read"],"environment_id":"prod"` + clientIP + `}`)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: http.Header{}}
				rd := bytes.NewReader(body)
				req := httptest.NewRequest(http.MethodPost, "/v1/api-keys/verify", nil)
				req.Header.Set("Authorization", "Bearer "+verifier.Plaintext)
				req.Body = io.NopCloser(rd)
				for pb.Next() {
					clear(w.h)
					rd.Reset(body)
					h.ServeHTTP(w, req)
				}
			})
		})
	}
}

// newBenchWriter returns the write end of a pipe that a goroutine drains,
// as a log collector reading apikeyd's stderr would: through a
// logging.Writer when buffered, so that the cost of a write(2) per line
// shows in the unbuffered case.
func newBenchWriter(b *testing.B, buffered bool) io.Writer {
	r, f, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	go io.Copy(io.Discard, r)
	b.Cleanup(func() { f.Close() })
	if !buffered {
		return f
	}
	w := logging.NewWriter(f, logging.FlushInterval, logging.MaxPending)
	b.Cleanup(func() { w.Close() })
	return w
}
