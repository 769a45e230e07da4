package api

import (
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Router is an http.ServeMux that answers every routing error itself, as a
// problem, instead of net/http's text and HTML answers (SPEC §12):
//
//   - a path that is not in canonical form ("//", "/./", "/../", "/." or
//     "/.." at the end) is 404: it names no route, and is not redirected,
//     because a redirected POST or DELETE is rarely what its client meant
//     and a bearer should not follow one;
//   - a query string that does not decode (bad percent-encoding, ";"
//     separators) or decodes to control characters (NUL among them) or
//     invalid UTF-8 is 400;
//   - a known path with another method is 405 with Allow;
//   - any other path is 404.
//
// The API's own routes and the server's root handler are both Routers, so
// a request meets the same rules whichever one it reaches first.
type Router struct {
	mux      *http.ServeMux
	patterns []string
	api      *API // the problem writer

	// fillers are the patterns sealed registers so that a literal path is
	// not taken for a wildcard's value under another method (GET
	// /v1/api-keys/verify is not getKey("verify")): they answer 405.
	fillers map[string]bool
	sealed  sync.Once
}

// NewRouter returns an empty Router whose problems are written by a.
func (a *API) NewRouter() *Router {
	rt := &Router{mux: http.NewServeMux(), api: a}
	rt.mux.HandleFunc("/", rt.unmatched)
	return rt
}

// Handle registers h for pattern ("METHOD /path") and remembers the
// pattern, so that Routes and the OpenAPI drift tests know it.
func (rt *Router) Handle(pattern string, h http.Handler) {
	rt.patterns = append(rt.patterns, pattern)
	rt.mux.Handle(pattern, h)
}

// HandleFunc is Handle for a function.
func (rt *Router) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	rt.Handle(pattern, http.HandlerFunc(h))
}

// Handler returns the handler and pattern r would be routed to, as
// http.ServeMux.Handler does; the pattern is "/" for the catch-all.
func (rt *Router) Handler(r *http.Request) (http.Handler, string) { return rt.mux.Handler(r) }

// Routes returns the patterns registered, sorted.
func (rt *Router) Routes() []string {
	out := slices.Clone(rt.patterns)
	slices.Sort(out)
	return out
}

// seal registers, for every path a pattern spells out literally, a filler
// under each method that would otherwise reach a wildcard route instead:
// "POST /v1/api-keys/verify" beside "GET /v1/api-keys/{keyID}" makes
// "GET /v1/api-keys/verify" a filler, answered 405 with Allow: POST. It
// runs once, before the first request is routed, when every route is
// registered.
func (rt *Router) seal() {
	rt.fillers = map[string]bool{}
	registered := map[string]bool{}
	for _, p := range rt.patterns {
		registered[p] = true
	}
	for _, p := range rt.patterns {
		_, path, ok := strings.Cut(p, " ")
		if !ok || strings.ContainsAny(path, "{}") {
			continue
		}
		for _, m := range allowMethods {
			filler := m + " " + path
			if registered[filler] || rt.fillers[filler] {
				continue
			}
			probe := &http.Request{Method: m, URL: &url.URL{Path: path}, Host: "apikeyd"}
			if _, pattern := rt.mux.Handler(probe); pattern != "/" {
				rt.fillers[filler] = true
				rt.mux.HandleFunc(filler, rt.unmatched)
			}
		}
	}
}

// ServeHTTP routes r, or answers the routing problem it has.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt.sealed.Do(rt.seal)
	if !canonicalPath(r.URL.Path) {
		rt.api.writeProblem(w, r, newProblem(http.StatusNotFound, "no such route: the path is not in canonical form"))
		return
	}
	if r.URL.RawQuery != "" && !validQuery(r.URL.RawQuery) {
		rt.api.writeProblem(w, r, newProblem(http.StatusBadRequest, "the query string is not valid: bad percent-encoding, a control character or invalid UTF-8"))
		return
	}
	rt.mux.ServeHTTP(w, r)
}

// allowMethods are the methods an Allow header may list.
var allowMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// unmatched answers requests no route matched: 405 with Allow when the
// path exists under other methods, 404 otherwise.
func (rt *Router) unmatched(w http.ResponseWriter, r *http.Request) {
	// Counted and logged as "unmatched" (observe.RouteOf), fillers too:
	// no route served the request.
	r.Pattern = "/"
	var allow []string
	probe := *r
	for _, m := range allowMethods {
		probe.Method = m
		if _, pattern := rt.mux.Handler(&probe); pattern != "" && pattern != "/" && !rt.fillers[pattern] {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		rt.api.writeProblem(w, r, newProblem(http.StatusNotFound, "no such route"))
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	rt.api.writeProblem(w, r, newProblem(http.StatusMethodNotAllowed, "method not allowed"))
}

// canonicalPath reports whether p is as http.ServeMux would leave it: it
// redirects any other path to its cleaned form.
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if p[len(p)-1] == '/' && c != "/" {
		c += "/"
	}
	return c == p
}

// validQuery reports whether a raw query decodes and holds no control
// character and no invalid UTF-8, in names or values.
func validQuery(raw string) bool {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return false
	}
	for k, vs := range q {
		if !plainText(k) {
			return false
		}
		for _, v := range vs {
			if !plainText(v) {
				return false
			}
		}
	}
	return true
}

func plainText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			return false
		}
	}
	return true
}
