package server

import (
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/danielgtaylor/huma/v2"

	"github.com/apikeyd/apikeyd/api"
	"github.com/apikeyd/apikeyd/metrics"
	"github.com/apikeyd/apikeyd/observe"
	"github.com/apikeyd/apikeyd/web"
)

// HandlerOptions configure the root handler.
type HandlerOptions struct {
	// Metrics are served at /metrics and count every request; nil serves
	// and counts none.
	Metrics        *metrics.Metrics
	Logger         *slog.Logger
	TrustedProxies []netip.Prefix
	// Secret reports whether a string is a credential, so that it is never
	// echoed as a request ID.
	Secret func(string) bool
	// UI is the dashboard, mounted at /ui/; nil mounts none.
	UI http.Handler
}

// Handler is the server's root handler: one router that mounts everything
// apikeyd serves, each part at its own patterns, and the observation every
// request gets whichever part serves it (observe.Middleware: request ID,
// metrics, one log line). The API (its /v1 routes, /healthz, /readyz and
// /openapi.json) is mounted route by route, so that the root router knows
// every path and answers 404, 405 with Allow, and malformed paths and
// queries with problems of its own (api.Router) before any part sees them.
func Handler(a *api.API, o HandlerOptions) http.Handler {
	root := a.NewRouter()
	for _, pattern := range a.Routes() {
		root.Handle(pattern, a)
	}
	if o.Metrics != nil {
		root.Handle("GET /metrics", o.Metrics.Handler())
		a.Document(&huma.Operation{
			OperationID: "metrics", Method: http.MethodGet, Path: "/metrics", Tags: []string{"Operations"},
			Summary: "Prometheus metrics", Description: "Metrics in the Prometheus text exposition format.",
			Responses: map[string]*huma.Response{"200": {
				Description: "Metrics",
				Content:     map[string]*huma.MediaType{"text/plain; version=0.0.4": {Schema: &huma.Schema{Type: huma.TypeString}}},
			}},
		})
	}
	if o.UI != nil {
		root.Handle(web.Prefix, o.UI)
	}
	return observe.Middleware(observe.Options{
		Logger: o.Logger, Metrics: o.Metrics, TrustedProxies: o.TrustedProxies, Secret: o.Secret,
	})(root)
}
