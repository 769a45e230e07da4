package server

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startSQLite starts a server on a fresh SQLite data directory with the
// admin token token and the settings env, and stops it at the end of the
// test.
func startSQLite(t *testing.T, token string, env map[string]string) *Server {
	t.Helper()
	all := map[string]string{
		"APIKEYD_ADDR":        "127.0.0.1:0",
		"APIKEYD_DATA_DIR":    filepath.Join(t.TempDir(), "data"),
		"APIKEYD_ADMIN_TOKEN": token,
	}
	for k, v := range env {
		all[k] = v
	}
	s, err := New(t.Context(), load(t, all), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(t.Context()) })
	return s
}

// TestUnauthenticatedBodyNotAwaited: without a valid bearer, the answer
// comes before the body is read (SPEC §12, issue 15 item 1). Each request
// announces 1000 bytes of body and sends one; the answer must come while
// the rest is still owed, well before the server's read timeout would cut
// the wait short, and the connection is then closed.
func TestUnauthenticatedBodyNotAwaited(t *testing.T) {
	const admin = "an-admin-token-for-tests"
	s := startSQLite(t, admin, map[string]string{"APIKEYD_AUTH_FAILURE_BURST": "3", "APIKEYD_AUTH_FAILURE_REFILL": "1h"})
	for _, tc := range []struct {
		name, path, auth string
		status           int
	}{
		{"NoBearer", "/v1/api-keys", "", http.StatusUnauthorized},
		{"WrongBearer", "/v1/api-keys", "Authorization: Bearer wrong\r\n", http.StatusUnauthorized},
		{"VerifyWrongBearer", "/v1/api-keys/verify", "Authorization: Bearer sk_00000000000000000000000000000000000000000004LPos6\r\n", http.StatusUnauthorized},
		// The burst of two failures is spent: the address is blocked.
		{"Blocked", "/v1/api-keys/verify", "Authorization: Bearer " + admin + "\r\n", http.StatusTooManyRequests},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			req := "POST " + tc.path + " HTTP/1.1\r\nHost: apikeyd\r\n" + tc.auth +
				"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
			if _, err := conn.Write([]byte(req)); err != nil {
				t.Fatal(err)
			}
			// A liveness bound, not a speed assertion: before the fix the
			// server answered only once readTimeout had passed.
			conn.SetReadDeadline(time.Now().Add(readTimeout / 2))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer while the body is still owed: %v", err)
			}
			var p struct {
				Status int
				Error  struct{ Code string }
			}
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != tc.status || p.Status != tc.status {
				t.Fatalf("%d %+v (%v), want %d", resp.StatusCode, p, err, tc.status)
			}
			if resp.Header.Get("Content-Type") != "application/problem+json" || !resp.Close {
				t.Errorf("Content-Type %q, Connection %q: want a problem and the connection closed", resp.Header.Get("Content-Type"), resp.Header.Get("Connection"))
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Errorf("after the answer: %v, want the connection closed", err)
			}
		})
	}
}

// TestRootHandler checks what the root handler composes: the API, health,
// metrics and the OpenAPI document, each answering on its own paths, and
// the routing rules applying to all of them (a known path with another
// method is 405 with Allow, a path not in canonical form is 404, both as
// problems), with every request counted.
func TestRootHandler(t *testing.T) {
	s := startSQLite(t, "an-admin-token-for-tests", nil)
	get := func(method, path string) (*http.Response, string) {
		t.Helper()
		conn, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write([]byte(method + " " + path + " HTTP/1.1\r\nHost: apikeyd\r\nConnection: close\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, tc := range []struct {
		method, path string
		status       int
		contentType  string
		allow        string
	}{
		{"GET", "/healthz", 200, "application/json", ""},
		{"GET", "/openapi.json", 200, "application/json", ""},
		{"GET", "/metrics", 200, "text/plain", ""},
		{"POST", "/metrics", 405, "application/problem+json", "GET"},
		{"GET", "/v1/api-keys/verify", 405, "application/problem+json", "POST"},
		{"GET", "/v1/api-keys/expiring-soon/x", 404, "application/problem+json", ""},
		{"GET", "//metrics", 404, "application/problem+json", ""},
		{"GET", "/./healthz", 404, "application/problem+json", ""},
		{"GET", "/ui/../metrics", 404, "application/problem+json", ""},
		{"GET", "/v1/api-keys?project_id=p%00g", 400, "application/problem+json", ""},
	} {
		resp, body := get(tc.method, tc.path)
		if resp.StatusCode != tc.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentType) || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d %q Allow %q %s, want %d %s Allow %q", tc.method, tc.path, resp.StatusCode,
				resp.Header.Get("Content-Type"), resp.Header.Get("Allow"), body, tc.status, tc.contentType, tc.allow)
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s %s: no X-Request-Id", tc.method, tc.path)
		}
	}
	_, doc := get("GET", "/openapi.json")
	if !strings.Contains(doc, `"/metrics"`) {
		t.Error("the OpenAPI document does not describe /metrics")
	}
	_, metrics := get("GET", "/metrics")
	for _, series := range []string{
		`apikeyd_http_requests_total{method="GET",route="/healthz",status="200"} 1`,
		`apikeyd_http_requests_total{method="POST",route="unmatched",status="405"} 1`,
		`apikeyd_http_requests_total{method="GET",route="unmatched",status="405"} 1`,
		`apikeyd_http_requests_total{method="GET",route="unmatched",status="404"} 4`,
	} {
		if !strings.Contains(metrics, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
}
