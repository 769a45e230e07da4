package postgres_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/postgres"
	"github.com/apikeyd/apikeyd/postgres/pgtest"
)

// dueKeys stores n keys whose rotation came due a second apart, oldest
// first, and returns them in that order.
func dueKeys(t *testing.T, s *postgres.Store, n int) []*apikey.Key {
	t.Helper()
	now := time.Now().UTC()
	keys := make([]*apikey.Key, n)
	for i := range keys {
		k := testKey(i)
		k.RotationIntervalDays = 30
		k.RotationWebhookURL = "https://hooks.example.com/r"
		k.NextRotationAt = now.Add(-time.Duration(n-i) * time.Second)
		keys[i] = k
	}
	err := s.Update(t.Context(), func(tx apikey.Tx) error {
		for _, k := range keys {
			if err := tx.InsertKey(t.Context(), k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// holding runs take in a transaction and keeps that transaction open, with
// the rows take locked, until the test ends or release is called. It
// returns what take returned.
func holding[T any](t *testing.T, s *postgres.Store, take func(tx apikey.Tx) ([]T, error)) (got []T, release func()) {
	t.Helper()
	locked, done := make(chan error), make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		s.Update(t.Context(), func(tx apikey.Tx) error {
			var err error
			got, err = take(tx)
			locked <- err
			<-done
			return errAbort
		})
	}()
	if err := <-locked; err != nil {
		close(done)
		t.Fatalf("first transaction: %v", err)
	}
	release = sync.OnceFunc(func() { close(done); <-ended })
	t.Cleanup(release)
	return got, release
}

// errAbort rolls back a transaction that only read.
var errAbort = errors.New("abort")

// TestDueKeysSkipLocked checks that a scheduler does not wait for keys
// another replica is claiming: it takes the next ones instead. Without
// SKIP LOCKED the second claim would wait for the first transaction, which
// only ends after it, and fail on lock_timeout.
func TestDueKeysSkipLocked(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	s := open(t)
	keys := dueKeys(t, s, 4)
	now := time.Now()
	first, release := holding(t, s, func(tx apikey.Tx) ([]*apikey.Key, error) {
		return tx.DueKeysForUpdate(t.Context(), now, 2)
	})
	var second []*apikey.Key
	err := s.Update(t.Context(), func(tx apikey.Tx) error {
		var err error
		second, err = tx.DueKeysForUpdate(t.Context(), now, 10)
		return err
	})
	release()
	if err != nil {
		t.Fatalf("second claim: %v", err)
	}
	if got, want := keyIDs(first), keyIDs(keys[:2]); !slices.Equal(got, want) {
		t.Errorf("first claim took %v, want %v", got, want)
	}
	if got, want := keyIDs(second), keyIDs(keys[2:]); !slices.Equal(got, want) {
		t.Errorf("second claim took %v, want %v (the keys not locked)", got, want)
	}
}

// TestDueDeliveriesSkipLocked checks the same of deliveries: a worker takes
// the deliveries another worker is not leasing at that moment.
func TestDueDeliveriesSkipLocked(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	s := open(t)
	keys := dueKeys(t, s, 3)
	now := time.Now().UTC()
	var ds []*apikey.Delivery
	for i, k := range keys {
		id, err := apikey.NewID(apikey.IDKindDelivery)
		if err != nil {
			t.Fatal(err)
		}
		at := now.Add(-time.Duration(len(keys)-i) * time.Second)
		ds = append(ds, &apikey.Delivery{
			ID: id, KeyID: k.ID, ReplacementKeyID: k.ID, State: apikey.DeliveryPending,
			PayloadSealed: []byte{1}, NextAttemptAt: at, CreatedAt: at, UpdatedAt: at,
		})
	}
	err := s.Update(t.Context(), func(tx apikey.Tx) error {
		for _, d := range ds {
			if err := tx.InsertDelivery(t.Context(), d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	first, release := holding(t, s, func(tx apikey.Tx) ([]*apikey.Delivery, error) {
		return tx.DueDeliveriesForUpdate(t.Context(), now, 1)
	})
	var second []*apikey.Delivery
	err = s.Update(t.Context(), func(tx apikey.Tx) error {
		var err error
		second, err = tx.DueDeliveriesForUpdate(t.Context(), now, 10)
		return err
	})
	release()
	if err != nil {
		t.Fatalf("second lease: %v", err)
	}
	if got, want := deliveryIDs(first), deliveryIDs(ds[:1]); !slices.Equal(got, want) {
		t.Errorf("first lease took %v, want %v", got, want)
	}
	if got, want := deliveryIDs(second), deliveryIDs(ds[1:]); !slices.Equal(got, want) {
		t.Errorf("second lease took %v, want %v (the deliveries not locked)", got, want)
	}
}

func keyIDs(keys []*apikey.Key) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.ID
	}
	return out
}

func deliveryIDs(ds []*apikey.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}
