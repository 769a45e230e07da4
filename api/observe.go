package api

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/logging"
	"github.com/apikeyd/apikeyd/metrics"
)

// This file is what every request goes through around the routes: the
// request ID, the per-request record, the metrics and the request log line.
//
// The order, in ServeHTTP:
//  1. the request ID is taken from X-Request-Id or generated, and echoed;
//  2. a requestInfo is put in the request's context; authentication and the
//     handlers fill in the project and the acting key;
//  3. the mux serves the request and sets r.Pattern;
//  4. after it returns, the request is counted under its route pattern and
//     one line is logged.
//
// A route served outside huma (such as a hand-written fast path) keeps all
// of this for free as long as it is registered on a.mux (so that r.Pattern
// is set, and Routes and the OpenAPI drift test know it); it should call
// noteActor after authenticating and noteProject when it knows the
// project. A handler that ServeHTTP reaches without the mux must set
// requestInfo.route itself, or its requests count as "unmatched".

// requestInfo is what the log line says about a request beyond what
// net/http knows. One is allocated per request, together with its
// statusWriter, and filled in as the request is authenticated and handled.
// Only the goroutine serving the request touches it.
type requestInfo struct {
	id      string
	start   time.Time // when ServeHTTP began: the time authentication and verification are decided at
	route   string    // overrides r.Pattern, for requests served without the mux
	project string    // the project the request acted in, when known
	actor   string    // "admin", the acting key's ID, or "" if unauthenticated
	// verdict is the code of the verification the request made, if any,
	// counted with the request's duration by observe.
	verdict apikey.VerifyCode
}

type infoKey struct{}

// info returns the request's record. Outside ServeHTTP (in tests calling
// the mux directly) it returns a fresh one nobody reads.
func info(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

// noteProject records the project a request acts in, for the log line. The
// first project noted wins: for an API key that is its own project, noted
// by authenticate before any handler runs. A project ID that is not one, or
// that has the shape of a key (an admin may have pasted one into
// project_id), is not noted: the log never repeats what a client typed
// unless it is known to be harmless.
func noteProject(ctx context.Context, project string) { info(ctx).noteProject(project) }

func (ri *requestInfo) noteProject(project string) {
	if ri.project == "" && apikey.ValidIdentifier(project) && !apikey.ParseKey(project) {
		ri.project = project
	}
}

// noteActor records who the request acts for.
func (ri *requestInfo) noteActor(p apikey.Principal) {
	if p.Admin {
		ri.actor = "admin"
		return
	}
	ri.actor = p.KeyID
	ri.project = p.ProjectID
}

// statusWriter remembers the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

// WriteHeader remembers the first final status.
func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write counts the bytes of the body.
func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// exchange is one request's bookkeeping, allocated once.
type exchange struct {
	w    statusWriter
	info requestInfo
	id   [1]string // the X-Request-Id header's value
}

// ServeHTTP implements http.Handler. Request bodies are always JSON: like
// GitHub's API, apikeyd reads them as JSON whatever Content-Type says, so
// that `curl -d '{…}'` without a header works too.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	x := &exchange{w: statusWriter{ResponseWriter: w}}
	x.info.start = start
	x.info.id = a.requestID(r.Header.Get("X-Request-Id"))
	x.id[0] = x.info.id
	w.Header()["X-Request-Id"] = x.id[:]
	served := false
	defer func() {
		if !served { // a handler panicked; net/http logs the panic itself
			x.w.status = http.StatusInternalServerError
		}
		a.observe(r, x, start, time.Since(start))
	}()
	// POST /v1/api-keys/verify, the hot path, is dispatched as the mux would
	// dispatch it (its pattern set on the request), without the mux's
	// pattern matching, and given its record directly rather than through
	// a copy of the request with a new context; it reads its body as JSON
	// whatever the header says.
	if r.Method == http.MethodPost && r.URL.Path == verifyPath && r.URL.RawPath == "" {
		r.Pattern = verifyPattern
		a.verify(&x.w, r, &x.info)
		served = true
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), infoKey{}, &x.info))
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" && !isJSON(ct) {
		r.Header.Set("Content-Type", "application/json")
	}
	a.mux.ServeHTTP(&x.w, r)
	served = true
}

// observe counts the request and writes its log line.
func (a *API) observe(r *http.Request, x *exchange, start time.Time, d time.Duration) {
	status := x.w.status
	if status == 0 {
		status = http.StatusOK // nothing written: net/http answers 200
	}
	route := x.info.route
	if route == "" {
		route = routeOf(r.Pattern)
	}
	if status == http.StatusOK && r.Pattern == verifyPattern && x.info.route == "" {
		a.verifyOK.Observe(d) // the hot path's series, resolved once
	} else {
		a.metrics.HTTPRequest(route, r.Method, status, d)
	}
	if x.info.verdict != "" {
		a.metrics.VerifyResult(x.info.verdict, d)
	}

	q := logging.Request{
		Time:     start.Add(d),
		Level:    slog.LevelInfo,
		ID:       x.info.id,
		Method:   metrics.MethodLabel(r.Method),
		Route:    route,
		Status:   status,
		Duration: d,
		Bytes:    x.w.bytes,
		Project:  x.info.project,
		Actor:    x.info.actor,
	}
	if status >= 500 {
		q.Level = slog.LevelError
	}
	ctx := r.Context()
	h := a.log.Handler()
	if !h.Enabled(ctx, q.Level) {
		return
	}
	q.Client = clientIP(r, a.trusted)
	// The path is never logged (a client may put anything in it), only the
	// route pattern, and the key ID when the route names one that has the
	// shape of a key ID.
	if id := r.PathValue("keyID"); id != "" && apikey.ValidID(apikey.IDKindKey, id) {
		q.KeyID = id
	}
	logging.LogRequest(ctx, h, &q)
}

// routeOf turns a mux pattern ("GET /v1/api-keys/{keyID}") into the route
// label and log field ("/v1/api-keys/{keyID}"). Requests no route matched
// (the catch-all, redirects) are "unmatched", so that neither metrics nor
// logs ever carry a path a client made up.
func routeOf(pattern string) string {
	if _, path, ok := strings.Cut(pattern, " "); ok {
		pattern = path
	}
	if pattern == "" || pattern == "/" {
		return "unmatched"
	}
	return pattern
}

// maxRequestIDLen bounds an incoming X-Request-Id.
const maxRequestIDLen = 128

// requestID returns the incoming request ID when it is sane, otherwise a
// new one. Sane is 1–128 characters of A-Z a-z 0-9 . : - (UUIDs, ULIDs, hex
// and most proxies' IDs). Underscores are refused because every key apikeyd
// issues contains one, and so is the admin token: a client that puts a
// credential there by mistake must not have it echoed or logged.
func (a *API) requestID(in string) string {
	if saneRequestID(in) && !a.svc.IsAdminToken(in) {
		return in
	}
	return newRequestID()
}

func saneRequestID(s string) bool {
	if len(s) == 0 || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// newRequestID returns a new request ID: 32 hex digits, the first 16 drawn
// at random when the process starts, the last 16 a counter. IDs are unique
// within a process and, with overwhelming likelihood, across replicas and
// restarts; they are not secrets, and a counter costs far less per request
// than fresh random bits.
func newRequestID() string {
	var b [32]byte
	copy(b[:16], requestIDPrefix[:])
	n := requestIDCounter.Add(1)
	for i := 31; i >= 16; i-- {
		b[i] = hexDigits[n&0xf]
		n >>= 4
	}
	return string(b[:])
}

const hexDigits = "0123456789abcdef"

var (
	requestIDPrefix = func() (p [16]byte) {
		hex.Encode(p[:], binary.LittleEndian.AppendUint64(nil, rand.Uint64()))
		return p
	}()
	requestIDCounter atomic.Uint64
)

// routeMux is the API's ServeMux, remembering every pattern registered on
// it, so that tests can compare what is served with the OpenAPI document.
type routeMux struct {
	*http.ServeMux
	patterns []string
}

func newRouteMux() *routeMux { return &routeMux{ServeMux: http.NewServeMux()} }

// Handle registers handler for pattern and remembers the pattern.
func (m *routeMux) Handle(pattern string, handler http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, handler)
}

// HandleFunc registers handler for pattern and remembers the pattern.
func (m *routeMux) HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request)) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.HandleFunc(pattern, handler)
}

// Routes returns the patterns ("METHOD /path") the API serves, sorted. The
// catch-all that answers 404 and 405 is not among them.
func (a *API) Routes() []string {
	var out []string
	for _, p := range a.mux.patterns {
		if p != "/" {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}
