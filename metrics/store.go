package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// Store returns st counting its failures in apikeyd_store_errors_total,
// by operation. A failure is an error the store could not help: internal
// or unavailable (a lost connection, a full disk, a timeout). Answers such
// as not found, conflict or invalid input are part of the contract and
// are not counted, nor are operations abandoned because their caller went
// away (context canceled). A write counts once, as "update", whichever
// statement of its transaction failed. On nil Metrics it returns st.
func (m *Metrics) Store(st apikey.Store) apikey.Store {
	if m == nil {
		return st
	}
	return &countingStore{Store: st, m: m}
}

type countingStore struct {
	apikey.Store
	m *Metrics
}

// count records err under op when it is a failure, and returns it.
func (s *countingStore) count(op string, err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	if c := apikey.ErrorCode(err); c == apikey.EINTERNAL || c == apikey.EUNAVAILABLE {
		s.m.StoreError(op)
	}
	return err
}

func (s *countingStore) Key(ctx context.Context, id string) (*apikey.Key, error) {
	k, err := s.Store.Key(ctx, id)
	return k, s.count("key", err)
}

func (s *countingStore) KeyByHash(ctx context.Context, h apikey.Hash) (*apikey.Key, error) {
	k, err := s.Store.KeyByHash(ctx, h)
	return k, s.count("key_by_hash", err)
}

func (s *countingStore) Keys(ctx context.Context, f apikey.KeyFilter) ([]*apikey.Key, error) {
	ks, err := s.Store.Keys(ctx, f)
	return ks, s.count("keys", err)
}

func (s *countingStore) ExpiringKeys(ctx context.Context, f apikey.ExpiringFilter) ([]*apikey.Key, error) {
	ks, err := s.Store.ExpiringKeys(ctx, f)
	return ks, s.count("expiring_keys", err)
}

func (s *countingStore) AuditEvents(ctx context.Context, f apikey.AuditFilter) ([]*apikey.AuditEvent, error) {
	es, err := s.Store.AuditEvents(ctx, f)
	return es, s.count("audit_events", err)
}

func (s *countingStore) ScanKeys(ctx context.Context, fn func(k *apikey.Key) error) error {
	return s.count("scan_keys", s.Store.ScanKeys(ctx, fn))
}

func (s *countingStore) KeyChanges(ctx context.Context, since string, fn func(k *apikey.Key) error) (string, error) {
	next, err := s.Store.KeyChanges(ctx, since, fn)
	return next, s.count("key_changes", err)
}

func (s *countingStore) Delivery(ctx context.Context, id string) (*apikey.Delivery, error) {
	d, err := s.Store.Delivery(ctx, id)
	return d, s.count("delivery", err)
}

func (s *countingStore) NextDeliveryAt(ctx context.Context) (time.Time, error) {
	at, err := s.Store.NextDeliveryAt(ctx)
	return at, s.count("next_delivery_at", err)
}

func (s *countingStore) Update(ctx context.Context, fn func(tx apikey.Tx) error) error {
	return s.count("update", s.Store.Update(ctx, fn))
}

func (s *countingStore) TouchKeys(ctx context.Context, uses []apikey.KeyUse) error {
	return s.count("touch_keys", s.Store.TouchKeys(ctx, uses))
}

func (s *countingStore) Ping(ctx context.Context) error {
	return s.count("ping", s.Store.Ping(ctx))
}
