package metrics_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/metrics"
)

// scrape returns the text exposition of m.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func hasLines(t *testing.T, text string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(text, "\n"+l+"\n") {
			t.Errorf("metrics lack %q", l)
		}
	}
}

func TestVerifyResult(t *testing.T) {
	m := metrics.New()
	m.VerifyResult(apikey.CodeValid, 3*time.Microsecond)
	m.VerifyResult(apikey.CodeValid, 20*time.Microsecond)
	m.VerifyResult(apikey.CodeRevoked, 2*time.Millisecond)
	m.VerifyResult("NOT_A_CODE", time.Microsecond) // timed, but counted under no code
	m.CacheHit()
	m.CacheHit()
	m.CacheMiss(true)
	m.CacheMiss(false)
	text := scrape(t, m)
	hasLines(t, text,
		`apikeyd_verify_total{code="VALID"} 2`,
		`apikeyd_verify_total{code="REVOKED"} 1`,
		`apikeyd_verify_total{code="NOT_FOUND"} 0`,
		`apikeyd_verify_duration_seconds_bucket{le="1e-06"} 1`,
		`apikeyd_verify_duration_seconds_bucket{le="2.5e-06"} 1`,
		`apikeyd_verify_duration_seconds_bucket{le="5e-06"} 2`,
		`apikeyd_verify_duration_seconds_bucket{le="2.5e-05"} 3`,
		`apikeyd_verify_duration_seconds_bucket{le="0.001"} 3`,
		`apikeyd_verify_duration_seconds_bucket{le="0.01"} 4`,
		`apikeyd_verify_duration_seconds_bucket{le="+Inf"} 4`,
		`apikeyd_verify_duration_seconds_count 4`,
		`apikeyd_cache_hits_total 2`,
		`apikeyd_cache_misses_total{outcome="found"} 1`,
		`apikeyd_cache_misses_total{outcome="unknown"} 1`,
	)
	if !strings.Contains(text, "apikeyd_verify_duration_seconds_sum 0.002024") {
		t.Errorf("duration sum wrong:\n%s", grep(text, "apikeyd_verify_duration_seconds_sum"))
	}
	// A nil *Metrics records nothing and does not panic.
	var none *metrics.Metrics
	none.VerifyResult(apikey.CodeValid, time.Second)
	none.CacheHit()
}

// TestEveryVerifyCode records each verdict of apikey.VerifyCodes a
// different number of times: each is counted under its own label, so a
// code added to the domain is counted without a change here.
func TestEveryVerifyCode(t *testing.T) {
	m := metrics.New()
	for i, c := range apikey.VerifyCodes {
		for range i + 1 {
			m.VerifyResult(c, time.Microsecond)
		}
	}
	text := scrape(t, m)
	for i, c := range apikey.VerifyCodes {
		hasLines(t, text, fmt.Sprintf(`apikeyd_verify_total{code="%s"} %d`, c, i+1))
	}
	if n := strings.Count(text, "\napikeyd_verify_total{"); n != len(apikey.VerifyCodes) {
		t.Errorf("%d verify_total series, want one per code (%d)", n, len(apikey.VerifyCodes))
	}
}

// TestHTTPRequest checks that requests count under their route, method and
// status, that a series resolved ahead with HTTPSeries is the same one, and
// that labels a client controls are folded into fixed values.
func TestHTTPRequest(t *testing.T) {
	m := metrics.New()
	verifyOK := m.HTTPSeries("/v1/api-keys/verify", "POST", 200)
	text := scrape(t, m)
	hasLines(t, text, `apikeyd_http_requests_total{method="POST",route="/v1/api-keys/verify",status="200"} 0`)
	verifyOK.Observe(time.Millisecond)
	m.HTTPRequest("/v1/api-keys/verify", "POST", 200, 3*time.Millisecond)
	m.HTTPRequest("/v1/api-keys/verify", "POST", 401, time.Millisecond)
	m.HTTPRequest("", "BREW", 999, time.Millisecond)
	text = scrape(t, m)
	hasLines(t, text,
		`apikeyd_http_requests_total{method="POST",route="/v1/api-keys/verify",status="200"} 2`,
		`apikeyd_http_requests_total{method="POST",route="/v1/api-keys/verify",status="401"} 1`,
		`apikeyd_http_requests_total{method="OTHER",route="unmatched",status="0"} 1`,
		`apikeyd_http_request_duration_seconds_count{method="POST",route="/v1/api-keys/verify"} 3`,
	)
	if !strings.Contains(text, `apikeyd_http_request_duration_seconds_sum{method="POST",route="/v1/api-keys/verify"} 0.005`) {
		t.Errorf("duration sum wrong:\n%s", grep(text, "apikeyd_http_request_duration_seconds_sum"))
	}
	// A nil *Metrics hands out a nil series; both record nothing.
	var none *metrics.Metrics
	none.HTTPSeries("/x", "GET", 200).Observe(time.Second)
	none.HTTPRequest("/x", "GET", 200, time.Second)
}

func grep(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// BenchmarkVerifyResult is the metrics cost of one verification on the
// hot path: its count by code, its latency, and the index hit.
func BenchmarkVerifyResult(b *testing.B) {
	m := metrics.New()
	b.ReportAllocs()
	for b.Loop() {
		m.VerifyResult(apikey.CodeValid, 7*time.Microsecond)
		m.CacheHit()
	}
}

// BenchmarkVerifyResultParallel is BenchmarkVerifyResult on every core at
// once: the counters are shared, so this is where contention shows.
func BenchmarkVerifyResultParallel(b *testing.B) {
	m := metrics.New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.VerifyResult(apikey.CodeValid, 7*time.Microsecond)
			m.CacheHit()
		}
	})
}

// BenchmarkVerifyRequest is all the metrics cost one verification request,
// on both cores at once: the two index hits (bearer and key), the verdict
// with its latency, and the verify route's request series (a Prometheus
// counter and histogram, shared by both cores). Timed adds the two clock
// readings that time the request (time.Now at its start, time.Since at its
// end), which the request's log line needs anyway.
func BenchmarkVerifyRequest(b *testing.B) {
	for _, timed := range []bool{false, true} {
		name := "Untimed"
		if timed {
			name = "Timed"
		}
		b.Run(name, func(b *testing.B) {
			m := metrics.New()
			verifyOK := m.HTTPSeries("/v1/api-keys/verify", "POST", 200)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				d := 7 * time.Microsecond
				for pb.Next() {
					var start time.Time
					if timed {
						start = time.Now()
					}
					m.CacheHit()
					m.CacheHit()
					if timed {
						d = time.Since(start)
					}
					m.VerifyResult(apikey.CodeValid, d)
					verifyOK.Observe(d)
				}
			})
		})
	}
}
