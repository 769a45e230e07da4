package guard_test

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/apikeyd/apikeyd/client"
	"github.com/apikeyd/apikeyd/guard"
)

// Protect two routes of your own API. APIKEYD_VERIFY_TOKEN is a root key
// with only the api-keys:verify permission and project_ids null
// (apikeyd root-keys create --name "orders API" --permission
// api-keys:verify --all-projects): one guard serves every customer.
// (Compiled, not run: it serves forever.)
func Example() {
	c, err := client.New("http://127.0.0.1:8080", os.Getenv("APIKEYD_VERIFY_TOKEN"))
	if err != nil {
		log.Fatal(err)
	}
	// No verdict cache (Options.CacheTTL): a revoked key is refused on its
	// very next request.
	g := guard.New(c, guard.Options{Environment: "prod", Timeout: 2 * time.Second})

	mux := http.NewServeMux()
	mux.Handle("GET /orders", g.Require("orders:read")(http.HandlerFunc(listOrders)))
	mux.Handle("POST /orders", g.Require("orders:write")(http.HandlerFunc(createOrder)))
	log.Fatal(http.ListenAndServe("127.0.0.1:8081", mux))
}

func listOrders(w http.ResponseWriter, r *http.Request) {
	id, _ := guard.IdentityFrom(r.Context())
	fmt.Fprintf(w, "orders of customer %s, seen by key %s (%s)\n", id.ProjectID, id.KeyID, id.Name)
}

func createOrder(w http.ResponseWriter, r *http.Request) {
	id, _ := guard.IdentityFrom(r.Context())
	// Decisions finer than the route's scope are the handler's.
	if id.HasScope("orders:priority") {
		w.Header().Set("X-Queue", "priority")
	}
	w.WriteHeader(http.StatusCreated)
}
