package keycache

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/metrics"
)

// Store is the part of apikey.Store the index reads.
type Store interface {
	// KeyByHash returns the key stored under h, or ENOTFOUND.
	KeyByHash(ctx context.Context, h apikey.Hash) (*apikey.Key, error)
	// ScanKeys calls fn for every key.
	ScanKeys(ctx context.Context, fn func(k *apikey.Key) error) error
	RootStore
}

// DefaultNegativeSize is how many unknown hashes the index remembers when
// Options.NegativeSize is zero.
const DefaultNegativeSize = 100_000

// Options configure a Cache.
type Options struct {
	Store Store
	// NegativeSize bounds the unknown hashes remembered, for keys and for
	// root keys each; beyond it, a random one is forgotten for each new
	// one. Zero means DefaultNegativeSize.
	NegativeSize int
	// Metrics counts hits and misses; nil counts nothing.
	Metrics *metrics.Metrics
}

const numShards = 256

// Cache is the in-memory index. It is safe for concurrent use. The zero
// value is not usable; call New.
type Cache struct {
	store   Store
	metrics *metrics.Metrics
	negMax  int // per shard
	loaded  atomic.Bool
	count   atomic.Int64
	// imported is set once any imported key reaches the index (loaded,
	// applied, filled or followed), so that keys of foreign formats are
	// looked up only where imports exist.
	imported atomic.Bool

	shards [numShards]shard

	// mu serialises writers of everything below. Readers use the arena
	// and the scope sets without it (see arena).
	mu       sync.Mutex
	mem      offheap
	strs     arena
	interned map[string]strRef // projects, environments and scopes
	setIDs   map[string]uint32 // scope set, joined by "\x00" → index
	sets     [maxSetChunks]*[setsPerChunk][]string
	numSets  uint32
	// lists are the interned allowlists (allowlist); lists[0] is nil.
	lists    [maxSetChunks]*[setsPerChunk]apikey.Allowlist
	numLists uint32
	listIDs  map[string]uint32
	// Rate-limit sets, interned as scope sets are: set 0 is none.
	limitIDs     map[string]uint32 // limits, as JSON → index
	limitSets    [maxSetChunks]*[setsPerChunk][]apikey.RateLimit
	numLimitSets uint32

	// The root keys (see roots), under a lock of their own.
	rootStore  RootStore
	rootMu     sync.RWMutex
	roots      roots
	rootNegMax int
}

const (
	setsPerChunk = 1024
	maxSetChunks = 1 << 14
)

// New returns an empty index over o.Store. Call Load to fill it.
func New(o Options) *Cache {
	c := &Cache{
		store:    o.Store,
		metrics:  o.Metrics,
		interned: make(map[string]strRef),
		setIDs:   make(map[string]uint32),
		listIDs:  make(map[string]uint32),
		numLists: 1,
		limitIDs: make(map[string]uint32),
	}
	c.lists[0] = new([setsPerChunk]apikey.Allowlist)
	n := o.NegativeSize
	if n <= 0 {
		n = DefaultNegativeSize
	}
	c.negMax = max(1, n/numShards)
	c.rootStore, c.rootNegMax = o.Store, n
	// Scope set 0 is the empty set; limit set 0 is none.
	c.addSet(nil)
	c.addLimitSet(nil)
	for i := range c.shards {
		c.shards[i].table = make([]uint64, minTable)
	}
	o.Metrics.CacheKeys(func() int { return int(c.count.Load()) })
	return c
}

// Load reads every key and root key of the store into the index. Lookups
// and Apply may run meanwhile: a lookup of a key not loaded yet goes to the
// store, and a key changed during the load keeps its newest version.
// Loaded reports true once a Load has succeeded.
func (c *Cache) Load(ctx context.Context) error {
	if err := c.loadRoots(ctx); err != nil {
		return unavailable(err)
	}
	err := c.store.ScanKeys(ctx, func(k *apikey.Key) error {
		sh := c.shard(k.Hash)
		sh.mu.Lock()
		c.put(sh, k)
		sh.mu.Unlock()
		return nil
	})
	if err != nil {
		return unavailable(err)
	}
	c.loaded.Store(true)
	return nil
}

// HasImported reports whether an imported key has reached the index. Load
// reads every key before the server reports ready, so from then on it is
// the answer for the whole store; replicas learn of imports elsewhere
// through the change feed (Apply), since imported keys are keys.
func (c *Cache) HasImported() bool { return c.imported.Load() }

// Loaded reports whether the whole store has been read into the index.
func (c *Cache) Loaded() bool { return c.loaded.Load() }

// Len returns the number of keys held.
func (c *Cache) Len() int { return int(c.count.Load()) }

// Lookup implements service.Index. A known key is answered from memory; a
// hash seen for the first time is looked up in the store, and the answer
// kept. The error is EUNAVAILABLE when the store had to be asked and could
// not answer.
func (c *Cache) Lookup(ctx context.Context, h apikey.Hash) (apikey.Record, bool, error) {
	sh := c.shard(h)
	sh.mu.RLock()
	if i, ok := sh.find(h); ok {
		rec := c.record(sh.slot(i))
		sh.mu.RUnlock()
		c.metrics.CacheHit()
		return rec, true, nil
	}
	_, unknown := sh.neg[h]
	sh.mu.RUnlock()
	if unknown {
		c.metrics.CacheHit()
		return apikey.Record{}, false, nil
	}
	return c.fill(ctx, sh, h)
}

// Apply implements service.Index: it records a committed change to k. The
// record is replaced only if k.Version is higher than the one held.
func (c *Cache) Apply(k *apikey.Key) {
	sh := c.shard(k.Hash)
	sh.mu.Lock()
	c.put(sh, k)
	delete(sh.neg, k.Hash)
	sh.mu.Unlock()
}

// Version returns the Version of the record held for h, and false when the
// index holds none. It never reads the store. A replica told that a key
// changed elsewhere asks it first, and reads the key only when the index
// is behind.
func (c *Cache) Version(h apikey.Hash) (int64, bool) {
	sh := c.shard(h)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if i, ok := sh.find(h); ok {
		return sh.slot(i).version, true
	}
	return 0, false
}

// fillCall is one store read that concurrent misses of a hash share.
type fillCall struct {
	done  chan struct{}
	rec   apikey.Record
	found bool
	err   error
}

// fill asks the store about h and keeps the answer. Of concurrent misses of
// one hash, one reads the store and the others wait for its answer.
//
// Every lookup that ends without a store read of its own counts as a hit
// (an answer found once the lock is taken, or shared from another caller's
// read), every store read as a miss by its outcome; a failed read counts as
// neither (the store wrapper counts it as a store error). So hits plus
// misses are the lookups that got an answer.
func (c *Cache) fill(ctx context.Context, sh *shard, h apikey.Hash) (apikey.Record, bool, error) {
	sh.mu.Lock()
	if i, ok := sh.find(h); ok {
		rec := c.record(sh.slot(i))
		sh.mu.Unlock()
		c.metrics.CacheHit()
		return rec, true, nil
	}
	if _, unknown := sh.neg[h]; unknown {
		sh.mu.Unlock()
		c.metrics.CacheHit()
		return apikey.Record{}, false, nil
	}
	if f := sh.pending[h]; f != nil {
		sh.mu.Unlock()
		select {
		case <-f.done:
			if f.err == nil {
				c.metrics.CacheHit()
			}
			return f.rec, f.found, f.err
		case <-ctx.Done():
			return apikey.Record{}, false, unavailable(ctx.Err())
		}
	}
	f := &fillCall{done: make(chan struct{})}
	if sh.pending == nil {
		sh.pending = make(map[apikey.Hash]*fillCall)
	}
	sh.pending[h] = f
	sh.mu.Unlock()

	// The read is shared, so one caller giving up must not fail the others.
	k, err := c.store.KeyByHash(context.WithoutCancel(ctx), h)

	sh.mu.Lock()
	delete(sh.pending, h)
	switch code := apikey.ErrorCode(err); {
	case err == nil:
		c.metrics.CacheMiss(true)
		// The answer is the newest record, which may have arrived through
		// Apply while the store was being read.
		i := c.put(sh, k)
		f.rec, f.found = c.record(sh.slot(i)), true
	case code == apikey.ENOTFOUND:
		c.metrics.CacheMiss(false)
		if i, ok := sh.find(h); ok {
			// Created meanwhile: Apply brought it.
			f.rec, f.found = c.record(sh.slot(i)), true
		} else {
			sh.remember(h, c.negMax)
		}
	default:
		f.err = unavailable(err)
	}
	sh.mu.Unlock()
	close(f.done)
	return f.rec, f.found, f.err
}

// unavailable wraps a store failure as EUNAVAILABLE, keeping its cause for
// the log.
func unavailable(err error) error {
	if apikey.ErrorCode(err) == apikey.EUNAVAILABLE {
		return err
	}
	return &apikey.Error{Code: apikey.EUNAVAILABLE, Message: "the key store is unavailable", Err: err}
}

func (c *Cache) shard(h apikey.Hash) *shard { return &c.shards[h[0]] }

// A slot is the record of one key, in a form without pointers. Times are
// Unix microseconds, as the stores keep them, or noTime.
type slot struct {
	hash    apikey.Hash
	version int64
	expires int64
	revoked int64
	grace   int64
	id      strRef
	name    strRef
	project strRef
	env     strRef
	owner   strRef
	meta    strRef
	subject strRef
	scopes  uint32
	limits  uint32
	flags   uint32
	// allow is the index of the key's interned allowlist; 0 is none.
	allow uint32
}

const (
	flagReplaced = 1 << iota
	flagDisabled
	flagCredits
)

const noTime = math.MinInt64

func micros(t time.Time) int64 {
	if t.IsZero() {
		return noTime
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == noTime {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// record returns the apikey.Record of s. It allocates nothing: strings and
// scopes point into the index's own immutable memory.
func (c *Cache) record(s *slot) apikey.Record {
	return apikey.Record{
		ID:             c.strs.str(s.id),
		ProjectID:      c.strs.str(s.project),
		EnvironmentID:  c.strs.str(s.env),
		Name:           c.strs.str(s.name),
		Scopes:         c.sets[s.scopes/setsPerChunk][s.scopes%setsPerChunk],
		ExpiresAt:      fromMicros(s.expires),
		RevokedAt:      fromMicros(s.revoked),
		Replaced:       s.flags&flagReplaced != 0,
		GraceExpiresAt: fromMicros(s.grace),
		Version:        s.version,
		OwnerID:        c.strs.str(s.owner),
		Meta:           c.strs.str(s.meta),
		Allowlist:      c.lists[s.allow/setsPerChunk][s.allow%setsPerChunk],
		Disabled:       s.flags&flagDisabled != 0,
		Subject:        c.strs.str(s.subject),
		RateLimits:     c.limitSets[s.limits/setsPerChunk][s.limits%setsPerChunk],
		HasCredits:     s.flags&flagCredits != 0,
	}
}

// put stores k in sh, which the caller has locked for writing, unless sh
// holds the same or a newer version. It returns the slot of k's hash.
func (c *Cache) put(sh *shard, k *apikey.Key) uint32 {
	i, ok := sh.find(k.Hash)
	var oldID, oldName, oldOwner, oldMeta, oldSubject strRef
	if ok {
		old := sh.slot(i)
		if old.version >= k.Version {
			return i
		}
		oldID, oldName, oldOwner, oldMeta, oldSubject = old.id, old.name, old.owner, old.meta, old.subject
	} else {
		i = sh.add(&c.mu, &c.mem, k.Hash)
		c.count.Add(1)
	}
	s := slot{
		hash:    k.Hash,
		version: k.Version,
		expires: micros(k.ExpiresAt),
		revoked: micros(k.RevokedAt),
		grace:   micros(k.GraceExpiresAt),
	}
	if k.ReplacedByKeyID != "" {
		s.flags |= flagReplaced
	}
	if !k.DisabledAt.IsZero() {
		s.flags |= flagDisabled
	}
	if k.Source == apikey.SourceImported && !c.imported.Load() {
		c.imported.Store(true)
	}
	if k.HasCredits {
		s.flags |= flagCredits
	}
	c.mu.Lock()
	s.subject = c.keep(oldSubject, k.Subject())
	s.limits = c.limitSet(k.RateLimits)
	s.id = c.keep(oldID, k.ID)
	s.name = c.keep(oldName, k.Name)
	s.project = c.intern(k.ProjectID)
	s.env = c.intern(k.EnvironmentID)
	s.scopes = c.scopeSet(k.Scopes)
	s.owner = c.keep(oldOwner, k.OwnerID)
	s.meta = c.keep(oldMeta, string(k.Meta))
	s.allow = c.allowlist(k.IPAllowlist)
	c.mu.Unlock()
	*sh.slot(i) = s
	return i
}

// keep returns a ref of s: ref itself when it holds s already, so that
// updates do not grow the arena needlessly. c.mu is held.
func (c *Cache) keep(ref strRef, s string) strRef {
	if c.strs.str(ref) == s {
		return ref
	}
	return c.strs.add(&c.mem, s)
}

// intern returns the one ref of s, for the few strings many keys share.
// c.mu is held.
func (c *Cache) intern(s string) strRef {
	if r, ok := c.interned[s]; ok {
		return r
	}
	r := c.strs.add(&c.mem, s)
	c.interned[c.strs.str(r)] = r
	return r
}

// scopeSet returns the index of the interned scope set. c.mu is held.
func (c *Cache) scopeSet(scopes []string) uint32 {
	if len(scopes) == 0 {
		return 0
	}
	joined := strings.Join(scopes, "\x00")
	if id, ok := c.setIDs[joined]; ok {
		return id
	}
	set := make([]string, len(scopes))
	for i, sc := range scopes {
		set[i] = c.strs.str(c.intern(sc))
	}
	id := c.addSet(set)
	c.setIDs[joined] = id
	return id
}

// allowlist returns the index of the interned allowlist l; 0 for nil. Keys
// of one customer tend to share their list, so lists are interned like
// scope sets, in chunks on the heap (netip values hold pointers) that
// readers index without a lock, as they do scope sets. c.mu is held.
func (c *Cache) allowlist(l apikey.Allowlist) uint32 {
	if l == nil {
		return 0
	}
	enc := l.Encode()
	if id, ok := c.listIDs[enc]; ok {
		return id
	}
	id := c.numLists
	ch := id / setsPerChunk
	if ch == maxSetChunks {
		panic("keycache: too many allowlists")
	}
	if c.lists[ch] == nil {
		c.lists[ch] = new([setsPerChunk]apikey.Allowlist)
	}
	c.lists[ch][id%setsPerChunk] = slices.Clone(l)
	c.numLists++
	c.listIDs[enc] = id
	return id
}

// addSet appends a scope set; c.mu is held (or c is being built).
func (c *Cache) addSet(set []string) uint32 {
	if set == nil {
		set = []string{}
	}
	id := c.numSets
	ch := id / setsPerChunk
	if ch == maxSetChunks {
		panic("keycache: too many scope sets")
	}
	if c.sets[ch] == nil {
		c.sets[ch] = new([setsPerChunk][]string)
	}
	c.sets[ch][id%setsPerChunk] = set
	c.numSets++
	return id
}

// limitSet returns the index of the interned rate-limit set (0: none).
// c.mu is held.
func (c *Cache) limitSet(ls []apikey.RateLimit) uint32 {
	if ls == nil {
		return 0
	}
	j, _ := json.Marshal(ls)
	if id, ok := c.limitIDs[string(j)]; ok {
		return id
	}
	id := c.addLimitSet(slices.Clone(ls))
	c.limitIDs[string(j)] = id
	return id
}

// addLimitSet appends a rate-limit set; c.mu is held (or c is being
// built).
func (c *Cache) addLimitSet(set []apikey.RateLimit) uint32 {
	id := c.numLimitSets
	ch := id / setsPerChunk
	if ch == maxSetChunks {
		panic("keycache: too many rate-limit sets")
	}
	if c.limitSets[ch] == nil {
		c.limitSets[ch] = new([setsPerChunk][]apikey.RateLimit)
	}
	c.limitSets[ch][id%setsPerChunk] = set
	c.numLimitSets++
	return id
}

// shard is one 256th of the index, chosen by the first byte of the hash.
type shard struct {
	mu sync.RWMutex
	// table is an open-addressing hash table, probed linearly: each
	// entry is the key's tag in the high half and its slot number + 1 in
	// the low half (0 is empty). Nothing is ever deleted, which keeps
	// linear probing simple.
	table  []uint64
	n      uint32
	chunks []*[slotsPerChunk]slot
	// neg holds hashes the store did not know, at most negMax.
	neg map[apikey.Hash]struct{}
	// pending holds the store reads in flight.
	pending map[apikey.Hash]*fillCall
	_       [64]byte // keep shards' locks on separate cache lines
}

const (
	minTable      = 64
	slotsPerChunk = 512
)

func (sh *shard) slot(i uint32) *slot { return &sh.chunks[i/slotsPerChunk][i%slotsPerChunk] }

// probe is where h's search starts in a shard's table; tag is the part of
// h a table entry keeps, so that a probe passes over other keys without
// reading their slots (each read of a slot is likely a cache miss).
func probe(h *apikey.Hash) uint32 { return uint32(binary.LittleEndian.Uint64(h[8:16])) }
func tag(h *apikey.Hash) uint64   { return binary.LittleEndian.Uint64(h[16:24]) &^ (1<<32 - 1) }

// find returns the slot of h.
func (sh *shard) find(h apikey.Hash) (uint32, bool) {
	mask := uint32(len(sh.table) - 1)
	t := tag(&h)
	for p := probe(&h) & mask; ; p = (p + 1) & mask {
		v := sh.table[p]
		if v == 0 {
			return 0, false
		}
		if v&^(1<<32-1) == t {
			if i := uint32(v) - 1; sh.slot(i).hash == h {
				return i, true
			}
		}
	}
}

// add takes a new slot for h, which is not in sh, and returns it. Memory for
// slots comes from mem, under mu.
func (sh *shard) add(mu *sync.Mutex, mem *offheap, h apikey.Hash) uint32 {
	i := sh.n
	if i%slotsPerChunk == 0 {
		mu.Lock()
		b := mem.alloc(slotsPerChunk * int(unsafe.Sizeof(slot{})))
		mu.Unlock()
		sh.chunks = append(sh.chunks, (*[slotsPerChunk]slot)(unsafe.Pointer(&b[0])))
	}
	sh.n++
	sh.slot(i).hash = h
	if int(sh.n)*4 > len(sh.table)*3 {
		sh.rehash(len(sh.table) * 2)
	} else {
		sh.insert(h, i)
	}
	return i
}

func (sh *shard) insert(h apikey.Hash, i uint32) {
	mask := uint32(len(sh.table) - 1)
	p := probe(&h) & mask
	for sh.table[p] != 0 {
		p = (p + 1) & mask
	}
	sh.table[p] = tag(&h) | uint64(i+1)
}

// rehash rebuilds the table with size entries from the slots.
func (sh *shard) rehash(size int) {
	sh.table = make([]uint64, size)
	for i := uint32(0); i < sh.n; i++ {
		sh.insert(sh.slot(i).hash, i)
	}
}

// remember adds h to the negative cache, forgetting a random entry when it
// holds max already.
func (sh *shard) remember(h apikey.Hash, max int) {
	if sh.neg == nil {
		sh.neg = make(map[apikey.Hash]struct{})
	}
	if len(sh.neg) >= max {
		for old := range sh.neg { // map order is random
			delete(sh.neg, old)
			break
		}
	}
	sh.neg[h] = struct{}{}
}
