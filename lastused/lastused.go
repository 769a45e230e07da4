// Package lastused records when keys were last used without a store write per
// request: uses are collected in memory and written in batches, and the
// newest pending use can be overlaid on what the store returns.
package lastused

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// Toucher is the part of apikey.Store the buffer writes to: the buffer
// holds the uses of keys and of root keys, told apart by the kind of their
// IDs, and writes each to its own table.
type Toucher interface {
	TouchKeys(ctx context.Context, uses []apikey.KeyUse) error
	TouchRootKeys(ctx context.Context, uses []apikey.KeyUse) error
}

const shards = 16

type shard struct {
	mu      sync.Mutex
	pending map[string]int64 // key ID → unix microseconds of the latest use
}

// Buffer holds the uses recorded since the last flush. The zero value is not
// usable; call New.
type Buffer struct {
	store  Toucher
	shards [shards]shard
	// OnFlush, if set, is told the size and outcome of every written batch.
	OnFlush func(n int, err error)
}

// New returns an empty buffer that flushes into store.
func New(store Toucher) *Buffer {
	b := &Buffer{store: store}
	for i := range b.shards {
		b.shards[i].pending = make(map[string]int64)
	}
	return b
}

func (b *Buffer) shard(id string) *shard {
	if id == "" {
		return &b.shards[0]
	}
	// The last characters of an ID are random, so they spread keys evenly.
	return &b.shards[id[len(id)-1]%shards]
}

// Record notes that the key with the given ID was used at at. It is called on
// every verification and must stay cheap: no allocation once a key is known
// to the current batch.
func (b *Buffer) Record(id string, at time.Time) {
	us := at.UnixMicro()
	s := b.shard(id)
	s.mu.Lock()
	if us > s.pending[id] {
		s.pending[id] = us
	}
	s.mu.Unlock()
}

// Pending returns the latest use of the key recorded since the last flush.
func (b *Buffer) Pending(id string) (time.Time, bool) {
	s := b.shard(id)
	s.mu.Lock()
	us, ok := s.pending[id]
	s.mu.Unlock()
	if !ok {
		return time.Time{}, false
	}
	return time.UnixMicro(us).UTC(), true
}

// Overlay sets k.LastUsedAt to the pending use, if that is newer.
func (b *Buffer) Overlay(k *apikey.Key) {
	if t, ok := b.Pending(k.ID); ok && t.After(k.LastUsedAt) {
		k.LastUsedAt = t
	}
}

// OverlayRoot is Overlay for a root key.
func (b *Buffer) OverlayRoot(rk *apikey.RootKey) {
	if t, ok := b.Pending(rk.ID); ok && t.After(rk.LastUsedAt) {
		rk.LastUsedAt = t
	}
}

// Flush writes every pending use in one batch per kind (keys, root keys).
// On failure the uses of that batch are kept for the next flush, so none
// is lost while the store is away.
func (b *Buffer) Flush(ctx context.Context) error {
	var uses, roots []apikey.KeyUse
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		for id, us := range s.pending {
			u := apikey.KeyUse{KeyID: id, At: time.UnixMicro(us).UTC()}
			if strings.HasPrefix(id, apikey.IDKindRootKey+"_") {
				roots = append(roots, u)
			} else {
				uses = append(uses, u)
			}
		}
		clear(s.pending)
		s.mu.Unlock()
	}
	if len(uses)+len(roots) == 0 {
		return nil
	}
	err := errors.Join(b.write(ctx, b.store.TouchKeys, uses), b.write(ctx, b.store.TouchRootKeys, roots))
	if b.OnFlush != nil {
		b.OnFlush(len(uses)+len(roots), err)
	}
	return err
}

// write writes one batch with touch, keeping its uses pending if it fails.
func (b *Buffer) write(ctx context.Context, touch func(context.Context, []apikey.KeyUse) error, uses []apikey.KeyUse) error {
	if len(uses) == 0 {
		return nil
	}
	err := touch(ctx, uses)
	if err != nil {
		for _, u := range uses {
			b.Record(u.KeyID, u.At)
		}
	}
	return err
}

// Run flushes every interval until ctx ends. It does not flush on the way
// out: the owner flushes once more after it has stopped taking requests.
func (b *Buffer) Run(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := b.Flush(ctx); err != nil && onErr != nil {
				onErr(err)
			}
		}
	}
}
