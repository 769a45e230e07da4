package sqlite_test

import (
	"testing"

	"github.com/apikeyd/apikeyd/apikey"
)

// BenchmarkKeyByHash looks keys up by hash in a store of 10,000 keys, the
// read behind every verification that misses the cache.
func BenchmarkKeyByHash(b *testing.B) {
	s := open(b)
	const n = 10000
	keys := make([]*apikey.Key, n)
	for i := range keys {
		keys[i] = testKey(i)
	}
	err := s.Update(b.Context(), func(tx apikey.Tx) error {
		for _, k := range keys {
			if err := tx.InsertKey(b.Context(), k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}

	b.Run("Serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := s.KeyByHash(b.Context(), keys[i%n].Hash); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := s.KeyByHash(b.Context(), keys[i%n].Hash); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}

// BenchmarkInsertKey creates one key per durable transaction, as the
// service does for every create.
func BenchmarkInsertKey(b *testing.B) {
	s := open(b)
	i := 0
	for b.Loop() {
		k := testKey(i)
		i++
		if err := s.Update(b.Context(), func(tx apikey.Tx) error { return tx.InsertKey(b.Context(), k) }); err != nil {
			b.Fatal(err)
		}
	}
}
