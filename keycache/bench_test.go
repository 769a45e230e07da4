package keycache_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/keycache"
	"github.com/apikeyd/apikeyd/service"
)

// benchKeys is how many keys the benchmarks load: the size the index is
// built for.
const benchKeys = 1_000_000

// fixture is a million-key index and a service over it.
type fixture struct {
	once  sync.Once
	st    *store
	cache *keycache.Cache
	svc   *service.Service
	// plain holds the plaintexts one after the other, keyLen bytes each,
	// as compact as the request buffers they would arrive in.
	plain  string
	hashes []apikey.Hash
}

// million holds plain keys; richMillion keys that each carry an owner and
// 200 bytes of meta (SPEC §9), which verify hands out.
var million, richMillion fixture

// keyLen is the length of an "sk" key.
const keyLen = 52

func (m *fixture) plainKey(i int) string { return m.plain[i*keyLen : (i+1)*keyLen] }

func plainKey(i int) string { return million.plainKey(i) }

// loadMillion builds, once per process, an index of a million keys in
// three projects with a few scope sets, and a service over it.
func loadMillion(b *testing.B) { million.load(b, false) }

// loadRichMillion is loadMillion with an owner and 200 bytes of meta on
// every key.
func loadRichMillion(b *testing.B) { richMillion.load(b, true) }

func (m *fixture) load(b *testing.B, rich bool) {
	m.once.Do(func() {
		start := time.Now()
		m.st = openStore(b) // empty: hits never reach it
		m.cache = keycache.New(keycache.Options{Store: m.st})
		plain := make([]byte, 0, benchKeys*keyLen)
		m.hashes = make([]apikey.Hash, benchKeys)
		for i := range benchKeys {
			s, err := apikey.GenerateKey("sk")
			if err != nil {
				b.Fatal(err)
			}
			k := newKey(i)
			k.ID = fmt.Sprintf("key_%026d", i)
			k.Hash = s.Hash
			k.ProjectID, k.EnvironmentID = "p1", "prod"
			k.Scopes = []string{"orders:read", "orders:write"}
			k.ExpiresAt = time.Time{}
			k.Version = 1
			if rich {
				k.OwnerID = fmt.Sprintf("user:%08d@tenant", i)
				k.Meta = []byte(fmt.Sprintf(`{"customer":"cust-%08d","plan":"pro","pad":"%s"}`, i, strings.Repeat("x", 150)))
			}
			m.cache.Apply(k)
			if len(s.Plaintext) != keyLen {
				b.Fatalf("key of %d bytes", len(s.Plaintext))
			}
			plain = append(plain, s.Plaintext...)
			m.hashes[i] = s.Hash
		}
		m.plain = string(plain)
		var err error
		m.svc, err = newService(m.st, m.cache, time.Now)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.Logf("loaded %d keys in %s; Go heap in use %d MB", m.cache.Len(), time.Since(start).Round(time.Millisecond), ms.HeapInuse>>20)
	})
}

// workingSets are the keys a benchmark presents, always with a million
// loaded: a hot set that stays in the CPU caches, as real traffic with its
// many requests per key does; a warm one; and the whole million, where
// every lookup is a run of cache misses (table, slot, last-use map), the
// worst case.
var workingSets = []struct {
	name string
	n    int
}{{"Hot1k", 1_000}, {"Warm10k", 10_000}, {"All1M", benchKeys}}

// BenchmarkLookup is an index hit: hash to record, a million keys loaded.
func BenchmarkLookup(b *testing.B) {
	loadMillion(b)
	c, hashes := million.cache, million.hashes
	for _, ws := range workingSets {
		b.Run(ws.name, func(b *testing.B) {
			ctx := b.Context()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, found, _ := c.Lookup(ctx, hashes[i%ws.n]); !found {
					b.Fatal("not found")
				}
				i += 7919 // wander over the set
			}
		})
	}
}

// BenchmarkLookupParallel is BenchmarkLookup on every core at once.
func BenchmarkLookupParallel(b *testing.B) {
	loadMillion(b)
	c, hashes := million.cache, million.hashes
	for _, ws := range workingSets {
		b.Run(ws.name, func(b *testing.B) {
			ctx := b.Context()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := int(time.Now().UnixNano() % int64(ws.n))
				for pb.Next() {
					if _, found, _ := c.Lookup(ctx, hashes[i%ws.n]); !found {
						b.Error("not found")
						return
					}
					i += 7919
				}
			})
		})
	}
}

var verifier = apikey.Principal{KeyID: "key_verifier", ProjectID: "p1", Scopes: []string{apikey.ScopeVerify}}

// BenchmarkVerify is the whole in-process verification of a valid key:
// checksum, hash, index lookup, project check, verdict and last-use
// record, a million keys loaded.
func BenchmarkVerify(b *testing.B) {
	loadMillion(b)
	svc := million.svc
	want := []string{"orders:read"}
	for _, ws := range workingSets {
		b.Run(ws.name, func(b *testing.B) {
			ctx := b.Context()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				v, err := svc.Verify(ctx, verifier, service.VerifyInput{Key: plainKey(i % ws.n), Scopes: want, EnvironmentID: "prod"})
				if err != nil || !v.Valid() {
					b.Fatalf("verdict %v, %v", v.Code, err)
				}
				i += 7919
			}
		})
	}
}

// BenchmarkVerifyParallel is BenchmarkVerify on every core at once.
func BenchmarkVerifyParallel(b *testing.B) {
	loadMillion(b)
	svc := million.svc
	want := []string{"orders:read"}
	for _, ws := range workingSets {
		b.Run(ws.name, func(b *testing.B) {
			ctx := b.Context()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := int(time.Now().UnixNano() % int64(ws.n))
				for pb.Next() {
					v, err := svc.Verify(ctx, verifier, service.VerifyInput{Key: plainKey(i % ws.n), Scopes: want, EnvironmentID: "prod"})
					if err != nil || !v.Valid() {
						b.Errorf("verdict %v, %v", v.Code, err)
						return
					}
					i += 7919
				}
			})
		})
	}
}

// BenchmarkVerifyRich is BenchmarkVerify over keys that each carry an
// owner and 200 bytes of meta, which the record hands out with the verdict.
func BenchmarkVerifyRich(b *testing.B) {
	loadRichMillion(b)
	m := &richMillion
	want := []string{"orders:read"}
	for _, ws := range workingSets {
		b.Run(ws.name, func(b *testing.B) {
			ctx := b.Context()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				v, err := m.svc.Verify(ctx, verifier, service.VerifyInput{Key: m.plainKey(i % ws.n), Scopes: want, EnvironmentID: "prod"})
				if err != nil || !v.Valid() || len(v.Record.Meta) != 200 || v.Record.OwnerID == "" {
					b.Fatalf("verdict %v, %v (meta %d bytes)", v.Code, err, len(v.Record.Meta))
				}
				i += 7919
			}
		})
	}
}

// BenchmarkLookupRich is BenchmarkLookup over the keys of BenchmarkVerifyRich.
func BenchmarkLookupRich(b *testing.B) {
	loadRichMillion(b)
	c, hashes := richMillion.cache, richMillion.hashes
	for _, ws := range workingSets {
		b.Run(ws.name, func(b *testing.B) {
			ctx := b.Context()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, found, _ := c.Lookup(ctx, hashes[i%ws.n]); !found {
					b.Fatal("not found")
				}
				i += 7919
			}
		})
	}
}
