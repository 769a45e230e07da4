package postgres_test

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/postgres"
	"github.com/apikeyd/apikeyd/postgres/pgtest"
	"github.com/apikeyd/apikeyd/storetest"
)

// open returns a store on a fresh schema, closed when the test ends.
func open(tb testing.TB) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(tb.Context(), pgtest.Schema(tb))
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
	pgtest.URL(t)
	t.Parallel()
	storetest.Run(t, func(t *testing.T) apikey.Store { return open(t) })
}

func TestOpen(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	t.Run("OKReopen", func(t *testing.T) {
		dbURL := pgtest.Schema(t)
		s, err := postgres.Open(t.Context(), dbURL)
		if err != nil {
			t.Fatal(err)
		}
		k := testKey(0)
		if err := s.Update(t.Context(), func(tx apikey.Tx) error { return tx.InsertKey(t.Context(), k) }); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if s, err = postgres.Open(t.Context(), dbURL); err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer s.Close()
		if _, err := s.KeyByHash(t.Context(), k.Hash); err != nil {
			t.Errorf("key lost on reopen: %v", err)
		}
	})

	// OKConcurrent opens one empty schema from several stores at once, as
	// replicas starting together do: the advisory lock lets one migrate
	// while the others wait, then find the work done.
	t.Run("OKConcurrent", func(t *testing.T) {
		dbURL := pgtest.Schema(t)
		const n = 8
		stores := make([]*postgres.Store, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { stores[i], errs[i] = postgres.Open(t.Context(), dbURL) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Open %d: %v", i, err)
				continue
			}
			defer stores[i].Close()
		}
		if t.Failed() {
			return
		}
		// Every store works on the one schema.
		for i, s := range stores {
			k := testKey(i)
			if err := s.Update(t.Context(), func(tx apikey.Tx) error { return tx.InsertKey(t.Context(), k) }); err != nil {
				t.Fatalf("store %d: %v", i, err)
			}
			if _, err := stores[(i+1)%n].Key(t.Context(), k.ID); err != nil {
				t.Errorf("store %d does not see the key of store %d: %v", (i+1)%n, i, err)
			}
		}
	})

	t.Run("ErrInvalidURL", func(t *testing.T) {
		s, err := postgres.Open(t.Context(), "postgres://user:hunter2@localhost:notaport/db")
		if err == nil {
			s.Close()
			t.Fatal("Open succeeded")
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error %q shows the password", err)
		}
	})

	t.Run("ErrNoSchema", func(t *testing.T) {
		dbURL := strings.Replace(pgtest.Schema(t), "search_path=", "search_path=missing_", 1)
		s, err := postgres.Open(t.Context(), dbURL)
		if err == nil {
			s.Close()
			t.Fatal("Open succeeded without a schema to create tables in")
		}
		if !strings.Contains(err.Error(), "search_path") {
			t.Errorf("error %q does not point at search_path", err)
		}
	})

	t.Run("ErrUnreachable", func(t *testing.T) {
		start := time.Now()
		s, err := postgres.Open(t.Context(), "postgres://postgres:hunter2@"+closedPort(t)+"/db")
		if err == nil {
			s.Close()
			t.Fatal("Open succeeded")
		}
		if code := apikey.ErrorCode(err); code != apikey.EUNAVAILABLE {
			t.Errorf("Open: %v, want code %s", err, apikey.EUNAVAILABLE)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error %q shows the password", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Open took %v to fail", d)
		}
	})
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestUnavailable checks that every method of a store whose database is
// gone fails with EUNAVAILABLE, the code the API answers with 503.
func TestUnavailable(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	dbURL := pgtest.Database(t)
	s, err := postgres.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := testKey(1)
	if err := s.Update(t.Context(), func(tx apikey.Tx) error { return tx.InsertKey(t.Context(), k) }); err != nil {
		t.Fatal(err)
	}
	// Dropping the database with FORCE ends the store's sessions with
	// 57P01, as a server shutdown does, and new ones cannot start.
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, pgtest.URL(t), "DROP DATABASE "+strings.TrimPrefix(u.Path, "/")+" WITH (FORCE)")

	ctx := t.Context()
	calls := map[string]func() error{
		"Ping":        func() error { return s.Ping(ctx) },
		"Key":         func() error { _, err := s.Key(ctx, k.ID); return err },
		"KeyByHash":   func() error { _, err := s.KeyByHash(ctx, k.Hash); return err },
		"Keys":        func() error { _, err := s.Keys(ctx, apikey.KeyFilter{ProjectID: "p1", Limit: 10}); return err },
		"AuditEvents": func() error { _, err := s.AuditEvents(ctx, apikey.AuditFilter{ProjectID: "p1", Limit: 10}); return err },
		"ScanKeys":    func() error { return s.ScanKeys(ctx, func(*apikey.Key) error { return nil }) },
		"TouchKeys":   func() error { return s.TouchKeys(ctx, []apikey.KeyUse{{KeyID: k.ID, At: time.Now()}}) },
		"Update": func() error {
			return s.Update(ctx, func(tx apikey.Tx) error { _, err := tx.KeyForUpdate(ctx, k.ID); return err })
		},
	}
	for name, call := range calls {
		t.Run("Err"+name, func(t *testing.T) {
			start := time.Now()
			err := call()
			if code := apikey.ErrorCode(err); code != apikey.EUNAVAILABLE {
				t.Errorf("%v, want code %s", err, apikey.EUNAVAILABLE)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v to fail", d)
			}
		})
	}
}

func TestPingClosed(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	s, err := postgres.Open(t.Context(), pgtest.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if code := apikey.ErrorCode(s.Ping(t.Context())); code != apikey.EUNAVAILABLE {
		t.Errorf("Ping on a closed store: code %q, want %s", code, apikey.EUNAVAILABLE)
	}
	if _, err := s.Key(t.Context(), "key_x"); apikey.ErrorCode(err) != apikey.EUNAVAILABLE {
		t.Errorf("Key on a closed store: %v, want code %s", err, apikey.EUNAVAILABLE)
	}
}

// TestErrorHidesHash checks that a conflict on the hash does not echo it:
// PostgreSQL puts the duplicate value in the error's detail.
func TestErrorHidesHash(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
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
	for _, form := range []string{a.Hash.String()[:8], string(a.Hash[:4]), fmt.Sprintf("%x", a.Hash[:4])} {
		if strings.Contains(err.Error(), form) {
			t.Errorf("error %q contains the key hash", err)
		}
	}
}

// TestUpdateRetriesDeadlock makes two transactions lock two keys in
// opposite orders. PostgreSQL breaks the deadlock by rolling one back with
// 40P01; Update must then run that one's fn again, so that both succeed.
func TestUpdateRetriesDeadlock(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	s := open(t)
	a, b := testKey(1), testKey(2)
	for _, k := range []*apikey.Key{a, b} {
		if err := s.Update(t.Context(), func(tx apikey.Tx) error { return tx.InsertKey(t.Context(), k) }); err != nil {
			t.Fatal(err)
		}
	}
	var firstLocks sync.WaitGroup // both hold their first lock
	firstLocks.Add(2)
	var mu sync.Mutex
	calls := 0
	rename := func(first, second *apikey.Key, name string) error {
		once := sync.OnceFunc(firstLocks.Done)
		return s.Update(t.Context(), func(tx apikey.Tx) error {
			mu.Lock()
			calls++
			mu.Unlock()
			k1, err := tx.KeyForUpdate(t.Context(), first.ID)
			if err != nil {
				return err
			}
			once()
			firstLocks.Wait()
			k2, err := tx.KeyForUpdate(t.Context(), second.ID)
			if err != nil {
				return err
			}
			for _, k := range []*apikey.Key{k1, k2} {
				k.Name = name
				if err := tx.UpdateKey(t.Context(), k); err != nil {
					return err
				}
			}
			return nil
		})
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = rename(a, b, "ab") })
	wg.Go(func() { errs[1] = rename(b, a, "ba") })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Update %d: %v", i, err)
		}
	}
	// Usually one retry settles it. On a busy machine the victim's retry
	// can relock its first key before the survivor, woken by the abort,
	// takes it: the same deadlock again, and another retry. Both must
	// succeed all the same.
	if calls < 3 {
		t.Errorf("fn called %d times, want at least 3 (the transaction rolled back by the deadlock run again)", calls)
	}
	ka, kb := mustKey(t, s, a.ID), mustKey(t, s, b.ID)
	if ka.Name != kb.Name || ka.Version != 3 || kb.Version != 3 {
		t.Errorf("keys %q v%d and %q v%d, want one name and version 3 for both", ka.Name, ka.Version, kb.Name, kb.Version)
	}
}

func mustKey(t *testing.T, s apikey.Store, id string) *apikey.Key {
	t.Helper()
	k, err := s.Key(t.Context(), id)
	if err != nil {
		t.Fatalf("Key(%s): %v", id, err)
	}
	return k
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
