package client_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/apikeyd/apikeyd/client"
)

// BenchmarkVerify times the client's side of one verification, as a guard
// makes it for each request: a loopback server answers every verify with
// the same canned verdict (a valid key, its fields as apikeyd sends them),
// so what changes between runs is the client's work: encoding, net/http's
// exchange, reading and decoding (docs/benchmarks.md §2b).
func BenchmarkVerify(b *testing.B) {
	verdict := []byte(`{"valid":true,"code":"VALID","key_id":"key_01JEXAMPLE0000000000000000","project_id":"shop","environment_id":"prod","name":"checkout","key_prefix":"sk_abc","scopes":["orders:read","orders:write"],"owner_id":null,"meta":null,"expires_at":null,"created_at":"2026-12-03T09:00:00Z","last_used_at":null,"grace_expires_at":null}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(verdict)
	}))
	b.Cleanup(srv.Close)
	c, err := client.New(srv.URL, "apikeyd_verifier")
	if err != nil {
		b.Fatal(err)
	}
	p := client.VerifyParams{Key: "sk_0000000000000000000000000000000000000000000abcdef", Scopes: []string{"orders:read"}, EnvironmentID: "prod"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			v, err := c.Verify(b.Context(), p)
			if err != nil || !v.Valid {
				b.Fatalf("%+v %v", v, err)
			}
		}
	})
}
