// Package observe is the middleware every request of apikeyd goes
// through, whichever handler serves it (the API, health, metrics, the
// dashboard): it gives the request an ID, keeps a record of it that the
// handler fills in (the project, the acting credential, a verification's
// verdict), and when the handler returns counts the request in the
// metrics and writes its one log line.
//
// The order, in Middleware:
//  1. the request ID is taken from X-Request-Id or generated, and echoed;
//  2. a Record is put in the request's context; handlers fill it in
//     through From(ctx);
//  3. the wrapped handler serves the request; a ServeMux on the way sets
//     r.Pattern on the request it was given (it must be that very request,
//     not a copy, for the route to be known);
//  4. after it returns, the request is counted under its route pattern and
//     one line is logged. A request whose client went away before it was
//     answered is recorded as 499 (nginx's "client closed request"),
//     never as a 5xx, and logged at INFO.
package observe

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/logging"
	"github.com/apikeyd/apikeyd/metrics"
)

// StatusClientClosed is the status a request is recorded with when its
// client went away before the answer: nginx's 499.
const StatusClientClosed = 499

// Record is what the log line and the metrics say about a request beyond
// what net/http knows. One is allocated per request, together with its
// status writer, and filled in as the request is authenticated and
// handled. Only the goroutine serving the request touches it.
type Record struct {
	// ID is the request's ID, echoed in X-Request-Id.
	ID string
	// Start is when the middleware began: the instant authentication and
	// verification are decided at.
	Start time.Time

	project string            // the project the request acted in, when known
	actor   string            // "admin", the acting key's ID, or "" if unauthenticated
	verdict apikey.VerifyCode // the code of the verification the request made, if any
}

type recordKey struct{}

// From returns the request's record. Outside the middleware (a handler
// called directly by a test) it returns a fresh one, started now, that
// nobody reads.
func From(ctx context.Context) *Record {
	if rec, ok := ctx.Value(recordKey{}).(*Record); ok {
		return rec
	}
	return &Record{Start: time.Now()}
}

// NoteProject records the project a request acts in, for the log line. The
// first project noted wins: for an API key that is its own project, noted
// when it authenticated, before any handler ran. A project ID that is not
// one, or that has the shape of a key (an admin may have pasted one into
// project_id), is not noted: the log never repeats what a client typed
// unless it is known to be harmless.
func (rec *Record) NoteProject(project string) {
	if rec.project == "" && apikey.ValidIdentifier(project) && !apikey.ParseKey(project) {
		rec.project = project
	}
}

// NoteActor records who the request acts for.
func (rec *Record) NoteActor(p apikey.Principal) {
	if p.Admin {
		rec.actor = "admin"
		return
	}
	rec.actor = p.KeyID
	rec.project = p.ProjectID
}

// NoteVerdict records the code of the verification the request made,
// counted with the request's duration.
func (rec *Record) NoteVerdict(code apikey.VerifyCode) { rec.verdict = code }

// Options configure the middleware.
type Options struct {
	// Logger receives one line per request; nil logs nothing.
	Logger *slog.Logger
	// Metrics count every request; nil counts nothing.
	Metrics *metrics.Metrics
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// Secret reports whether a string is a credential (the admin token):
	// an X-Request-Id that is one is replaced rather than echoed and logged.
	Secret func(string) bool
}

// Middleware returns the observation middleware.
func Middleware(o Options) func(http.Handler) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Secret == nil {
		o.Secret = func(string) bool { return false }
	}
	return func(next http.Handler) http.Handler {
		return &observer{o: o, next: next}
	}
}

type observer struct {
	o    Options
	next http.Handler
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
	w   statusWriter
	rec Record
	id  [1]string // the X-Request-Id header's value
}

func (o *observer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	x := &exchange{w: statusWriter{ResponseWriter: w}}
	x.rec.Start = start
	x.rec.ID = o.requestID(r.Header.Get("X-Request-Id"))
	x.id[0] = x.rec.ID
	w.Header()["X-Request-Id"] = x.id[:]
	r = r.WithContext(context.WithValue(r.Context(), recordKey{}, &x.rec))
	served := false
	defer func() {
		if !served { // a handler panicked; net/http logs the panic itself
			x.w.status = http.StatusInternalServerError
		}
		o.observe(r, x, start, time.Since(start))
	}()
	o.next.ServeHTTP(&x.w, r)
	served = true
}

// observe counts the request and writes its log line.
func (o *observer) observe(r *http.Request, x *exchange, start time.Time, d time.Duration) {
	status := x.w.status
	if status == 0 {
		status = http.StatusOK // nothing written: net/http answers 200
	}
	ctx := r.Context()
	// The client went away: whatever the handler made of its cancelled
	// work (a 500 for a store call that was cut short, or nothing at all),
	// it is not the server's fault and nobody got the answer.
	if ctx.Err() != nil && (status >= 500 || x.w.status == 0) && context.Cause(ctx) == context.Canceled {
		status = StatusClientClosed
	}
	route := RouteOf(r.Pattern)
	o.o.Metrics.HTTPRequest(route, r.Method, status, d)
	if x.rec.verdict != "" {
		o.o.Metrics.VerifyResult(x.rec.verdict, d)
	}

	q := logging.Request{
		Time:     start.Add(d),
		Level:    slog.LevelInfo,
		ID:       x.rec.ID,
		Method:   metrics.MethodLabel(r.Method),
		Route:    route,
		Status:   status,
		Duration: d,
		Bytes:    x.w.bytes,
		Project:  x.rec.project,
		Actor:    x.rec.actor,
	}
	if status >= 500 {
		q.Level = slog.LevelError
	}
	h := o.o.Logger.Handler()
	if !h.Enabled(ctx, q.Level) {
		return
	}
	q.Client = ClientIP(r, o.o.TrustedProxies)
	// The path is never logged (a client may put anything in it), only the
	// route pattern, and the key ID when the route names one that has the
	// shape of a key ID.
	if id := r.PathValue("keyID"); id != "" && apikey.ValidID(apikey.IDKindKey, id) {
		q.KeyID = id
	}
	logging.LogRequest(ctx, h, &q)
}

// RouteOf turns a mux pattern ("GET /v1/api-keys/{keyID}") into the route
// label and log field ("/v1/api-keys/{keyID}"). Requests no route matched
// (the catch-all, rejected paths) are "unmatched", so that neither metrics
// nor logs ever carry a path a client made up.
func RouteOf(pattern string) string {
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
func (o *observer) requestID(in string) string {
	if SaneRequestID(in) && !o.o.Secret(in) {
		return in
	}
	return NewRequestID()
}

// SaneRequestID reports whether s may be kept as a request ID.
func SaneRequestID(s string) bool {
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

// NewRequestID returns a new request ID: 32 hex digits, the first 16 drawn
// at random when the process starts, the last 16 a counter. IDs are unique
// within a process and, with overwhelming likelihood, across replicas and
// restarts; they are not secrets, and a counter costs far less per request
// than fresh random bits.
func NewRequestID() string {
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

// ClientIP decides the address a request comes from: the peer, or, when
// the peer is a trusted proxy, the last address in X-Forwarded-For that is
// not itself a trusted proxy. It is the invalid Addr when the peer address
// cannot be parsed.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	addr = addr.Unmap()
	if isTrusted(addr, trusted) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			addr = hop.Unmap()
			if !isTrusted(addr, trusted) {
				break
			}
		}
	}
	return addr
}

func isTrusted(addr netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
