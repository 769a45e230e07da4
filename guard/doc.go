// Package guard protects your own net/http API with apikeyd in a few lines:
// it reads the bearer key of each request, has apikeyd verify it with the
// scopes the route needs, and hands the verified identity to your handler.
//
//	c, _ := client.New("http://apikeyd.internal:8080", os.Getenv("APIKEYD_VERIFY_TOKEN"))
//	g := guard.New(c, guard.Options{Environment: "prod"})
//	mux.Handle("GET /orders", g.Require("orders:read")(listOrders))
//	mux.Handle("POST /orders", g.Require("orders:write")(createOrder))
//
//	func listOrders(w http.ResponseWriter, r *http.Request) {
//		id, _ := guard.IdentityFrom(r.Context())
//		… id.ProjectID is the customer, id.KeyID the key they used …
//	}
//
// The client's token decides whose keys your API accepts. For an API that
// serves every customer of a platform, it is a root key (apikeyd_…) with
// only the api-keys:verify permission and project_ids null: it verifies
// the keys of every project, present and future, and can do nothing else;
// Identity.ProjectID tells the customers apart. A root key limited to
// projects accepts those projects' keys; an API key with api-keys:verify
// accepts its own project's. Do not give the guard the admin token, which
// can also create and revoke every key.
//
// Answers, as RFC 9457 problem+json:
//   - 401 with WWW-Authenticate: Bearer when the key is missing, malformed,
//     unknown, of another project, expired, revoked, rotated past its grace
//     period, or bound to another environment than Options.Environment;
//   - 403 with WWW-Authenticate: Bearer error="insufficient_scope" when the
//     key is valid but lacks a scope the route requires;
//   - 429 when the key is over one of its (or its owner's) rate limits
//     (RATE_LIMITED), with Retry-After and the RateLimit-Policy and
//     RateLimit fields of draft-ietf-httpapi-ratelimit-headers, e.g.
//     RateLimit-Policy: "per_minute";q=100;w=60 and
//     RateLimit: "per_minute";r=0;t=12; or out of credits (USAGE_EXCEEDED);
//   - 503 when apikeyd cannot be reached or refuses the guard's own token
//     (a configuration error, logged).
//
// # Connections
//
// Each verification is one HTTP request to apikeyd, over a connection the
// client keeps open: a client made by client.New keeps up to
// client.MaxIdleConnsPerHost idle connections, so under load the guard opens
// about as many connections as it has requests in flight and then reuses
// them. To send the guard's requests through an http.Client of your own
// (for TLS settings or instrumentation), pass it with client.WithHTTPClient,
// built on client.NewTransport or on a transport whose MaxIdleConnsPerHost
// is at least your API's concurrency: with net/http's default of 2, most
// requests under load open, and then close, a connection of their own.
//
// # Caching
//
// By default every request is verified by apikeyd, so a revocation takes
// effect on the next request. With Options.CacheTTL set, a positive answer
// is reused for that long (and never past the key's own expiry or the end
// of its grace period): a revoked key may then keep working in your API for
// up to CacheTTL after its revocation, and is refused from then on.
// Negative answers are never cached, nor are the answers for a key with
// rate limits or credits: every request must count against them. Entries are keyed by
// the SHA-256 of the key and the route's requirement, never by the key
// itself, and at most Options.CacheSize are kept.
package guard
