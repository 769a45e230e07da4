package metrics

import (
	"context"

	"github.com/apikeyd/apikeyd/apikey"
)

// The root-key reads of the counting store, counted like the keys'.

func (s *countingStore) RootKey(ctx context.Context, id string) (*apikey.RootKey, error) {
	rk, err := s.Store.RootKey(ctx, id)
	return rk, s.count("root_key", err)
}

func (s *countingStore) RootKeyByHash(ctx context.Context, h apikey.Hash) (*apikey.RootKey, error) {
	rk, err := s.Store.RootKeyByHash(ctx, h)
	return rk, s.count("root_key_by_hash", err)
}

func (s *countingStore) RootKeys(ctx context.Context, f apikey.RootKeyFilter) ([]*apikey.RootKey, error) {
	ks, err := s.Store.RootKeys(ctx, f)
	return ks, s.count("root_keys", err)
}

func (s *countingStore) ScanRootKeys(ctx context.Context, fn func(rk *apikey.RootKey) error) error {
	return s.count("scan_root_keys", s.Store.ScanRootKeys(ctx, fn))
}

func (s *countingStore) RootKeyChanges(ctx context.Context, since string, fn func(rk *apikey.RootKey) error) (string, error) {
	next, err := s.Store.RootKeyChanges(ctx, since, fn)
	return next, s.count("root_key_changes", err)
}

func (s *countingStore) TouchRootKeys(ctx context.Context, uses []apikey.KeyUse) error {
	return s.count("touch_root_keys", s.Store.TouchRootKeys(ctx, uses))
}
