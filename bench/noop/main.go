// Command noop is the yardstick of the verify load benchmark: a Go net/http
// server that does nothing but read the request body and answer a fixed
// small JSON object. apikeyd's verify throughput is quoted as a ratio of
// this server's under the same load (see docs/benchmarks.md).
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"os"
)

var answer = []byte(`{"valid":true,"code":"VALID"}`)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
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
	log.Fatal(http.Serve(ln, h))
}
