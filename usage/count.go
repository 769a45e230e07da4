package usage

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// UsageWriter is where a Counter writes its batches: apikey.UsageStore.
type UsageWriter interface {
	AddUsage(ctx context.Context, counts []apikey.UsageCount) error
}

// Counter counts verdicts per key, hour and code in memory, so that usage
// costs one batch write per flush (APIKEYD_LAST_USED_FLUSH), never one
// write per verify.
type Counter struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [counterShards]counterShard
}

const counterShards = 16

type counterShard struct {
	mu sync.Mutex
	m  map[countKey]*countValue
}

// countKey is one row of usage_hours. Its strings are the caller's (the
// key's record), so a count allocates only for a new row.
type countKey struct {
	keyID, projectID, environmentID, ownerID, code string
	hour                                           int64 // Unix seconds of the hour
}

type countValue struct{ n, credits int64 }

// NewCounter returns a counter on the clock now (time.Now when nil).
func NewCounter(now func() time.Time) *Counter {
	if now == nil {
		now = time.Now
	}
	c := &Counter{now: now, seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = map[countKey]*countValue{}
	}
	return c
}

// Count counts one verdict of a key, with the credits it spent.
func (c *Counter) Count(keyID, projectID, environmentID, ownerID, code string, credits int64) {
	k := countKey{keyID, projectID, environmentID, ownerID, code, c.now().Unix() / 3600 * 3600}
	sh := &c.shards[maphash.String(c.seed, keyID)%counterShards]
	sh.mu.Lock()
	v := sh.m[k]
	if v == nil {
		v = &countValue{}
		sh.m[k] = v
	}
	v.n++
	v.credits += credits
	sh.mu.Unlock()
}

// Flush writes what was counted since the last Flush in one batch. If the
// write fails, the counts are kept for the next Flush.
func (c *Counter) Flush(ctx context.Context, w UsageWriter) error {
	var batch []apikey.UsageCount
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for k, v := range sh.m {
			batch = append(batch, apikey.UsageCount{KeyID: k.keyID, ProjectID: k.projectID, EnvironmentID: k.environmentID,
				OwnerID: k.ownerID, Hour: time.Unix(k.hour, 0).UTC(), Code: k.code, Count: v.n, CreditsSpent: v.credits})
		}
		clear(sh.m)
		sh.mu.Unlock()
	}
	if len(batch) == 0 {
		return nil
	}
	if err := w.AddUsage(ctx, batch); err != nil {
		for _, u := range batch {
			sh := &c.shards[maphash.String(c.seed, u.KeyID)%counterShards]
			k := countKey{u.KeyID, u.ProjectID, u.EnvironmentID, u.OwnerID, u.Code, u.Hour.Unix()}
			sh.mu.Lock()
			v := sh.m[k]
			if v == nil {
				v = &countValue{}
				sh.m[k] = v
			}
			v.n += u.Count
			v.credits += u.CreditsSpent
			sh.mu.Unlock()
		}
		return err
	}
	return nil
}
