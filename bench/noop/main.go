// Command noop is the yardstick of the verify load benchmark: a Go net/http
// server that does nothing but read the request body and answer a fixed
// small JSON object. apikeyd's verify throughput is quoted as a ratio of
// this server's under the same load (see docs/benchmarks.md).
//
// With -timeouts it configures its http.Server with the timeouts apikeyd
// serves with (header, read, write and idle), which cost net/http a few
// timer updates and clock reads per request: the like-for-like baseline.
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

var answer = []byte(`{"valid":true,"code":"VALID"}`)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	timeouts := flag.Bool("timeouts", false, "serve with apikeyd's http.Server timeouts")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	// The address on stdout lets the load script start it on a free port.
	os.Stdout.WriteString(ln.Addr().String() + "\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	})
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
