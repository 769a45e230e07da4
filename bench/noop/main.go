// Command noop is the yardstick of the verify load benchmark: a Go net/http
// server that does nothing but read the request body and answer a fixed
// small JSON object. apikeyd's verify throughput is quoted as a ratio of
// this server's under the same load (see docs/benchmarks.md).
//
// With -timeouts it configures its http.Server with the timeouts apikeyd
// serves with (header, read, write and idle), which cost net/http a few
// timer updates and clock reads per request: the like-for-like baseline.
//
// With -guard URL it is the guard benchmark's protected API
// (scripts/bench-guard): the same no-op handler behind guard.Require, which
// verifies each request's bearer key with the apikeyd at URL, using the
// verifier key read from -token-file. GET /debug/dials (outside the guard)
// then answers how many connections the guard has dialled to apikeyd, and
// /debug/pprof/ serves the guard's profiles.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apikeyd/apikeyd/client"
	"github.com/apikeyd/apikeyd/guard"
)

var answer = []byte(`{"valid":true,"code":"VALID"}`)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	timeouts := flag.Bool("timeouts", false, "serve with apikeyd's http.Server timeouts")
	guardURL := flag.String("guard", "", "protect the handler with a guard verifying through the apikeyd at this URL")
	tokenFile := flag.String("token-file", "", "with -guard: file whose first line is the guard's verifier key")
	env := flag.String("environment", "prod", "with -guard: the environment keys must be bound to")
	scope := flag.String("scope", "orders:read", "with -guard: the scope the route requires")
	cacheTTL := flag.Duration("cache-ttl", 0, "with -guard: guard.Options.CacheTTL (0: no cache)")
	defaultTransport := flag.Bool("default-transport", false, "with -guard: verify through a clone of net/http's default transport (2 idle connections), for comparison")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	})
	if *guardURL != "" {
		if h, err = guarded(h, *guardURL, *tokenFile, *env, *scope, *cacheTTL, *defaultTransport); err != nil {
			log.Fatal(err)
		}
	}
	// The address on stdout lets the load script start it on a free port.
	os.Stdout.WriteString(ln.Addr().String() + "\n")
	srv := &http.Server{Handler: h}
	if *timeouts {
		// As server.New configures apikeyd's.
		srv.ReadHeaderTimeout = 5 * time.Second
		srv.ReadTimeout = 30 * time.Second
		srv.WriteTimeout = 30 * time.Second
		srv.IdleTimeout = 2 * time.Minute
		srv.MaxHeaderBytes = 64 << 10
	}
	log.Fatal(srv.Serve(ln))
}

// guarded returns h behind a guard, as a user's API would have it: a client
// on client.NewTransport (what client.New uses), or on net/http's default
// transport, whose dials are counted.
func guarded(h http.Handler, apikeydURL, tokenFile, env, scope string, cacheTTL time.Duration, defaultTransport bool) (http.Handler, error) {
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		return nil, err
	}
	token, _, _ := strings.Cut(string(b), "\n")
	var dials atomic.Int64
	t := client.NewTransport()
	if defaultTransport {
		t = http.DefaultTransport.(*http.Transport).Clone()
	}
	dial := t.DialContext
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dial(ctx, network, addr)
	}
	c, err := client.New(apikeydURL, strings.TrimSpace(token),
		client.WithHTTPClient(&http.Client{Timeout: client.DefaultTimeout, Transport: t}))
	if err != nil {
		return nil, err
	}
	g := guard.New(c, guard.Options{Environment: env, CacheTTL: cacheTTL,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	mux := http.NewServeMux()
	mux.Handle("/", g.Require(scope)(h))
	mux.HandleFunc("GET /debug/dials", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, dials.Load())
	})
	// For profiles of the guard under load: go tool pprof http://ADDR/debug/pprof/profile
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	return mux, nil
}
