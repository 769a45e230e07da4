package metrics_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/metrics"
	"github.com/apikeyd/apikeyd/sqlite"
	"github.com/apikeyd/apikeyd/storetest"
)

// TestStoreErrors runs operations on a real SQLite store through the
// counting wrapper: answers of the contract (not found, conflict) and
// abandoned calls are not failures; once the store is closed, every
// operation fails and counts under its name, a write once as "update".
func TestStoreErrors(t *testing.T) {
	ctx := context.Background()
	raw, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "apikeyd.db"))
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	st := m.Store(raw)

	if _, err := st.Key(ctx, "key_00000000000000000000000000"); apikey.ErrorCode(err) != apikey.ENOTFOUND {
		t.Fatalf("unknown key: %v", err)
	}
	conflict := st.Update(ctx, func(apikey.Tx) error { return apikey.Errorf(apikey.ECONFLICT, "taken") })
	if apikey.ErrorCode(conflict) != apikey.ECONFLICT {
		t.Fatalf("conflict: %v", conflict)
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := st.Keys(gone, apikey.KeyFilter{ProjectID: "p", Limit: 10}); err == nil {
		t.Fatal("a canceled read succeeded")
	}
	if text := scrape(t, m); grep(text, "apikeyd_store_errors_total{") != "" {
		t.Fatalf("failures counted where there were none:\n%s", grep(text, "apikeyd_store_errors_total"))
	}

	raw.Close()
	st.Key(ctx, "key_00000000000000000000000000")
	st.KeyByHash(ctx, apikey.HashKey("sk_x"))
	st.Ping(ctx)
	st.TouchKeys(ctx, []apikey.KeyUse{{KeyID: "key_00000000000000000000000000"}})
	st.RootKey(ctx, "root_00000000000000000000000000")
	st.RootKeyByHash(ctx, apikey.HashKey("apikeyd_x"))
	st.RootKeys(ctx, apikey.RootKeyFilter{Limit: 10})
	st.ScanRootKeys(ctx, func(*apikey.RootKey) error { return nil })
	st.RootKeyChanges(ctx, "0", func(*apikey.RootKey) error { return nil })
	st.TouchRootKeys(ctx, []apikey.KeyUse{{KeyID: "root_00000000000000000000000000"}})
	for range 2 {
		if err := st.Update(ctx, func(tx apikey.Tx) error { return tx.InsertKey(ctx, &apikey.Key{}) }); err == nil {
			t.Fatal("a write to a closed store succeeded")
		}
	}
	hasLines(t, scrape(t, m),
		`apikeyd_store_errors_total{op="key"} 1`,
		`apikeyd_store_errors_total{op="key_by_hash"} 1`,
		`apikeyd_store_errors_total{op="ping"} 1`,
		`apikeyd_store_errors_total{op="touch_keys"} 1`,
		`apikeyd_store_errors_total{op="root_key"} 1`,
		`apikeyd_store_errors_total{op="root_key_by_hash"} 1`,
		`apikeyd_store_errors_total{op="root_keys"} 1`,
		`apikeyd_store_errors_total{op="scan_root_keys"} 1`,
		`apikeyd_store_errors_total{op="root_key_changes"} 1`,
		`apikeyd_store_errors_total{op="touch_root_keys"} 1`,
		`apikeyd_store_errors_total{op="update"} 2`,
	)

	var none *metrics.Metrics
	if none.Store(raw) != apikey.Store(raw) {
		t.Error("nil Metrics wrapped the store")
	}
}

// TestStoreConformance runs the store conformance suite through the
// counting wrapper: it must change nothing of what the store does.
func TestStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) apikey.Store {
		st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "apikeyd.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return metrics.New().Store(st)
	})
}
