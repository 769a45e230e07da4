package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// changes asks s for the keys changed since the position and returns them
// by ID (the last report of each) and the next position.
func changes(t *testing.T, s apikey.Store, since string) (map[string]*apikey.Key, string) {
	t.Helper()
	got := map[string]*apikey.Key{}
	next, err := s.KeyChanges(t.Context(), since, func(k *apikey.Key) error {
		got[k.ID] = k
		return nil
	})
	if err != nil {
		t.Fatalf("KeyChanges(%q): %v", since, err)
	}
	if next == "" {
		t.Fatalf("KeyChanges(%q) returned an empty position", since)
	}
	return got, next
}

// checkChanged fails unless changed holds exactly the keys given, as stored
// now.
func checkChanged(t *testing.T, s apikey.Store, changed map[string]*apikey.Key, want ...*apikey.Key) {
	t.Helper()
	var gotIDs, wantIDs []string
	for id := range changed {
		gotIDs = append(gotIDs, id)
	}
	for _, k := range want {
		wantIDs = append(wantIDs, k.ID)
	}
	slices.Sort(gotIDs)
	slices.Sort(wantIDs)
	checkIDs(t, gotIDs, wantIDs)
	for _, k := range want {
		if got, ok := changed[k.ID]; ok {
			checkEqual(t, got, mustKey(t, s, k.ID))
		}
	}
}

func testKeyChanges(t *testing.T, s apikey.Store) {
	old := fullKey(t, "p1")
	insert(t, s, old)

	// An empty position reports nothing, whatever the store holds.
	p0, err := s.KeyChanges(t.Context(), "", func(k *apikey.Key) error {
		t.Errorf("KeyChanges from the empty position reported %s", k.ID)
		return nil
	})
	if err != nil || p0 == "" {
		t.Fatalf("KeyChanges(\"\") = %q, %v", p0, err)
	}
	got, p1 := changes(t, s, p0)
	checkChanged(t, s, got)

	a, b, c := newKey(t, "p1"), fullKey(t, "p2"), newKey(t, "p1")
	insert(t, s, a, b)
	insert(t, s, c)
	got, p2 := changes(t, s, p1)
	checkChanged(t, s, got, a, b, c)
	// Asking again from an older position reports the same keys again.
	again, _ := changes(t, s, p1)
	checkChanged(t, s, again, a, b, c)

	// An update is reported with the key's new version; last uses, a
	// rolled back update and unchanged keys are not.
	cur := mustKey(t, s, a.ID)
	cur.Name, cur.RevokedAt, cur.UpdatedAt = "revoked", t0.Add(time.Minute), t0.Add(time.Minute)
	if err := s.Update(t.Context(), func(tx apikey.Tx) error { return tx.UpdateKey(t.Context(), cur) }); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchKeys(t.Context(), []apikey.KeyUse{use(b, t0.Add(time.Hour)), use(old, t0.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	err = s.Update(t.Context(), func(tx apikey.Tx) error {
		k, err := tx.KeyForUpdate(t.Context(), c.ID)
		if err != nil {
			return err
		}
		k.Name = "never"
		if err := tx.UpdateKey(t.Context(), k); err != nil {
			return err
		}
		return errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Fatalf("Update = %v, want the error of fn", err)
	}
	got, p3 := changes(t, s, p2)
	checkChanged(t, s, got, a)
	if k := got[a.ID]; k != nil && (k.Version != 2 || k.Name != "revoked") {
		t.Errorf("reported version %d name %q, want 2 %q", k.Version, k.Name, "revoked")
	}
	got, _ = changes(t, s, p3)
	checkChanged(t, s, got)

	t.Run("ErrStops", func(t *testing.T) {
		calls := 0
		_, err := s.KeyChanges(t.Context(), p1, func(*apikey.Key) error {
			calls++
			return errAbort
		})
		if !errors.Is(err, errAbort) || calls != 1 {
			t.Errorf("KeyChanges = %v after %d calls, want the error of fn after 1", err, calls)
		}
	})
	t.Run("ErrInvalidPosition", func(t *testing.T) {
		for _, since := range []string{"not a position", "-1", "3:1:2"} {
			_, err := s.KeyChanges(t.Context(), since, func(*apikey.Key) error { return nil })
			if apikey.ErrorCode(err) != apikey.EINVALID {
				t.Errorf("KeyChanges(%q) = %v, want EINVALID", since, err)
			}
		}
	})
}

// testKeyChangesConcurrent takes a position while a write transaction is
// open: its key must be reported from that position once it commits,
// however late (a position is not a point in time), and so must a key
// written after it.
func testKeyChangesConcurrent(t *testing.T, s apikey.Store) {
	slow, quick := newKey(t, "p1"), newKey(t, "p1")
	written, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Update(t.Context(), func(tx apikey.Tx) error {
			if err := tx.InsertKey(t.Context(), slow); err != nil {
				return err
			}
			written <- struct{}{}
			<-release
			return nil
		})
	}()
	select {
	case <-written:
	case err := <-done:
		t.Fatalf("Update: %v", err)
	}
	_, p := changes(t, s, "")
	got, _ := changes(t, s, p)
	checkChanged(t, s, got) // not committed yet
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Update: %v", err)
	}
	insert(t, s, quick)
	got, _ = changes(t, s, p)
	checkChanged(t, s, got, slow, quick)
}
