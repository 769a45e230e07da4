// Package web serves apikeyd's dashboard at /ui/: server-rendered
// html/template pages (one template per page, sharing the partials of
// templates/layout.html), embedded in the binary with their static assets —
// the vendored htmx, a few lines of JavaScript for the copy button, and
// one stylesheet — so the pages load nothing from anywhere else.
//
// Handlers call the service package, never a store, with the principal of
// the signed-in session: a person sees and may do exactly what the API
// would let the same credential. Sessions are server-side and in memory
// (each replica has its own; a restart signs everyone out). A session
// keeps the hash of its credential, never the credential, and resolves it
// again on every request, so a credential that stops working ends its
// sessions. Sign-in failures count in the API's failure limiter.
//
// Every change is a POST, refused when it comes from another origin
// (http.CrossOriginProtection), answered with a redirect so that a reload
// repeats nothing. A key's plaintext reaches exactly one page: the one
// after its create or rotate, carried there inside the session and gone
// from it once shown. Every page is sent with Cache-Control: no-store and
// a Content-Security-Policy that allows only the dashboard's own files and
// forbids framing.
package web
