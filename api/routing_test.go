package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/metrics"
	"github.com/apikeyd/apikeyd/seal"
	"github.com/apikeyd/apikeyd/service"
	"github.com/apikeyd/apikeyd/sqlite"
)

// rawRequest sends request as written (net/http's client would clean
// nothing of the path, but this says so) on a fresh connection to addr and
// returns the answer.
func rawRequest(t *testing.T, addr, request string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(request)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%q: the body is not JSON: %v", request, err)
	}
	return resp, body
}

// TestRouting checks SPEC §12's routing rules: a known path with another
// method is 405 with Allow, a path not in canonical form is 404 and never
// redirected, a query that does not decode or holds control characters
// is 400, and every one of these answers is a problem with the error
// member.
func TestRouting(t *testing.T) {
	f := newFixture(t, 100)
	addr := strings.TrimPrefix(f.url, "http://")
	for _, tc := range []struct {
		name, method, target string
		status               int
		allow                string
	}{
		{"ErrVerifyByGet", "GET", "/v1/api-keys/verify", http.StatusMethodNotAllowed, "POST"},
		{"ErrPutKeys", "PUT", "/v1/api-keys", http.StatusMethodNotAllowed, "GET, POST"},
		{"ErrBrewHealth", "BREW", "/healthz", http.StatusMethodNotAllowed, "GET"},
		{"ErrPostKey", "POST", "/v1/api-keys/key_x", http.StatusMethodNotAllowed, "GET, PATCH, DELETE"},
		{"ErrDoubleSlash", "GET", "//", http.StatusNotFound, ""},
		{"ErrDot", "GET", "/./", http.StatusNotFound, ""},
		{"ErrDotDot", "GET", "/../", http.StatusNotFound, ""},
		{"ErrInnerDoubleSlash", "GET", "/v1//api-keys?project_id=p", http.StatusNotFound, ""},
		{"ErrDotDotToKeys", "GET", "/v1/x/../api-keys?project_id=p", http.StatusNotFound, ""},
		{"ErrTrailingDot", "GET", "/healthz/.", http.StatusNotFound, ""},
		{"ErrUnknown", "GET", "/v2/api-keys", http.StatusNotFound, ""},
		{"ErrQueryNUL", "GET", "/v1/api-keys?project_id=p%00g", http.StatusBadRequest, ""},
		{"ErrQueryBadEscape", "GET", "/v1/api-keys?project_id=p%zzg", http.StatusBadRequest, ""},
		{"ErrQuerySemicolon", "GET", "/v1/api-keys?project_id=p;limit=5", http.StatusBadRequest, ""},
		{"ErrQueryControl", "GET", "/v1/api-keys?project_id=p%0Ag", http.StatusBadRequest, ""},
		{"ErrQueryBadUTF8", "GET", "/v1/api-keys?project_id=p%FFg", http.StatusBadRequest, ""},
		{"ErrQueryNULName", "GET", "/v1/api-keys?project_id=p&x%00=1", http.StatusBadRequest, ""},
		{"ErrQueryNULUnauthenticated", "POST", "/v1/api-keys/verify?x=%00", http.StatusBadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawRequest(t, addr, fmt.Sprintf("%s %s HTTP/1.1\r\nHost: apikeyd\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", tc.method, tc.target, f.admin))
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%s %s: %d %s %s, want %d problem+json", tc.method, tc.target, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.status)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Errorf("redirected to %q", loc)
			}
			var p Problem
			if err := json.Unmarshal(body, &p); err != nil || p.Status != tc.status || p.Err.Code == "" || p.Err.Message != p.Detail {
				t.Errorf("problem %s (%v)", body, err)
			}
		})
	}
	// What the rules leave alone still works: a clean path with a query.
	if status, body := f.do(t, http.MethodGet, "/v1/api-keys?project_id=p%2Eq&limit=5", f.admin, nil); status != http.StatusOK {
		t.Fatalf("a plain list: %d %s", status, body)
	}
}

// TestProblemErrorMember: every problem carries error.code, derived from
// its status, and error.message, its detail.
func TestProblemErrorMember(t *testing.T) {
	f := newFixture(t, 100)
	reader := f.create(t, service.CreateInput{ProjectID: "p1", Name: "reader", Scopes: []string{apikey.ScopeRead}})
	for _, tc := range []struct {
		name, method, path, token, body, code string
		status                                int
	}{
		{"Validation", "POST", "/v1/api-keys", adminToken, `{"project_id":"p1","name":""}`, "validation_failed", 400},
		{"MalformedJSON", "POST", "/v1/api-keys", adminToken, `{"project_id":`, "bad_request", 400},
		{"Unauthenticated", "GET", "/v1/api-keys?project_id=p1", "wrong", "", "authentication_required", 401},
		{"Forbidden", "POST", "/v1/api-keys", reader.Plaintext, `{"project_id":"p1","name":"n"}`, "forbidden", 403},
		{"NotFound", "GET", "/v1/api-keys/key_00000000000000000000000000", adminToken, "", "not_found", 404},
		{"NoRoute", "GET", "/nothing", "", "", "not_found", 404},
		{"TooLarge", "POST", "/v1/api-keys/verify", adminToken, `{"key":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, "payload_too_large", 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			status, b := f.do(t, tc.method, tc.path, tc.token, body)
			var p Problem
			if err := json.Unmarshal(b, &p); err != nil || status != tc.status || p.Err.Code != tc.code || p.Err.Message != p.Detail {
				t.Fatalf("%d %s, want %d with error.code %s (%v)", status, b, tc.status, tc.code, err)
			}
		})
	}
}

// blockingStore is a real store whose key lookups wait for the request to
// end, then fail as a database call cut short by it does.
type blockingStore struct {
	*sqlite.Store
	entered chan struct{}
}

func (s *blockingStore) KeyByHash(ctx context.Context, h apikey.Hash) (*apikey.Key, error) {
	s.entered <- struct{}{}
	<-ctx.Done()
	return nil, fmt.Errorf("begin: %w", ctx.Err())
}

// TestClientGone: a request whose client goes away while the server works
// on it is counted and logged as 499 at INFO, never as a 5xx or an ERROR
// (SPEC §12).
func TestClientGone(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "apikeyd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	bs := &blockingStore{Store: st, entered: make(chan struct{}, 1)}
	box, _ := seal.New(make([]byte, 32))
	svc, err := service.New(service.Options{Store: bs, Box: box, AdminToken: adminToken, KeyPrefix: "sk"})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logLines{}
	m := metrics.New()
	a := New(Options{Service: svc, Logger: slog.New(slog.NewJSONHandler(logs, nil)), Metrics: m})
	srv := httptest.NewServer(observed(a))
	t.Cleanup(srv.Close)

	unknown, _ := apikey.GenerateKey("sk")
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/api-keys?project_id=p1", nil)
	req.Header.Set("Authorization", "Bearer "+unknown.Plaintext)
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-bs.entered // the server is inside the store
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the request was answered although its client went away")
	}

	var lines []map[string]any
	for deadline := time.Now().Add(10 * time.Second); len(lines) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		lines = logs.requests(t)
	}
	if len(lines) != 1 || lines[0]["status"] != 499.0 || lines[0]["level"] != "INFO" {
		t.Fatalf("request lines %v, want one at INFO with status 499:\n%s", lines, logs)
	}
	if strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Fatalf("a client that went away was logged as an error:\n%s", logs)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	scraped := rec.Body.String()
	if !strings.Contains(scraped, `apikeyd_http_requests_total{method="GET",route="/v1/api-keys",status="499"} 1`) {
		t.Errorf("/metrics does not count the request as 499:\n%s", grepLines(scraped, "apikeyd_http_requests_total"))
	}
	if strings.Contains(scraped, `status="5`) {
		t.Errorf("/metrics counts a 5xx:\n%s", grepLines(scraped, "apikeyd_http_requests_total"))
	}
}

func grepLines(s, substr string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}
