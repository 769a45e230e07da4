package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

func testInsertKey(t *testing.T, s apikey.Store) {
	berlin := time.FixedZone("CET", 3600)
	tests := []struct {
		name string
		key  func(*testing.T) *apikey.Key
	}{
		{"OK", func(t *testing.T) *apikey.Key { return newKey(t, "p1") }},
		{"OKEveryField", func(t *testing.T) *apikey.Key { return fullKey(t, "p1") }},
		{"OKNilScopes", func(t *testing.T) *apikey.Key {
			k := newKey(t, "p1")
			k.Scopes = nil
			return k
		}},
		{"OKOtherTimeZone", func(t *testing.T) *apikey.Key { // read back in UTC
			k := fullKey(t, "p1")
			k.CreatedAt = k.CreatedAt.In(berlin)
			k.ExpiresAt = k.ExpiresAt.In(berlin)
			return k
		}},
		{"OKVersionIgnored", func(t *testing.T) *apikey.Key {
			k := newKey(t, "p1")
			k.Version = 7
			return k
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := tt.key(t)
			want := stored(k)
			want.Version = 1
			insert(t, s, k)
			if k.Version != 1 {
				t.Errorf("InsertKey left Version %d, want 1", k.Version)
			}

			checkEqual(t, mustKey(t, s, k.ID), want)
			byHash, err := s.KeyByHash(t.Context(), k.Hash)
			if err != nil {
				t.Fatalf("KeyByHash: %v", err)
			}
			checkEqual(t, byHash, want)
			err = s.Update(t.Context(), func(tx apikey.Tx) error {
				locked, err := tx.KeyForUpdate(t.Context(), k.ID)
				if err != nil {
					return err
				}
				checkEqual(t, locked, want)
				return nil
			})
			if err != nil {
				t.Fatalf("KeyForUpdate: %v", err)
			}
		})
	}

	t.Run("OKNanoseconds", func(t *testing.T) {
		k := newKey(t, "p1")
		k.CreatedAt = t0.Add(999 * time.Nanosecond)
		insert(t, s, k)
		got := mustKey(t, s, k.ID).CreatedAt
		if got.Location() != time.UTC || got.Nanosecond()%1000 != 0 || got.Sub(k.CreatedAt).Abs() >= time.Microsecond {
			t.Errorf("created_at %v stored as %v, want it in UTC within 1µs", k.CreatedAt, got)
		}
	})
}

func testInsertKeyConflict(t *testing.T, s apikey.Store) {
	first := fullKey(t, "p1")
	insert(t, s, first)
	want := mustKey(t, s, first.ID)

	tests := []struct {
		name string
		key  func(*apikey.Key)
	}{
		{"ErrSameID", func(k *apikey.Key) { k.ID = first.ID }},
		{"ErrSameHash", func(k *apikey.Key) { k.Hash = first.Hash }},
		{"ErrSameIDOtherProject", func(k *apikey.Key) { k.ID = first.ID; k.ProjectID = "p2" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newKey(t, "p1")
			tt.key(k)
			err := s.Update(t.Context(), func(tx apikey.Tx) error { return tx.InsertKey(t.Context(), k) })
			checkCode(t, err, apikey.ECONFLICT)
			checkEqual(t, mustKey(t, s, first.ID), want)
			if k.ID != first.ID {
				_, err := s.Key(t.Context(), k.ID)
				checkCode(t, err, apikey.ENOTFOUND)
			}
		})
	}
}

func testNotFound(t *testing.T, s apikey.Store) {
	k := newKey(t, "p1")
	insert(t, s, k)
	unknown := newKey(t, "p1")

	tests := []struct {
		name string
		call func() error
	}{
		{"ErrKey", func() error { _, err := s.Key(t.Context(), unknown.ID); return err }},
		{"ErrKeyEmptyID", func() error { _, err := s.Key(t.Context(), ""); return err }},
		{"ErrKeyByHash", func() error { _, err := s.KeyByHash(t.Context(), unknown.Hash); return err }},
		{"ErrKeyForUpdate", func() error {
			return s.Update(t.Context(), func(tx apikey.Tx) error {
				_, err := tx.KeyForUpdate(t.Context(), unknown.ID)
				return err
			})
		}},
		{"ErrUpdateKey", func() error {
			return s.Update(t.Context(), func(tx apikey.Tx) error {
				u := unknown.Clone()
				u.Version = 1
				return tx.UpdateKey(t.Context(), u)
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkCode(t, tt.call(), apikey.ENOTFOUND)
		})
	}
}

// changeAll sets every mutable field of k to a new value, and the fields
// UpdateKey must not write too.
func changeAll(k *apikey.Key, n int) {
	d := time.Duration(n) * time.Hour
	k.Name = fmt.Sprintf("renamed %d", n)
	k.Scopes = []string{fmt.Sprintf("scope:%d", n), "*"}
	k.ExpiresAt = t0.Add(100*time.Hour + d)
	k.RevokedAt = t0.Add(200*time.Hour + d)
	k.ReplacedByKeyID = fmt.Sprintf("key_next%d", n)
	k.GraceExpiresAt = t0.Add(300*time.Hour + d)
	k.ReplacesKeyID = fmt.Sprintf("key_prev%d", n)
	k.RotationIntervalDays = 7 + n
	k.NextRotationAt = t0.Add(400*time.Hour + d)
	k.RotationWebhookURL = fmt.Sprintf("https://hooks.example.com/%d", n)
	k.WebhookSecretSealed = []byte{byte(n), 42}
	k.UpdatedAt = t0.Add(500*time.Hour + d)

	k.ProjectID = "moved"
	k.EnvironmentID = "moved"
	k.KeyPrefix = "moved"
	k.Hash = apikey.HashKey(k.Name)
	k.CreatedAt = t0.Add(-d)
	k.LastUsedAt = t0.Add(600*time.Hour + d)
}

// clearAll unsets every mutable field that may be unset.
func clearAll(k *apikey.Key, _ int) {
	k.Scopes = nil
	k.ExpiresAt = time.Time{}
	k.RevokedAt = time.Time{}
	k.ReplacedByKeyID = ""
	k.GraceExpiresAt = time.Time{}
	k.ReplacesKeyID = ""
	k.RotationIntervalDays = 0
	k.NextRotationAt = time.Time{}
	k.RotationWebhookURL = ""
	k.WebhookSecretSealed = nil
}

func testUpdateKey(t *testing.T, s apikey.Store) {
	tests := []struct {
		name   string
		key    func(*testing.T, string) *apikey.Key
		change func(*apikey.Key, int)
	}{
		{"OKSetEverything", newKey, changeAll},
		{"OKChangeEverything", fullKey, changeAll},
		{"OKClearEverything", fullKey, clearAll},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := tt.key(t, "p1")
			insert(t, s, k)
			before := mustKey(t, s, k.ID)
			for n := 1; n <= 2; n++ {
				var changed *apikey.Key
				err := s.Update(t.Context(), func(tx apikey.Tx) error {
					var err error
					if changed, err = tx.KeyForUpdate(t.Context(), k.ID); err != nil {
						return err
					}
					tt.change(changed, n)
					return tx.UpdateKey(t.Context(), changed)
				})
				if err != nil {
					t.Fatalf("update %d: %v", n, err)
				}
				if changed.Version != int64(n+1) {
					t.Errorf("UpdateKey left Version %d, want %d", changed.Version, n+1)
				}
				want := stored(changed)
				want.ProjectID, want.EnvironmentID, want.KeyPrefix = before.ProjectID, before.EnvironmentID, before.KeyPrefix
				want.Hash, want.CreatedAt, want.LastUsedAt = before.Hash, before.CreatedAt, before.LastUsedAt
				checkEqual(t, mustKey(t, s, k.ID), want)
				byHash, err := s.KeyByHash(t.Context(), before.Hash)
				if err != nil {
					t.Fatalf("KeyByHash: %v", err)
				}
				checkEqual(t, byHash, want)
			}
		})
	}
}

func testUpdateKeyStale(t *testing.T, s apikey.Store) {
	k := newKey(t, "p1")
	insert(t, s, k)
	stale := mustKey(t, s, k.ID)
	fresh := stale.Clone()
	fresh.Name = "fresh"
	if err := s.Update(t.Context(), func(tx apikey.Tx) error { return tx.UpdateKey(t.Context(), fresh) }); err != nil {
		t.Fatalf("UpdateKey: %v", err)
	}
	want := mustKey(t, s, k.ID)

	stale.Name = "stale"
	err := s.Update(t.Context(), func(tx apikey.Tx) error { return tx.UpdateKey(t.Context(), stale) })
	checkCode(t, err, apikey.ECONFLICT)
	checkEqual(t, mustKey(t, s, k.ID), want)
	if want.Version != 2 || want.Name != "fresh" {
		t.Errorf("stored version %d name %q, want 2 %q", want.Version, want.Name, "fresh")
	}
}

func testUpdateRollback(t *testing.T, s apikey.Store) {
	existing := newKey(t, "p1")
	insert(t, s, existing)
	want := mustKey(t, s, existing.ID)

	added := newKey(t, "p1")
	err := s.Update(t.Context(), func(tx apikey.Tx) error {
		if err := tx.InsertKey(t.Context(), added); err != nil {
			return err
		}
		k, err := tx.KeyForUpdate(t.Context(), existing.ID)
		if err != nil {
			return err
		}
		k.Name = "changed"
		k.RevokedAt = t0
		if err := tx.UpdateKey(t.Context(), k); err != nil {
			return err
		}
		if err := tx.InsertAuditEvent(t.Context(), newEvent(t, k, apikey.ActionRevoked, t0)); err != nil {
			return err
		}
		return fmt.Errorf("give up: %w", errAbort)
	})
	if !errors.Is(err, errAbort) {
		t.Fatalf("Update returned %v, want the error of fn", err)
	}

	checkEqual(t, mustKey(t, s, existing.ID), want)
	if _, err := s.Key(t.Context(), added.ID); apikey.ErrorCode(err) != apikey.ENOTFOUND {
		t.Errorf("key inserted in a rolled back transaction: Key = %v", err)
	}
	if _, err := s.KeyByHash(t.Context(), added.Hash); apikey.ErrorCode(err) != apikey.ENOTFOUND {
		t.Errorf("key inserted in a rolled back transaction: KeyByHash = %v", err)
	}
	events, err := s.AuditEvents(t.Context(), apikey.AuditFilter{ProjectID: "p1", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 0 {
		t.Errorf("%d audit events survive a rollback", len(events))
	}
	// The store is still usable.
	insert(t, s, added)
}

// testUpdateConcurrent races 16 rotations of one key, several times over:
// exactly one of each race may replace the key.
func testUpdateConcurrent(t *testing.T, s apikey.Store) {
	for range 5 {
		k := newKey(t, "p1")
		insert(t, s, k)

		const n = 16
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				errs[i] = s.Update(t.Context(), func(tx apikey.Tx) error {
					cur, err := tx.KeyForUpdate(t.Context(), k.ID)
					if err != nil {
						return err
					}
					if cur.ReplacedByKeyID != "" {
						return apikey.Errorf(apikey.ECONFLICT, "already replaced")
					}
					cur.ReplacedByKeyID = fmt.Sprintf("key_winner%d", i)
					cur.GraceExpiresAt = t0.Add(time.Hour)
					return tx.UpdateKey(t.Context(), cur)
				})
			})
		}
		wg.Wait()

		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("both %d and %d replaced the key", winner, i)
			case err == nil:
				winner = i
			default:
				checkCode(t, err, apikey.ECONFLICT)
			}
		}
		if winner < 0 {
			t.Fatal("no update succeeded")
		}
		got := mustKey(t, s, k.ID)
		if want := fmt.Sprintf("key_winner%d", winner); got.ReplacedByKeyID != want || got.Version != 2 {
			t.Errorf("stored replaced_by %q version %d, want %q 2", got.ReplacedByKeyID, got.Version, want)
		}
	}
}

func use(k *apikey.Key, at time.Time) apikey.KeyUse { return apikey.KeyUse{KeyID: k.ID, At: at} }

func testTouchKeys(t *testing.T, s apikey.Store) {
	a, b, c := newKey(t, "p1"), newKey(t, "p1"), newKey(t, "p1")
	c.LastUsedAt = t0.Add(time.Hour)
	insert(t, s, a, b, c)
	unknown := newKey(t, "p1")

	tests := []struct {
		name string
		uses []apikey.KeyUse
		want map[*apikey.Key]time.Time
	}{
		{"OKNone", nil, map[*apikey.Key]time.Time{a: {}, b: {}, c: t0.Add(time.Hour)}},
		{"OKBatch", []apikey.KeyUse{use(a, t0.Add(time.Minute)), use(b, t0.Add(2*time.Minute)), use(c, t0.Add(2*time.Hour))},
			map[*apikey.Key]time.Time{a: t0.Add(time.Minute), b: t0.Add(2 * time.Minute), c: t0.Add(2 * time.Hour)}},
		{"OKOlderIgnored", []apikey.KeyUse{use(a, t0), use(c, t0.Add(time.Hour))},
			map[*apikey.Key]time.Time{a: t0.Add(time.Minute), c: t0.Add(2 * time.Hour)}},
		{"OKUnknownIgnored", []apikey.KeyUse{use(unknown, t0), use(b, t0.Add(3*time.Minute))},
			map[*apikey.Key]time.Time{b: t0.Add(3 * time.Minute)}},
		{"OKSameKeyTwice", []apikey.KeyUse{use(a, t0.Add(5*time.Minute)), use(a, t0.Add(4*time.Minute))},
			map[*apikey.Key]time.Time{a: t0.Add(5 * time.Minute)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.TouchKeys(t.Context(), tt.uses); err != nil {
				t.Fatalf("TouchKeys: %v", err)
			}
			for k, want := range tt.want {
				got := mustKey(t, s, k.ID)
				checkEqual(t, got.LastUsedAt, want)
				if got.Version != 1 {
					t.Errorf("TouchKeys changed Version to %d", got.Version)
				}
			}
			if _, err := s.Key(t.Context(), unknown.ID); apikey.ErrorCode(err) != apikey.ENOTFOUND {
				t.Errorf("TouchKeys created a key: %v", err)
			}
		})
	}
}

func testScanKeys(t *testing.T, s apikey.Store) {
	const n = 2500 // more than one page of any sensible page size
	keys := make([]*apikey.Key, n)
	for i := range keys {
		keys[i] = newKey(t, fmt.Sprintf("p%d", i%3))
	}
	keys[n/2] = fullKey(t, "p1")
	insert(t, s, keys...)
	byID := make(map[string]*apikey.Key, n)
	for _, k := range keys {
		byID[k.ID] = stored(k)
	}

	t.Run("OK", func(t *testing.T) {
		// In any order, but never two calls at once.
		var busy atomic.Bool
		seen := make(map[string]bool, n)
		err := s.ScanKeys(t.Context(), func(k *apikey.Key) error {
			if !busy.CompareAndSwap(false, true) {
				t.Fatal("fn called while another call was under way")
			}
			defer busy.Store(false)
			if seen[k.ID] {
				t.Fatalf("%s visited twice", k.ID)
			}
			seen[k.ID] = true
			want, ok := byID[k.ID]
			if !ok {
				t.Fatalf("unknown key %s", k.ID)
			}
			checkEqual(t, k, want)
			return nil
		})
		if err != nil {
			t.Fatalf("ScanKeys: %v", err)
		}
		if len(seen) != n {
			t.Errorf("visited %d keys, want %d", len(seen), n)
		}
	})
	t.Run("ErrStops", func(t *testing.T) {
		calls := 0
		err := s.ScanKeys(t.Context(), func(k *apikey.Key) error {
			calls++
			if calls == 1500 {
				return fmt.Errorf("visit %s: %w", k.ID, errAbort)
			}
			return nil
		})
		if !errors.Is(err, errAbort) {
			t.Errorf("ScanKeys returned %v, want the error of fn", err)
		}
		if calls != 1500 {
			t.Errorf("fn called %d times, want the scan to stop after 1500", calls)
		}
	})
}
