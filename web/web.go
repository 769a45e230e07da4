package web

import (
	"embed"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/service"
)

//go:embed templates static
var files embed.FS

// Prefix is the path the dashboard is served under.
const Prefix = "/ui/"

// FailureLimiter slows down clients that fail to authenticate. The server
// passes the API's (api.API.AuthFailures), so that failed sign-ins and
// failed bearer tokens count in one place per client address.
type FailureLimiter interface {
	// Blocked reports whether r's client has no attempt left, and how long
	// it must wait if so.
	Blocked(r *http.Request) (time.Duration, bool)
	// Fail counts a failed authentication of r's client; ok is false when
	// it had no attempt left.
	Fail(r *http.Request) (wait time.Duration, ok bool)
}

// Options configure the dashboard.
type Options struct {
	Service *service.Service
	Logger  *slog.Logger
	// Failures counts failed sign-ins; nil counts none, which only tests
	// want.
	Failures FailureLimiter
	// TrustedProxies are the networks whose X-Forwarded-Proto is believed
	// when deciding whether the browser speaks https (and the session
	// cookie is Secure).
	TrustedProxies []netip.Prefix
	// SessionIdle ends a session unused for this long; zero means 12 h.
	SessionIdle time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// UI is the dashboard's handler.
type UI struct {
	svc      *service.Service
	log      *slog.Logger
	failures FailureLimiter
	trusted  []netip.Prefix
	now      func() time.Time
	sessions *sessions
	pages    pages
	handler  http.Handler
}

// DefaultSessionIdle is how long an unused session lasts (SPEC §11).
const DefaultSessionIdle = 12 * time.Hour

// New returns the dashboard, to be mounted at Prefix.
func New(o Options) *UI {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SessionIdle <= 0 {
		o.SessionIdle = DefaultSessionIdle
	}
	u := &UI{
		svc:      o.Service,
		log:      o.Logger,
		failures: o.Failures,
		trusted:  o.TrustedProxies,
		now:      o.Now,
		sessions: newSessions(o.SessionIdle, o.Now),
	}
	u.pages = parsePages(u.funcs())
	mux := http.NewServeMux()
	u.routes(mux)
	// Every change is a POST; one from another origin is refused before
	// any handler sees it.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(u.crossOrigin))
	u.handler = secureHeaders(cop.Handler(mux))
	return u
}

// ServeHTTP implements http.Handler.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) { u.handler.ServeHTTP(w, r) }

// routes registers every route of the dashboard.
func (u *UI) routes(mux *http.ServeMux) {
	static, _ := fs.Sub(files, "static")
	mux.Handle("GET /ui/static/", staticFiles(http.StripPrefix("/ui/static/", http.FileServerFS(static))))
	mux.HandleFunc("GET /ui/{$}", u.home)
	mux.HandleFunc("GET /ui/login", redirectHome)
	mux.HandleFunc("POST /ui/login", u.login)
	mux.HandleFunc("POST /ui/logout", u.logout)
	mux.HandleFunc("GET /ui/open", u.signedIn(u.openProject))
	mux.HandleFunc("GET /ui/projects/{project}/keys", u.signedIn(u.keys))
	mux.HandleFunc("GET /ui/projects/{project}/keys/new", u.signedIn(u.newKey))
	mux.HandleFunc("POST /ui/projects/{project}/keys", u.signedIn(u.createKey))
	mux.HandleFunc("GET /ui/projects/{project}/audit", u.signedIn(u.audit))
	mux.HandleFunc("GET /ui/keys/{id}", u.signedIn(u.key))
	mux.HandleFunc("POST /ui/keys/{id}/rotate", u.signedIn(u.rotateKey))
	mux.HandleFunc("POST /ui/keys/{id}/revoke", u.signedIn(u.revokeKey))
	mux.HandleFunc("POST /ui/keys/{id}/disable", u.signedIn(u.disableKey))
	mux.HandleFunc("POST /ui/keys/{id}/enable", u.signedIn(u.enableKey))
	mux.HandleFunc("POST /ui/keys/{id}/credits", u.signedIn(u.adjustCredits))
	mux.HandleFunc("GET /ui/root-keys", u.signedIn(u.rootKeys))
	mux.HandleFunc("POST /ui/root-keys", u.signedIn(u.createRootKey))
	mux.HandleFunc("POST /ui/root-keys/{id}/revoke", u.signedIn(u.revokeRootKey))
	mux.HandleFunc("/ui/", u.notFound)
}

// contentSecurityPolicy allows the page its own scripts, styles and
// requests only, no inline script or style, and no framing anywhere.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// maxFormBytes bounds a form's body; the largest form, create, is a few
// hundred bytes.
const maxFormBytes = 64 << 10

// secureHeaders sets the headers every dashboard response carries. Pages
// show credentials' state (and, once, a key), so none is ever stored by a
// browser or a proxy; static assets override that. It also bounds the
// body of every form.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// staticFiles lets browsers keep the embedded assets for a while; they
// change only with the binary.
func staticFiles(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // no directory listings
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

func redirectHome(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

// https reports whether the browser reached us over https: directly, or
// through a trusted proxy that says so.
func (u *UI) https(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	peer = peer.Unmap()
	for _, p := range u.trusted {
		if p.Contains(peer) {
			return r.Header.Get("X-Forwarded-Proto") == "https"
		}
	}
	return false
}
