package observe

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/metrics"
)

// TestRequestIDsUnique draws request IDs from several goroutines at once:
// every one is 32 hex digits, sane by the API's own rule (so that a proxy
// passing it back is believed), and none repeats.
func TestRequestIDsUnique(t *testing.T) {
	const workers, each = 8, 5000
	ids := make(chan string, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				ids <- NewRequestID()
			}
		})
	}
	wg.Wait()
	close(ids)
	seen := make(map[string]bool, workers*each)
	for id := range ids {
		if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" || !SaneRequestID(id) {
			t.Fatalf("request ID %q is not 32 hex digits", id)
		}
		if seen[id] {
			t.Fatalf("request ID %q issued twice", id)
		}
		seen[id] = true
	}
}

// TestMiddlewareAnyHandler: a handler that knows nothing of apikeyd's API
// (as the dashboard) wearing the middleware gets a request ID, is counted
// under its mux pattern and logged once, with what it noted; a path no
// pattern matched is "unmatched"; a client that went away before anything
// was written is 499 at INFO.
func TestMiddlewareAnyHandler(t *testing.T) {
	var logs bytes.Buffer
	m := metrics.New()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui/keys/{keyID}", func(w http.ResponseWriter, r *http.Request) {
		rec := From(r.Context())
		rec.NoteActor(apikey.Principal{KeyID: "root_1", ProjectID: "acme"})
		io.WriteString(w, "<p>key</p>")
	})
	mux.HandleFunc("GET /gone", func(w http.ResponseWriter, r *http.Request) {})
	h := Middleware(Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Metrics: m})(mux)

	key := "key_0000000000000000000000000a"
	for _, tc := range []struct {
		target string
		cancel bool
		want   map[string]any
	}{
		{"/ui/keys/" + key, false, map[string]any{"route": "/ui/keys/{keyID}", "status": 200.0, "actor": "root_1", "project": "acme", "key_id": key, "level": "INFO"}},
		{"/nowhere", false, map[string]any{"route": "unmatched", "status": 404.0, "level": "INFO"}},
		{"/gone", true, map[string]any{"route": "/gone", "status": 499.0, "level": "INFO"}},
	} {
		logs.Reset()
		req := httptest.NewRequest(http.MethodGet, tc.target, nil)
		if tc.cancel {
			ctx, cancel := context.WithCancel(req.Context())
			cancel()
			req = req.WithContext(ctx)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if id := rec.Header().Get("X-Request-Id"); len(id) != 32 {
			t.Errorf("%s: X-Request-Id %q", tc.target, id)
		}
		var line map[string]any
		if err := json.Unmarshal(logs.Bytes(), &line); err != nil || line["msg"] != "request" {
			t.Fatalf("%s: log %q (%v)", tc.target, logs.String(), err)
		}
		for k, v := range tc.want {
			if line[k] != v {
				t.Errorf("%s: %s = %v, want %v", tc.target, k, line[k], v)
			}
		}
	}
	scrape := httptest.NewRecorder()
	m.Handler().ServeHTTP(scrape, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, series := range []string{
		`apikeyd_http_requests_total{method="GET",route="/ui/keys/{keyID}",status="200"} 1`,
		`apikeyd_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`apikeyd_http_requests_total{method="GET",route="/gone",status="499"} 1`,
	} {
		if !strings.Contains(scrape.Body.String(), series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
}
