package sqlite_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/sqlite"
	"github.com/apikeyd/apikeyd/storetest"
)

// open returns a store on a fresh file, closed when the test ends.
func open(tb testing.TB) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(tb.Context(), filepath.Join(tb.TempDir(), "apikeyd.db"))
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) apikey.Store { return open(t) })
}

func TestOpen(t *testing.T) {
	t.Run("OKReopen", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "apikeyd.db")
		s, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		k := testKey(0)
		if err := s.Update(t.Context(), func(tx apikey.Tx) error { return tx.InsertKey(t.Context(), k) }); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err = sqlite.Open(t.Context(), path); err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer s.Close()
		if _, err := s.KeyByHash(t.Context(), k.Hash); err != nil {
			t.Errorf("key lost on reopen: %v", err)
		}
	})

	notADatabase := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(notADatabase, []byte("this is not an SQLite database, not even close to one........................................"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"ErrMissingDirectory": filepath.Join(t.TempDir(), "missing", "apikeyd.db"),
		"ErrNotADatabase":     notADatabase,
	} {
		t.Run(name, func(t *testing.T) {
			s, err := sqlite.Open(t.Context(), path)
			if err == nil {
				s.Close()
			}
			if code := apikey.ErrorCode(err); code != apikey.EUNAVAILABLE {
				t.Errorf("Open: %v, want code %s", err, apikey.EUNAVAILABLE)
			}
		})
	}
}

func TestPingClosed(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "apikeyd.db"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if code := apikey.ErrorCode(s.Ping(t.Context())); code != apikey.EUNAVAILABLE {
		t.Errorf("Ping on a closed store: code %q, want %s", code, apikey.EUNAVAILABLE)
	}
}

// TestErrorHidesHash checks that a conflict on the hash does not echo it.
func TestErrorHidesHash(t *testing.T) {
	s := open(t)
	a, b := testKey(1), testKey(2)
	b.Hash = a.Hash
	err := s.Update(t.Context(), func(tx apikey.Tx) error {
		if err := tx.InsertKey(t.Context(), a); err != nil {
			return err
		}
		return tx.InsertKey(t.Context(), b)
	})
	if apikey.ErrorCode(err) != apikey.ECONFLICT {
		t.Fatalf("got %v, want a conflict", err)
	}
	for _, form := range []string{a.Hash.String()[:8], string(a.Hash[:4])} {
		if strings.Contains(err.Error(), form) {
			t.Errorf("error %q contains the key hash", err)
		}
	}
}

// testKey returns a distinct key for tests and benchmarks.
func testKey(i int) *apikey.Key {
	now := time.Now().UTC()
	id := fmt.Sprintf("key_%026d", i)
	return &apikey.Key{
		ID:        id,
		ProjectID: "p1",
		Name:      "bench",
		KeyPrefix: "sk_012345678",
		Hash:      apikey.HashKey(id),
		Scopes:    []string{"api-keys:read"},
		CreatedAt: now,
		UpdatedAt: now,
	}
}
