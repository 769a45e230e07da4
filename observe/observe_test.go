package observe

import (
	"strings"
	"sync"
	"testing"
)

// TestRequestIDsUnique draws request IDs from several goroutines at once:
// every one is 32 hex digits, sane by the API's own rule (so that a proxy
// passing it back is believed), and none repeats.
func TestRequestIDsUnique(t *testing.T) {
	const workers, each = 8, 5000
	ids := make(chan string, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				ids <- NewRequestID()
			}
		})
	}
	wg.Wait()
	close(ids)
	seen := make(map[string]bool, workers*each)
	for id := range ids {
		if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" || !SaneRequestID(id) {
			t.Fatalf("request ID %q is not 32 hex digits", id)
		}
		if seen[id] {
			t.Fatalf("request ID %q issued twice", id)
		}
		seen[id] = true
	}
}
