package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// metric returns the value of the sample of /metrics whose name and labels
// are exactly series (e.g. `apikeyd_verify_total{code="VALID"}`), or -1.
func metric(t *testing.T, body, series string) float64 {
	t.Helper()
	for line := range strings.Lines(body) {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	return -1
}

func (s *server) scrape(t *testing.T) string {
	t.Helper()
	r := expect(t, s.do(t, http.MethodGet, "/metrics", "", nil), http.StatusOK)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("/metrics Content-Type %q", ct)
	}
	return string(r.Body)
}

// TestMetrics scrapes /metrics after traffic and checks that the request,
// verification and last-use counters moved, under route patterns only.
func TestMetrics(t *testing.T) {
	s := startServer(t, withArgs("--last-used-flush", "100ms"))
	before := s.scrape(t)
	const verifyOK = `apikeyd_http_requests_total{method="POST",route="/v1/api-keys/verify",status="200"}`
	if metric(t, before, verifyOK) > 0 {
		t.Fatal("verify requests counted before any")
	}
	for _, m := range []string{"go_goroutines", "process_resident_memory_bytes", "apikeyd_verify_total{code=\"VALID\"}"} {
		if metric(t, before, m) < 0 {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	verifier := s.create(t, s.Admin, map[string]any{"project_id": "m", "name": "v", "scopes": []string{"api-keys:verify"}})
	k := s.create(t, s.Admin, map[string]any{"project_id": "m", "name": "k"})
	for range 3 {
		s.verify(t, verifier.Secret, map[string]any{"key": k.Secret})
	}
	s.verify(t, verifier.Secret, map[string]any{"key": "garbage"})
	unknown, err := apikey.GenerateKey("sk")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the store is asked once, the negative cache answers the second
		if v := s.verify(t, verifier.Secret, map[string]any{"key": unknown.Plaintext}); v["code"] != "NOT_FOUND" {
			t.Fatalf("an unknown key: %v", v)
		}
	}
	rotated := s.create(t, s.Admin, map[string]any{"project_id": "m", "name": "r"})
	expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+rotated.ID+"/rotate", s.Admin, map[string]any{"grace_period_minutes": 0}), http.StatusCreated)
	expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+k.ID, s.Admin, nil), http.StatusOK)
	expect(t, s.do(t, http.MethodGet, "/v1/api-keys/key_00000000000000000000000000", s.Admin, nil), http.StatusNotFound)
	expect(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=m", "", nil), http.StatusUnauthorized)
	expect(t, s.do(t, http.MethodGet, "/no/such/"+k.Secret, "", nil), http.StatusNotFound)
	expect(t, s.do(t, "BREW", "/healthz", "", nil), http.StatusMethodNotAllowed)
	time.Sleep(300 * time.Millisecond) // a last-use flush

	after := s.scrape(t)
	for series, want := range map[string]float64{
		verifyOK: 6,
		`apikeyd_http_requests_total{method="POST",route="/v1/api-keys",status="201"}`:           3,
		`apikeyd_http_requests_total{method="GET",route="/v1/api-keys/{keyID}",status="200"}`:    1,
		`apikeyd_http_requests_total{method="GET",route="/v1/api-keys/{keyID}",status="404"}`:    1,
		`apikeyd_http_requests_total{method="GET",route="/v1/api-keys",status="401"}`:            1,
		`apikeyd_http_requests_total{method="GET",route="unmatched",status="404"}`:               1,
		`apikeyd_http_requests_total{method="OTHER",route="unmatched",status="405"}`:             1,
		`apikeyd_http_requests_total{method="GET",route="/metrics",status="200"}`:                1,
		`apikeyd_http_request_duration_seconds_count{method="POST",route="/v1/api-keys/verify"}`: 6,
		`apikeyd_verify_total{code="VALID"}`:                                                     3,
		`apikeyd_verify_total{code="MALFORMED"}`:                                                 1,
		`apikeyd_verify_total{code="NOT_FOUND"}`:                                                 2,
		`apikeyd_verify_duration_seconds_count`:                                                  6,
		// Every key is in the index from its creation: the six bearer
		// checks and the three verifications of k are hits, and so is the
		// second lookup of the unknown key (the negative cache); only its
		// first reached the store.
		`apikeyd_cache_hits_total`:                                 10,
		`apikeyd_cache_misses_total{outcome="unknown"}`:            1,
		`apikeyd_cache_misses_total{outcome="found"}`:              0,
		`apikeyd_cache_keys`:                                       4, // verifier, k, rotated and its replacement
		`apikeyd_rotations_total{kind="manual",outcome="rotated"}`: 1,
		`apikeyd_last_used_flushes_total{outcome="ok"}`:            -2, // at least one
	} {
		got := metric(t, after, series)
		if want == -2 {
			if got < 1 {
				t.Errorf("%s = %v, want ≥ 1", series, got)
			}
			continue
		}
		if got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	// No series carries a raw path or a key.
	if strings.Contains(after, "/no/such") || strings.Contains(after, k.Secret) || strings.Contains(after, k.ID) {
		t.Fatal("/metrics carries a raw path, a key or a key ID")
	}
}

// TestRequestLog checks the request log lines of the real binary: one per
// request, with the fields an operator needs, the request ID echoed, and
// nothing secret (the scan in TestMain checks every line of every test for
// every key; this checks the fields themselves).
func TestRequestLog(t *testing.T) {
	s := startServer(t)
	reader := s.create(t, s.Admin, map[string]any{"project_id": "logs", "name": "reader", "scopes": []string{"api-keys:read", "api-keys:verify"}})

	send := func(method, path, token, requestID string, body any) *response {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, s.URL+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if requestID != "" {
			req.Header.Set("X-Request-Id", requestID)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return &response{Status: resp.StatusCode, Header: resp.Header, Body: readAll(t, resp)}
	}

	r := send(http.MethodGet, "/v1/api-keys/"+reader.ID+"?note="+reader.Secret, reader.Secret, "trace-0001", nil)
	expect(t, r, http.StatusOK)
	if r.Header.Get("X-Request-Id") != "trace-0001" {
		t.Fatalf("X-Request-Id %q, want the incoming one", r.Header.Get("X-Request-Id"))
	}
	r = send(http.MethodPost, "/v1/api-keys/verify", reader.Secret, reader.Secret, map[string]any{"key": reader.Secret})
	generated := r.Header.Get("X-Request-Id")
	if generated == reader.Secret || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(generated) {
		t.Fatalf("a key as X-Request-Id was echoed or kept: %q", generated)
	}
	send(http.MethodGet, "/v1/api-keys?project_id=logs", "sk_00000000000000000000000000000000000000000004LPos6", "", nil)

	// Logs are written in batches; wait for the last line.
	var lines []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		lines = lines[:0]
		for line := range strings.Lines(s.out.String()) {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request" && m["route"] != "/readyz" {
				lines = append(lines, m)
			}
		}
		if len(lines) >= 4 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(lines) != 4 {
		t.Fatalf("%d request lines, want 4 (create, get, verify, list):\n%s", len(lines), s.out)
	}
	want := []map[string]any{
		{"level": "INFO", "method": "POST", "route": "/v1/api-keys", "status": 201.0, "project": "logs", "actor": "admin"},
		{"level": "INFO", "method": "GET", "route": "/v1/api-keys/{keyID}", "status": 200.0, "project": "logs", "actor": reader.ID,
			"key_id": reader.ID, "request_id": "trace-0001"},
		{"level": "INFO", "method": "POST", "route": "/v1/api-keys/verify", "status": 200.0, "project": "logs", "actor": reader.ID,
			"request_id": generated},
		{"level": "INFO", "method": "GET", "route": "/v1/api-keys", "status": 401.0, "project": nil, "actor": nil},
	}
	for i, line := range lines {
		for k, v := range want[i] {
			if line[k] != v {
				t.Errorf("line %d: %s = %v, want %v: %v", i, k, line[k], v, line)
			}
		}
		for _, k := range []string{"time", "request_id", "duration", "bytes"} {
			if line[k] == nil {
				t.Errorf("line %d lacks %s: %v", i, k, line)
			}
		}
		if line["client"] != "127.0.0.1" {
			t.Errorf("line %d: client %v", i, line["client"])
		}
		if d, ok := line["duration"].(float64); !ok || d <= 0 {
			t.Errorf("line %d: duration %v", i, line["duration"])
		}
	}
	for _, leak := range []string{reader.Secret, "note=", "LPos6"} {
		if strings.Contains(s.out.String(), leak) {
			t.Fatalf("the log contains %q", leak)
		}
	}
}
