// Package metrics defines every Prometheus metric apikeyd exports, on a
// registry of its own, and serves them at /metrics in the text format.
//
// Components receive a *Metrics and call its methods; a nil *Metrics
// records nothing, so tests and tools may pass none. The hot-path methods
// (VerifyResult) use series resolved once at construction, so recording a
// verification costs a few atomic adds.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/apikeyd/apikeyd/apikey"
)

// Metrics holds apikeyd's metrics and their registry.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	// httpSeries caches the resolved series of each (route, method,
	// status), so that counting a request is a map read and two atomic adds.
	httpSeries sync.Map // httpKey → *httpSeries

	verifyByCode   map[apikey.VerifyCode]prometheus.Counter
	verifyDuration prometheus.Histogram

	cacheHits   prometheus.Counter
	cacheMisses *prometheus.CounterVec

	lastUsedFlushes *prometheus.CounterVec
	lastUsedKeys    prometheus.Counter

	webhookDeliveries *prometheus.CounterVec
	rotations         *prometheus.CounterVec
	storeErrors       *prometheus.CounterVec
}

// New returns a fresh set of metrics, with the Go runtime and process
// collectors registered beside them.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apikeyd_http_requests_total", Help: "HTTP requests by route pattern, method and status code.",
	}, []string{"route", "method", "status"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "apikeyd_http_request_duration_seconds", Help: "HTTP request latency by route pattern and method.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route", "method"})
	verify := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apikeyd_verify_total", Help: "Key verifications (verify endpoint) by verdict code.",
	}, []string{"code"})
	m.verifyByCode = make(map[apikey.VerifyCode]prometheus.Counter, len(apikey.VerifyCodes))
	for _, c := range apikey.VerifyCodes {
		m.verifyByCode[c] = verify.WithLabelValues(string(c))
	}
	m.verifyDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "apikeyd_verify_duration_seconds", Help: "Time to reach a verdict, inside the server.",
		Buckets: []float64{1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2, .1},
	})
	m.cacheHits = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "apikeyd_cache_hits_total", Help: "Key lookups answered from memory.",
	})
	m.cacheMisses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apikeyd_cache_misses_total", Help: "Key lookups that went to the store, by outcome (found, unknown).",
	}, []string{"outcome"})
	m.lastUsedFlushes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apikeyd_last_used_flushes_total", Help: "Batches of last_used_at updates written, by outcome.",
	}, []string{"outcome"})
	m.lastUsedKeys = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "apikeyd_last_used_flushed_keys_total", Help: "Keys whose last_used_at was written.",
	})
	m.webhookDeliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apikeyd_webhook_deliveries_total", Help: "Rotation webhook delivery attempts by outcome (delivered, failed, abandoned).",
	}, []string{"outcome"})
	m.rotations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apikeyd_rotations_total", Help: "Key rotations by kind (manual, scheduled) and outcome.",
	}, []string{"kind", "outcome"})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apikeyd_store_errors_total", Help: "Store operations that failed, by operation.",
	}, []string{"op"})
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpRequests, m.httpDuration, verify, m.verifyDuration, m.cacheHits, m.cacheMisses,
		m.lastUsedFlushes, m.lastUsedKeys, m.webhookDeliveries, m.rotations, m.storeErrors,
	)
	return m
}

// Registry returns the registry, for components that export gauges of
// their own (such as the size of the key cache).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// MethodLabel returns method if it is a standard HTTP method and "OTHER"
// otherwise: the form in which metrics and logs show a request's method.
func MethodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return method
	}
	return "OTHER"
}

type httpKey struct {
	route, method string
	status        int
}

type httpSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// HTTPRequest records one served request. route must be a route pattern
// (never a raw path) or "unmatched"; an empty route counts as "unmatched",
// and methods other than the standard ones count as "OTHER", so that no
// client can create series at will.
func (m *Metrics) HTTPRequest(route, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	method = MethodLabel(method)
	if status < 100 || status > 599 {
		status = 0
	}
	k := httpKey{route, method, status}
	v, ok := m.httpSeries.Load(k)
	if !ok {
		v, _ = m.httpSeries.LoadOrStore(k, &httpSeries{
			requests: m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)),
			duration: m.httpDuration.WithLabelValues(route, method),
		})
	}
	s := v.(*httpSeries)
	s.requests.Inc()
	s.duration.Observe(d.Seconds())
}

// VerifyResult records one verification's verdict and how long it took.
func (m *Metrics) VerifyResult(code apikey.VerifyCode, d time.Duration) {
	if m == nil {
		return
	}
	if c, ok := m.verifyByCode[code]; ok {
		c.Inc()
	}
	m.verifyDuration.Observe(d.Seconds())
}

// CacheHit records a lookup answered from memory.
func (m *Metrics) CacheHit() {
	if m != nil {
		m.cacheHits.Inc()
	}
}

// CacheMiss records a lookup that went to the store; found says whether
// the store knew the key.
func (m *Metrics) CacheMiss(found bool) {
	if m == nil {
		return
	}
	if found {
		m.cacheMisses.WithLabelValues("found").Inc()
	} else {
		m.cacheMisses.WithLabelValues("unknown").Inc()
	}
}

// LastUsedFlush records one batch of last_used_at updates.
func (m *Metrics) LastUsedFlush(keys int, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.lastUsedFlushes.WithLabelValues("error").Inc()
		return
	}
	m.lastUsedFlushes.WithLabelValues("ok").Inc()
	m.lastUsedKeys.Add(float64(keys))
}

// WebhookDelivery records one delivery attempt's outcome: "delivered",
// "failed" (will retry) or "abandoned" (no attempts left).
func (m *Metrics) WebhookDelivery(outcome string) {
	if m != nil {
		m.webhookDeliveries.WithLabelValues(outcome).Inc()
	}
}

// Rotation records a rotation: kind "manual" or "scheduled", outcome such
// as "rotated" or "failed".
func (m *Metrics) Rotation(kind, outcome string) {
	if m != nil {
		m.rotations.WithLabelValues(kind, outcome).Inc()
	}
}

// StoreError records a failed store operation.
func (m *Metrics) StoreError(op string) {
	if m != nil {
		m.storeErrors.WithLabelValues(op).Inc()
	}
}
