package storetest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// newDelivery returns a pending delivery of k's rotation to replacement,
// due at t0.
func newDelivery(t *testing.T, k, replacement *apikey.Key) *apikey.Delivery {
	t.Helper()
	id, err := apikey.NewID(apikey.IDKindDelivery)
	if err != nil {
		t.Fatal(err)
	}
	return &apikey.Delivery{
		ID:               id,
		KeyID:            k.ID,
		ReplacementKeyID: replacement.ID,
		State:            apikey.DeliveryPending,
		PayloadSealed:    []byte{1, 0, 0xfe, 0xff, 7},
		NextAttemptAt:    t0,
		CreatedAt:        t0,
		UpdatedAt:        t0,
	}
}

// insertDeliveries stores deliveries in one transaction.
func insertDeliveries(t *testing.T, s apikey.Store, ds ...*apikey.Delivery) {
	t.Helper()
	err := s.Update(t.Context(), func(tx apikey.Tx) error {
		for _, d := range ds {
			if err := tx.InsertDelivery(t.Context(), d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("insert deliveries: %v", err)
	}
}

// mustDelivery reads a delivery that must exist.
func mustDelivery(t *testing.T, s apikey.Store, id string) *apikey.Delivery {
	t.Helper()
	d, err := s.Delivery(t.Context(), id)
	if err != nil {
		t.Fatalf("Delivery(%s): %v", id, err)
	}
	return d
}

// storedDelivery returns d as a store returns it: a copy.
func storedDelivery(d *apikey.Delivery) *apikey.Delivery {
	c := *d
	c.PayloadSealed = slices.Clone(d.PayloadSealed)
	return &c
}

func deliveryIDs(ds []*apikey.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// keyPair stores a key and a replacement for it.
func keyPair(t *testing.T, s apikey.Store) (k, replacement *apikey.Key) {
	t.Helper()
	k, replacement = newKey(t, "p1"), newKey(t, "p1")
	replacement.ReplacesKeyID = k.ID
	insert(t, s, k, replacement)
	return k, replacement
}

func testInsertDelivery(t *testing.T, s apikey.Store) {
	tests := []struct {
		name     string
		delivery func(d *apikey.Delivery)
	}{
		{"OK", func(*apikey.Delivery) {}},
		{"OKEveryField", func(d *apikey.Delivery) {
			d.Attempts = 3
			d.NextAttemptAt = t0.Add(time.Minute)
			d.LeasedUntil = t0.Add(30 * time.Second)
			d.LastError = "status 503"
			d.UpdatedAt = t0.Add(time.Second)
		}},
		{"OKFinished", func(d *apikey.Delivery) {
			d.State = apikey.DeliveryDelivered
			d.PayloadSealed = nil
		}},
		{"OKOtherTimeZone", func(d *apikey.Delivery) {
			d.NextAttemptAt = d.NextAttemptAt.In(time.FixedZone("CET", 3600))
			d.CreatedAt = d.CreatedAt.In(time.FixedZone("CET", 3600))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, nk := keyPair(t, s)
			d := newDelivery(t, k, nk)
			tt.delivery(d)
			want := storedDelivery(d)
			insertDeliveries(t, s, d)

			checkEqual(t, mustDelivery(t, s, d.ID), want)
			err := s.Update(t.Context(), func(tx apikey.Tx) error {
				locked, err := tx.DeliveryForUpdate(t.Context(), d.ID)
				if err != nil {
					return err
				}
				checkEqual(t, locked, want)
				return nil
			})
			if err != nil {
				t.Fatalf("DeliveryForUpdate: %v", err)
			}
		})
	}
}

func testInsertDeliveryConflict(t *testing.T, s apikey.Store) {
	k, nk := keyPair(t, s)
	first := newDelivery(t, k, nk)
	insertDeliveries(t, s, first)
	want := mustDelivery(t, s, first.ID)

	t.Run("ErrSameID", func(t *testing.T) {
		other, onk := keyPair(t, s)
		d := newDelivery(t, other, onk)
		d.ID = first.ID
		err := s.Update(t.Context(), func(tx apikey.Tx) error { return tx.InsertDelivery(t.Context(), d) })
		checkCode(t, err, apikey.ECONFLICT)
	})
	t.Run("ErrSecondPending", func(t *testing.T) {
		d := newDelivery(t, k, nk)
		err := s.Update(t.Context(), func(tx apikey.Tx) error { return tx.InsertDelivery(t.Context(), d) })
		checkCode(t, err, apikey.ECONFLICT)
		_, err = s.Delivery(t.Context(), d.ID)
		checkCode(t, err, apikey.ENOTFOUND)
	})
	t.Run("OKSecondFinished", func(t *testing.T) {
		d := newDelivery(t, k, nk)
		d.State = apikey.DeliveryAbandoned
		d.PayloadSealed = nil
		insertDeliveries(t, s, d)
	})
	checkEqual(t, mustDelivery(t, s, first.ID), want)
}

func testDeliveryNotFound(t *testing.T, s apikey.Store) {
	k, nk := keyPair(t, s)
	insertDeliveries(t, s, newDelivery(t, k, nk))
	unknown := newDelivery(t, k, nk)
	tests := []struct {
		name string
		call func() error
	}{
		{"ErrDelivery", func() error { _, err := s.Delivery(t.Context(), unknown.ID); return err }},
		{"ErrDeliveryForUpdate", func() error {
			return s.Update(t.Context(), func(tx apikey.Tx) error {
				_, err := tx.DeliveryForUpdate(t.Context(), unknown.ID)
				return err
			})
		}},
		{"ErrUpdateDelivery", func() error {
			return s.Update(t.Context(), func(tx apikey.Tx) error { return tx.UpdateDelivery(t.Context(), unknown) })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkCode(t, tt.call(), apikey.ENOTFOUND) })
	}
}

func testUpdateDelivery(t *testing.T, s apikey.Store) {
	tests := []struct {
		name   string
		change func(d *apikey.Delivery)
	}{
		{"OKLease", func(d *apikey.Delivery) {
			d.Attempts++
			d.LeasedUntil = t0.Add(20 * time.Second)
			d.UpdatedAt = t0.Add(time.Second)
		}},
		{"OKRetry", func(d *apikey.Delivery) {
			d.Attempts = 2
			d.LeasedUntil = time.Time{}
			d.NextAttemptAt = t0.Add(10 * time.Second)
			d.LastError = "status 500"
			d.UpdatedAt = t0.Add(2 * time.Second)
		}},
		{"OKFinish", func(d *apikey.Delivery) {
			d.State = apikey.DeliveryDelivered
			d.PayloadSealed = nil
			d.LeasedUntil = time.Time{}
			d.LastError = ""
			d.UpdatedAt = t0.Add(3 * time.Second)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, nk := keyPair(t, s)
			d := newDelivery(t, k, nk)
			d.LeasedUntil = t0.Add(time.Second)
			d.LastError = "before"
			insertDeliveries(t, s, d)
			before := mustDelivery(t, s, d.ID)

			var changed *apikey.Delivery
			err := s.Update(t.Context(), func(tx apikey.Tx) error {
				var err error
				if changed, err = tx.DeliveryForUpdate(t.Context(), d.ID); err != nil {
					return err
				}
				tt.change(changed)
				want := *changed
				// Fields that never change are not written.
				changed.KeyID, changed.ReplacementKeyID, changed.CreatedAt = nk.ID, k.ID, t0.Add(time.Hour)
				err = tx.UpdateDelivery(t.Context(), changed)
				*changed = want
				return err
			})
			if err != nil {
				t.Fatalf("UpdateDelivery: %v", err)
			}
			want := storedDelivery(changed)
			want.KeyID, want.ReplacementKeyID, want.CreatedAt = before.KeyID, before.ReplacementKeyID, before.CreatedAt
			checkEqual(t, mustDelivery(t, s, d.ID), want)
		})
	}

	t.Run("ErrSecondPending", func(t *testing.T) {
		k, nk := keyPair(t, s)
		done := newDelivery(t, k, nk)
		done.State = apikey.DeliveryAbandoned
		done.PayloadSealed = nil
		pending := newDelivery(t, k, nk)
		insertDeliveries(t, s, done, pending)
		err := s.Update(t.Context(), func(tx apikey.Tx) error {
			d, err := tx.DeliveryForUpdate(t.Context(), done.ID)
			if err != nil {
				return err
			}
			d.State = apikey.DeliveryPending
			return tx.UpdateDelivery(t.Context(), d)
		})
		checkCode(t, err, apikey.ECONFLICT)
		if got := mustDelivery(t, s, done.ID).State; got != apikey.DeliveryAbandoned {
			t.Errorf("state %q after a refused update", got)
		}
	})

	t.Run("ErrRollback", func(t *testing.T) {
		k, nk := keyPair(t, s)
		d := newDelivery(t, k, nk)
		kept := newDelivery(t, nk, k)
		insertDeliveries(t, s, kept)
		err := s.Update(t.Context(), func(tx apikey.Tx) error {
			if err := tx.InsertDelivery(t.Context(), d); err != nil {
				return err
			}
			locked, err := tx.DeliveryForUpdate(t.Context(), kept.ID)
			if err != nil {
				return err
			}
			locked.Attempts = 9
			if err := tx.UpdateDelivery(t.Context(), locked); err != nil {
				return err
			}
			return errAbort
		})
		if !errors.Is(err, errAbort) {
			t.Fatalf("Update returned %v, want the error of fn", err)
		}
		_, err = s.Delivery(t.Context(), d.ID)
		checkCode(t, err, apikey.ENOTFOUND)
		if got := mustDelivery(t, s, kept.ID).Attempts; got != 0 {
			t.Errorf("attempts %d survive a rollback", got)
		}
	})
}

// dueKey returns a key whose rotation is due at the given instant.
func dueKey(t *testing.T, at time.Time) *apikey.Key {
	t.Helper()
	k := newKey(t, "p1")
	k.RotationIntervalDays = 30
	k.NextRotationAt = at
	k.RotationWebhookURL = "https://hooks.example.com/r"
	k.WebhookSecretSealed = []byte{9, 9}
	return k
}

// claimDue takes the due keys in a transaction as the scheduler does:
// each is made no longer due and gets a pending delivery.
func claimDue(t *testing.T, s apikey.Store, now time.Time, limit int) ([]string, error) {
	var claimed []string
	err := s.Update(t.Context(), func(tx apikey.Tx) error {
		claimed = claimed[:0]
		keys, err := tx.DueKeysForUpdate(t.Context(), now, limit)
		if err != nil {
			return err
		}
		for _, k := range keys {
			k.NextRotationAt = time.Time{}
			if err := tx.UpdateKey(t.Context(), k); err != nil {
				return err
			}
			d := newDelivery(t, k, k)
			d.NextAttemptAt = now
			if err := tx.InsertDelivery(t.Context(), d); err != nil {
				return err
			}
			claimed = append(claimed, k.ID)
		}
		return nil
	})
	return claimed, err
}

func testDueKeys(t *testing.T, s apikey.Store) {
	now := t0.Add(time.Hour)
	var due []*apikey.Key
	for i := range 5 { // due at different times, two at the same instant
		due = append(due, dueKey(t, now.Add(-time.Duration(i/2)*time.Minute)))
	}
	due = append(due, dueKey(t, now)) // exactly now counts
	soon := dueKey(t, now.Add(time.Microsecond))
	revoked := dueKey(t, now)
	revoked.RevokedAt = t0
	replaced := dueKey(t, now)
	replaced.ReplacedByKeyID, replaced.GraceExpiresAt = "key_next", now.Add(time.Hour)
	expired := dueKey(t, now)
	expired.ExpiresAt = now
	noInterval := dueKey(t, now)
	noInterval.RotationIntervalDays = 0
	noURL := dueKey(t, now)
	noURL.RotationWebhookURL = ""
	disabled := dueKey(t, now) // SPEC §9: the scheduler leaves disabled keys alone
	disabled.DisabledAt = t0
	unscheduled := dueKey(t, time.Time{})
	inFlight := dueKey(t, now.Add(-time.Hour))
	finished := dueKey(t, now.Add(-30*time.Minute)) // an earlier rotation ended; due again
	due = append(due, finished)
	insert(t, s, append([]*apikey.Key{soon, revoked, replaced, expired, noInterval, noURL, disabled, unscheduled, inFlight}, due...)...)
	pending := newDelivery(t, inFlight, inFlight)
	old := newDelivery(t, finished, finished)
	old.State = apikey.DeliveryDelivered
	insertDeliveries(t, s, pending, old)

	slices.SortFunc(due, func(a, b *apikey.Key) int {
		return cmp.Or(a.NextRotationAt.Compare(b.NextRotationAt), cmp.Compare(a.ID, b.ID))
	})
	want := ids(due)
	byID := map[string]*apikey.Key{}
	for _, k := range due {
		byID[k.ID] = stored(k)
		byID[k.ID].Version = 1
	}
	for _, limit := range []int{1, 3, 100} {
		t.Run(fmt.Sprintf("OKLimit%d", limit), func(t *testing.T) {
			err := s.Update(t.Context(), func(tx apikey.Tx) error {
				keys, err := tx.DueKeysForUpdate(t.Context(), now, limit)
				if err != nil {
					return err
				}
				checkIDs(t, ids(keys), want[:min(limit, len(want))])
				for _, k := range keys {
					checkEqual(t, k, byID[k.ID])
				}
				return errAbort // read only
			})
			if !errors.Is(err, errAbort) {
				t.Fatalf("Update: %v", err)
			}
		})
	}
	t.Run("OKNoneBefore", func(t *testing.T) {
		got, err := claimDue(t, s, t0, 100)
		if err != nil {
			t.Fatal(err)
		}
		checkIDs(t, got, nil)
	})
	t.Run("OKClaimedOnce", func(t *testing.T) {
		var all []string
		for {
			got, err := claimDue(t, s, now, 2)
			if err != nil {
				t.Fatalf("claim: %v", err)
			}
			if len(got) == 0 {
				break
			}
			all = append(all, got...)
		}
		checkIDs(t, all, want)
	})
}

// testDueKeysConcurrent has several schedulers claim the same due keys at
// once: each key must be claimed exactly once.
func testDueKeysConcurrent(t *testing.T, s apikey.Store) {
	const n, workers = 60, 8
	keys := make([]*apikey.Key, n)
	for i := range keys {
		keys[i] = dueKey(t, t0.Add(-time.Duration(i)*time.Second))
	}
	insert(t, s, keys...)
	claims := make([][]string, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				got, err := claimDue(t, s, t0, 3)
				if err != nil {
					errs[w] = err
					return
				}
				if len(got) == 0 {
					return
				}
				claims[w] = append(claims[w], got...)
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for w := range workers {
		if errs[w] != nil {
			t.Errorf("worker %d: %v", w, errs[w])
		}
		for _, id := range claims[w] {
			seen[id]++
		}
	}
	for _, k := range keys {
		if seen[k.ID] != 1 {
			t.Errorf("key %s claimed %d times", k.ID, seen[k.ID])
		}
	}
}

func testDueDeliveries(t *testing.T, s apikey.Store) {
	now := t0.Add(time.Hour)
	mk := func(change func(d *apikey.Delivery)) *apikey.Delivery {
		k, nk := keyPair(t, s)
		d := newDelivery(t, k, nk)
		change(d)
		return d
	}
	var due []*apikey.Delivery
	for i := range 4 {
		due = append(due, mk(func(d *apikey.Delivery) { d.NextAttemptAt = now.Add(-time.Duration(i/2) * time.Minute) }))
	}
	due = append(due,
		mk(func(d *apikey.Delivery) { d.NextAttemptAt = now }),
		mk(func(d *apikey.Delivery) { d.NextAttemptAt, d.LeasedUntil = t0, now }), // lease ends now
		mk(func(d *apikey.Delivery) { d.NextAttemptAt, d.LeasedUntil = t0, t0 }),
	)
	others := []*apikey.Delivery{
		mk(func(d *apikey.Delivery) { d.NextAttemptAt = now.Add(time.Microsecond) }),
		mk(func(d *apikey.Delivery) { d.NextAttemptAt, d.LeasedUntil = t0, now.Add(time.Second) }),
		mk(func(d *apikey.Delivery) { d.State, d.PayloadSealed = apikey.DeliveryDelivered, nil }),
		mk(func(d *apikey.Delivery) { d.State, d.PayloadSealed = apikey.DeliveryAbandoned, nil }),
	}
	insertDeliveries(t, s, append(others, due...)...)
	slices.SortFunc(due, func(a, b *apikey.Delivery) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), cmp.Compare(a.ID, b.ID))
	})
	byID := map[string]*apikey.Delivery{}
	for _, d := range due {
		byID[d.ID] = storedDelivery(d)
	}
	want := deliveryIDs(due)
	for _, limit := range []int{1, 4, 100} {
		t.Run(fmt.Sprintf("OKLimit%d", limit), func(t *testing.T) {
			err := s.Update(t.Context(), func(tx apikey.Tx) error {
				ds, err := tx.DueDeliveriesForUpdate(t.Context(), now, limit)
				if err != nil {
					return err
				}
				checkIDs(t, deliveryIDs(ds), want[:min(limit, len(want))])
				for _, d := range ds {
					checkEqual(t, d, byID[d.ID])
				}
				return errAbort
			})
			if !errors.Is(err, errAbort) {
				t.Fatalf("Update: %v", err)
			}
		})
	}

	t.Run("OKNextDeliveryAt", func(t *testing.T) {
		// The earliest pending one is due at t0 (lease ended at t0).
		at, err := s.NextDeliveryAt(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		checkEqual(t, at, t0)
	})
}

func testNextDeliveryAt(t *testing.T, s apikey.Store) {
	check := func(want time.Time) {
		t.Helper()
		at, err := s.NextDeliveryAt(t.Context())
		if err != nil {
			t.Fatalf("NextDeliveryAt: %v", err)
		}
		if !at.Equal(want) || (!at.IsZero() && at.Location() != time.UTC) {
			t.Errorf("NextDeliveryAt = %v, want %v", at, want)
		}
	}
	check(time.Time{})
	k, nk := keyPair(t, s)
	done := newDelivery(t, k, nk)
	done.State, done.NextAttemptAt = apikey.DeliveryDelivered, t0.Add(-time.Hour)
	insertDeliveries(t, s, done)
	check(time.Time{})

	leased := newDelivery(t, k, nk)
	leased.NextAttemptAt, leased.LeasedUntil = t0.Add(-time.Minute), t0.Add(time.Minute)
	insertDeliveries(t, s, leased)
	check(t0.Add(time.Minute))

	k2, nk2 := keyPair(t, s)
	later := newDelivery(t, k2, nk2)
	later.NextAttemptAt, later.LeasedUntil = t0.Add(30*time.Second), t0.Add(-time.Hour)
	insertDeliveries(t, s, later)
	check(t0.Add(30 * time.Second))
}

// testDueDeliveriesConcurrent has several workers lease due deliveries at
// once: each must be leased exactly once.
func testDueDeliveriesConcurrent(t *testing.T, s apikey.Store) {
	const n, workers = 40, 8
	var all []*apikey.Delivery
	for i := range n {
		k, nk := keyPair(t, s)
		d := newDelivery(t, k, nk)
		d.NextAttemptAt = t0.Add(-time.Duration(i) * time.Millisecond)
		all = append(all, d)
	}
	insertDeliveries(t, s, all...)
	leases := make([][]string, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				var got []string
				errs[w] = s.Update(t.Context(), func(tx apikey.Tx) error {
					got = got[:0]
					ds, err := tx.DueDeliveriesForUpdate(t.Context(), t0, 3)
					if err != nil {
						return err
					}
					for _, d := range ds {
						d.Attempts++
						d.LeasedUntil = t0.Add(time.Hour)
						if err := tx.UpdateDelivery(t.Context(), d); err != nil {
							return err
						}
						got = append(got, d.ID)
					}
					return nil
				})
				if errs[w] != nil || len(got) == 0 {
					return
				}
				leases[w] = append(leases[w], got...)
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for w := range workers {
		if errs[w] != nil {
			t.Errorf("worker %d: %v", w, errs[w])
		}
		for _, id := range leases[w] {
			seen[id]++
		}
	}
	for _, d := range all {
		if seen[d.ID] != 1 {
			t.Errorf("delivery %s leased %d times", d.ID, seen[d.ID])
		}
		if got := mustDelivery(t, s, d.ID).Attempts; got != 1 {
			t.Errorf("delivery %s has %d attempts, want 1", d.ID, got)
		}
	}
}
