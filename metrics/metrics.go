// Package metrics defines every Prometheus metric apikeyd exports, on a
// registry of its own, and serves them at /metrics in the text format.
//
// Components receive a *Metrics and call its methods; a nil *Metrics
// records nothing, so tests and tools may pass none. The hot-path methods
// (VerifyResult, CacheHit) write to striped counters of their own (see
// hotStripes) instead of Prometheus's shared ones, so that cores recording
// verifications at once do not fight over one cache line; the stripes are
// summed when /metrics is scraped.
package metrics

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
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
	httpSeries sync.Map // httpKey → *HTTPSeries

	// hot holds the verify counts, the verify latency histogram and the
	// cache hits.
	hot         *hotStripes
	cacheFound  prometheus.Counter
	cacheUnseen prometheus.Counter

	lastUsedFlushes *prometheus.CounterVec
	lastUsedKeys    prometheus.Counter

	webhookDeliveries *prometheus.CounterVec
	rotations         *prometheus.CounterVec
	storeErrors       *prometheus.CounterVec
	reservations      *prometheus.CounterVec
	reservationTime   *prometheus.HistogramVec
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
	m.hot = &hotStripes{
		verifyDesc:   prometheus.NewDesc("apikeyd_verify_total", "Key verifications (verify endpoint) by verdict code.", []string{"code"}, nil),
		durationDesc: prometheus.NewDesc("apikeyd_verify_duration_seconds", "Time to reach a verdict, inside the server.", nil, nil),
		hitsDesc:     prometheus.NewDesc("apikeyd_cache_hits_total", "Key lookups answered from memory.", nil, nil),
	}
	cacheMisses := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apikeyd_cache_misses_total", Help: "Key lookups that went to the store, by outcome (found, unknown).",
	}, []string{"outcome"})
	m.cacheFound = cacheMisses.WithLabelValues("found")
	m.cacheUnseen = cacheMisses.WithLabelValues("unknown")
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
	m.reservations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apikeyd_usage_reservations_total",
		Help: "Usage reserved from the store by this replica (docs/limits.md), in admissions (kind ratelimit) or credits (kind credits), by outcome: taken, returned (handed back unspent), lost (held by a dead replica's lease, reaped).",
	}, []string{"kind", "outcome"})
	m.reservationTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "apikeyd_usage_reservation_seconds",
		Help:    "Store transactions that reserve usage (docs/limits.md): rate-limit grants (kind ratelimit) and credit reservations (kind credits). The count is the number of transactions.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	}, []string{"kind"})
	for _, kind := range []string{"ratelimit", "credits"} {
		m.reservationTime.WithLabelValues(kind)
		for _, outcome := range []string{"taken", "returned", "lost"} {
			if kind == "ratelimit" && outcome == "lost" {
				continue // a dead replica's grants expire with their window
			}
			m.reservations.WithLabelValues(kind, outcome)
		}
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpRequests, m.httpDuration, m.hot, cacheMisses,
		m.lastUsedFlushes, m.lastUsedKeys, m.webhookDeliveries, m.rotations, m.storeErrors, m.reservations,
		m.reservationTime,
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

// HTTPSeries is the request counter and latency histogram of one route,
// method and status.
type HTTPSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// HTTPRequest records one served request. route must be a route pattern
// (never a raw path) or "unmatched"; an empty route counts as "unmatched",
// and methods other than the standard ones count as "OTHER", so that no
// client can create series at will.
func (m *Metrics) HTTPRequest(route, method string, status int, d time.Duration) {
	m.HTTPSeries(route, method, status).Observe(d)
}

// HTTPSeries returns the series HTTPRequest(route, method, status, …)
// records into, for a caller that records many requests of one kind and
// would rather not look the series up each time. It creates the series
// (at zero) if need be. It returns nil, which records nothing, on nil
// Metrics.
func (m *Metrics) HTTPSeries(route, method string, status int) *HTTPSeries {
	if m == nil {
		return nil
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
		v, _ = m.httpSeries.LoadOrStore(k, &HTTPSeries{
			requests: m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)),
			duration: m.httpDuration.WithLabelValues(route, method),
		})
	}
	return v.(*HTTPSeries)
}

// Observe records one request of the series that took d.
func (s *HTTPSeries) Observe(d time.Duration) {
	if s != nil {
		s.requests.Inc()
		s.duration.Observe(d.Seconds())
	}
}

// VerifyResult records one verification's verdict and how long it took.
// It is on the verify hot path: a few uncontended atomic adds.
func (m *Metrics) VerifyResult(code apikey.VerifyCode, d time.Duration) {
	if m == nil {
		return
	}
	st := m.hot.stripe()
	st.counts[codeIndex(code)][bucketIndex(d)].Add(1)
	st.sumNanos.Add(uint64(max(d, 0)))
}

// CacheHit records a lookup answered from memory.
func (m *Metrics) CacheHit() {
	if m != nil {
		m.hot.stripe().hits.Add(1)
	}
}

// CacheMiss records a lookup that went to the store; found says whether
// the store knew the key.
func (m *Metrics) CacheMiss(found bool) {
	if m == nil {
		return
	}
	if found {
		m.cacheFound.Inc()
	} else {
		m.cacheUnseen.Inc()
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

// Reservation records n admissions or credits reserved from the store
// (kind "ratelimit" or "credits") and what became of them: "taken",
// "returned" or "lost".
func (m *Metrics) Reservation(kind, outcome string, n int64) {
	if m != nil && n > 0 {
		m.reservations.WithLabelValues(kind, outcome).Add(float64(n))
	}
}

// ReservationTime records a reservation transaction of kind (ratelimit,
// credits) that took d.
func (m *Metrics) ReservationTime(kind string, d time.Duration) {
	if m != nil {
		m.reservationTime.WithLabelValues(kind).Observe(d.Seconds())
	}
}

// StoreError records a failed store operation.
func (m *Metrics) StoreError(op string) {
	if m != nil {
		m.storeErrors.WithLabelValues(op).Inc()
	}
}

// verifyBuckets are the upper bounds of the verify latency histogram.
var verifyBuckets = [...]time.Duration{
	time.Microsecond, 2500 * time.Nanosecond, 5 * time.Microsecond, 10 * time.Microsecond,
	25 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond,
	time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond,
}

// bucketIndex returns the first bucket d falls in; len(verifyBuckets) is
// +Inf.
func bucketIndex(d time.Duration) int {
	for i, b := range verifyBuckets {
		if d <= b {
			return i
		}
	}
	return len(verifyBuckets)
}

// codeIndex returns the position of code in apikey.VerifyCodes, or
// noCode. Most verdicts are VALID, the first.
func codeIndex(code apikey.VerifyCode) int {
	for i, c := range apikey.VerifyCodes {
		if c == code {
			return i
		}
	}
	return noCode
}

// noCode is the row of durations recorded with a code that is not a
// verdict: timed, but counted under no code.
const noCode = len(apikey.VerifyCodes)

const numStripes = 8

// hotStripes are the hot-path metrics, spread over stripes that each
// record picks at random, so that two cores rarely write the same cache
// line. Verifications are counted once per (code, latency bucket): one
// atomic add serves both the count by code and the histogram, which are
// sums of rows and columns when scraped. It is a prometheus.Collector.
type hotStripes struct {
	stripes                            [numStripes]stripe
	verifyDesc, durationDesc, hitsDesc *prometheus.Desc
}

type stripe struct {
	counts   [noCode + 1][len(verifyBuckets) + 1]atomic.Uint64 // [codeIndex][bucketIndex]
	sumNanos atomic.Uint64
	hits     atomic.Uint64
	_        [48]byte // to a multiple of the 64-byte cache line
}

func (h *hotStripes) stripe() *stripe { return &h.stripes[rand.Uint32()%numStripes] }

// Describe implements prometheus.Collector.
func (h *hotStripes) Describe(ch chan<- *prometheus.Desc) {
	ch <- h.verifyDesc
	ch <- h.durationDesc
	ch <- h.hitsDesc
}

// Collect implements prometheus.Collector.
func (h *hotStripes) Collect(ch chan<- prometheus.Metric) {
	var codes [noCode + 1]uint64
	var buckets [len(verifyBuckets) + 1]uint64
	var sum, hits uint64
	for i := range h.stripes {
		st := &h.stripes[i]
		for c := range st.counts {
			for b := range st.counts[c] {
				n := st.counts[c][b].Load()
				codes[c] += n
				buckets[b] += n
			}
		}
		sum += st.sumNanos.Load()
		hits += st.hits.Load()
	}
	for i, c := range apikey.VerifyCodes {
		ch <- prometheus.MustNewConstMetric(h.verifyDesc, prometheus.CounterValue, float64(codes[i]), string(c))
	}
	cumulative := make(map[float64]uint64, len(verifyBuckets))
	var count uint64
	for i, b := range verifyBuckets {
		count += buckets[i]
		cumulative[b.Seconds()] = count
	}
	count += buckets[len(verifyBuckets)]
	ch <- prometheus.MustNewConstHistogram(h.durationDesc, count, float64(sum)/1e9, cumulative)
	ch <- prometheus.MustNewConstMetric(h.hitsDesc, prometheus.CounterValue, float64(hits))
}

// CacheKeys exports the number of keys the in-memory index holds, read from
// count at every scrape.
func (m *Metrics) CacheKeys(count func() int) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "apikeyd_cache_keys", Help: "Keys held by the in-memory verification index.",
	}, func() float64 { return float64(count()) }))
}

// CacheStaleness exports how long ago this replica last confirmed that its
// index is in step with the database; age reports a negative duration until
// the first confirmation, exported as -1.
func (m *Metrics) CacheStaleness(age func() time.Duration) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "apikeyd_cache_staleness_seconds",
		Help: "Seconds since this replica last confirmed that its key index is in step with the database (-1: never).",
	}, func() float64 {
		if a := age(); a >= 0 {
			return a.Seconds()
		}
		return -1
	}))
}
