// Package lastused records when keys were last used without a store write per
// request: uses are collected in memory and written in batches, and the
// newest pending use can be overlaid on what the store returns.
package lastused

import (
	"context"
	"sync"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// Toucher is the part of apikey.Store the buffer writes to.
type Toucher interface {
	TouchKeys(ctx context.Context, uses []apikey.KeyUse) error
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

// Flush writes every pending use in one batch. On failure the uses are kept
// for the next flush, so none is lost while the store is away.
func (b *Buffer) Flush(ctx context.Context) error {
	var uses []apikey.KeyUse
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		for id, us := range s.pending {
			uses = append(uses, apikey.KeyUse{KeyID: id, At: time.UnixMicro(us).UTC()})
		}
		clear(s.pending)
		s.mu.Unlock()
	}
	if len(uses) == 0 {
		return nil
	}
	err := b.store.TouchKeys(ctx, uses)
	if b.OnFlush != nil {
		b.OnFlush(len(uses), err)
	}
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
