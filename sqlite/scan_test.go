package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// TestScanKeysSplits checks that ScanKeys splits a store of more than
// scanSplit keys into scanWorkers ranges that together hold every key once
// (the conformance suite checks what fn sees; this, that the split path is
// the one taken), and keeps a few keys in one range.
func TestScanKeysSplits(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(t.TempDir(), "apikeyd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	insert := func(n int) {
		err := st.Update(ctx, func(tx apikey.Tx) error {
			for i := range n {
				s, err := apikey.GenerateKey("sk")
				if err != nil {
					return err
				}
				id, err := apikey.NewID(apikey.IDKindKey)
				if err != nil {
					return err
				}
				now := time.Now().UTC().Truncate(time.Microsecond)
				k := &apikey.Key{ID: id, ProjectID: "p1", Name: fmt.Sprint("k", i), KeyPrefix: s.Prefix, Hash: s.Hash, CreatedAt: now, UpdatedAt: now}
				if err := tx.InsertKey(ctx, k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		var n atomic.Int64
		if err := st.ScanKeys(ctx, func(*apikey.Key) error { n.Add(1); return nil }); err != nil {
			t.Fatal(err)
		}
		return int(n.Load())
	}

	insert(10)
	if b, err := st.scanBounds(ctx); err != nil || len(b) != 2 {
		t.Fatalf("10 keys: bounds %q (%v), want one range", b, err)
	}
	insert(scanSplit)
	b, err := st.scanBounds(ctx)
	if err != nil || len(b) != scanWorkers+1 {
		t.Fatalf("%d keys: bounds %q (%v), want %d ranges", scanSplit+10, b, err, scanWorkers)
	}
	if n := count(); n != scanSplit+10 {
		t.Fatalf("scanned %d keys, want %d", n, scanSplit+10)
	}
}
